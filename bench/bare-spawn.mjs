// The reference for bench/command-tasks.ts: what a minimal script of your own does, in a
// process of its own (so the fork costs what it costs from a small process, as Tessera's
// launcher's does). Prints one JSON value.
//   node bench/bare-spawn.mjs loop N CONCURRENCY   → tasks/s of /bin/true, CONCURRENCY in flight
//   node bench/bare-spawn.mjs latency N            → sorted ms from spawn to the process running
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

const [mode, a, b] = process.argv.slice(2);
const epochMs = () => performance.timeOrigin + performance.now();

function run(file, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (c) => (text += c));
    child.once("error", reject);
    child.once("close", () => resolve(text));
    child.stdin.on("error", () => undefined); // /bin/true does not read its input
    child.stdin.end("null");
  });
}

if (mode === "loop") {
  const n = Number(a);
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Number(b) }, async () => {
      while (started < n) {
        started++;
        await run("/bin/true", []);
      }
    }),
  );
  console.log(JSON.stringify(n / ((performance.now() - t0) / 1000)));
} else {
  const samples = [];
  for (let i = 0; i < Number(a); i++) {
    const t0 = epochMs();
    samples.push(Number(await run("date", ["+%s.%N"])) * 1000 - t0);
  }
  console.log(JSON.stringify(samples.sort((x, y) => x - y)));
}
