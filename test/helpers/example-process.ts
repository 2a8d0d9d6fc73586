/**
 * An example's script run as its README runs it (`npx tsx examples/…`): a real process in the
 * repository root, with only the environment given (no TESSERA_* of ours), its output kept.
 * Every process started here is tracked; call `stopExamples()` in `afterEach`/`afterAll`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cleanEnv, ROOT, waitFor, type Exit } from "./cluster.js";

export interface ExampleProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
  /** The first match of `pattern` in stdout + stderr, waiting up to `timeoutMs` for it. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Complete stdout lines that are JSON objects, parsed. */
  jsonLines<T = Record<string, unknown>>(): T[];
}

const running = new Set<ExampleProcess>();

export function runExample(script: string, env: Record<string, string> = {}): ExampleProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  let done = false;
  const exited = new Promise<Exit>((resolve) =>
    child.once("exit", (code, signal) => {
      done = true;
      running.delete(example);
      resolve({ code, signal });
    }),
  );
  const example: ExampleProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput: (pattern, timeoutMs = 30_000) =>
      waitFor(
        `${script} to print ${pattern}`,
        () => {
          const match = pattern.exec(out + err);
          if (match) return match;
          if (done) throw new Error(`${script} exited:\n${out}${err}`);
          return undefined;
        },
        timeoutMs,
      ),
    jsonLines: <T>() =>
      out
        .split("\n")
        .slice(0, -1) // the last piece is a line still being written
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as T),
  };
  running.add(example);
  return example;
}

/** SIGKILL every example process still running. */
export async function stopExamples(): Promise<void> {
  await Promise.all(
    [...running].map((example) => {
      example.child.kill("SIGKILL");
      return example.exited;
    }),
  );
}
