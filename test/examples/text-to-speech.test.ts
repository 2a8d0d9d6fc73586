/**
 * examples/text-to-speech end to end, as its README runs it: the built `tessera serve --jobs`
 * with the speech job (espeak-ng in a fresh process per job), and the example backend, which
 * submits with a callback, verifies the Standard Webhooks signature of the event it receives
 * and downloads the WAV from the signed result URL. The WAV is checked: RIFF header, sizes that
 * agree, and a duration above zero by `sox --i`.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { cleanEnv, killAll, ROOT, spawnTessera, tesseraCli } from "../helpers/cluster.js";
import { http } from "../helpers/server.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-tts-"));
afterEach(killAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Skipped without espeak-ng, except in CI (.ci/run installs it and sets the variable).
const hasEspeak =
  spawnSync("espeak-ng", ["--version"]).status === 0 || process.env.TESSERA_TEST_REQUIRE_ESPEAK === "1";

/** Run the example backend; resolves with its JSON line and exit code. */
function backend(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "examples/text-to-speech/backend.ts", ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  return new Promise((done) => child.once("close", (code) => done({ code, out })));
}

/** The built `tessera serve --dev` with the example's job, on a database of its own. */
function speechService(db: string, extra: string[] = []) {
  return spawnTessera(
    ["--dev", "--db", join(dir, db), "--jobs", "examples/text-to-speech/jobs.ts", ...extra],
    { built: true },
  );
}

describe.skipIf(!hasEspeak)("examples/text-to-speech", () => {
  it("the backend gets a verified callback and downloads a valid WAV from the signed URL", async () => {
    expect(existsSync(join(ROOT, "dist/main.js")), "npm run build first").toBe(true);
    const server = await speechService("tts.db", ["--callback-allow", "127.0.0.1"]);
    const secret = await tesseraCli(["webhooks", "secret", "--tenant", "dev", "--db", join(dir, "tts.db")]);
    expect(secret.code, secret.stderr).toBe(0);
    const whsec = /whsec_[A-Za-z0-9+/=]+/.exec(secret.stdout)?.[0];
    expect(whsec, secret.stdout).toBeDefined();

    const wavPath = join(dir, "hello.wav");
    const run = await backend(["Hello from Tessera, spoken by a fresh process.", "en", wavPath], {
      TESSERA_URL: server.url,
      WEBHOOK_SECRET: whsec!,
      CALLBACK_PORT: "0",
    });
    expect(run.code, run.out).toBe(0);
    const line = JSON.parse(run.out.trim().split("\n").at(-1)!) as { contentType: string; bytes: number };
    expect(line.contentType).toBe("audio/wav");

    const wav = readFileSync(wavPath);
    expect(wav.length).toBe(line.bytes);
    expect(wav.subarray(0, 4).toString("latin1")).toBe("RIFF");
    expect(wav.subarray(8, 12).toString("latin1")).toBe("WAVE");
    const dataBytes = wav.readUInt32LE(40);
    expect(dataBytes).toBeGreaterThan(0);
    const sox = spawnSync("sox", ["--i", "-D", wavPath], { encoding: "utf8" });
    if (sox.status === 0) expect(Number(sox.stdout.trim())).toBeGreaterThan(0.5);
    else {
      // No sox: the header's own sizes (16-bit mono at the rate it names).
      const rate = wav.readUInt32LE(24);
      expect(dataBytes / (rate * 2)).toBeGreaterThan(0.5);
    }
  }, 60_000);

  it("a voice espeak-ng does not know fails the job with a 422 problem, not retried", async () => {
    const server = await speechService("tts2.db");
    const submitted = await http(`${server.url}/v1/jobs`, {
      json: { type: "tts.speak", input: { text: "hi", voice: "zz-nope" } },
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    let job: { status: string; attempt: number; error: { status: number; detail: string } | null };
    for (;;) {
      const response = await http(`${server.url}/v1/jobs/${id}?onComplete=status`, {
        headers: { prefer: "wait=20" },
      });
      job = (await response.json()) as typeof job;
      if (response.status === 200) break;
    }
    expect(job.status).toBe("failed");
    expect(job.attempt).toBe(1);
    expect(job.error?.status).toBe(422);
    expect(job.error?.detail).toMatch(/espeak-ng exited with code 1/);
  }, 60_000);

  it("a text that starts with '-' is spoken as text, never read as an option", async () => {
    const server = await speechService("tts3.db");
    const submitted = await http(`${server.url}/v1/jobs`, {
      json: { type: "tts.speak", input: { text: "--help me", voice: "en" } },
      headers: { prefer: "wait=20" },
    });
    expect(submitted.status, await submitted.clone().text()).toBe(200);
    expect(submitted.headers.get("content-type")).toBe("audio/wav");
    expect(
      Buffer.from(await submitted.arrayBuffer())
        .subarray(0, 4)
        .toString("latin1"),
    ).toBe("RIFF");
  }, 60_000);
});
