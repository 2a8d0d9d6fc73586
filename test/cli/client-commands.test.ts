/**
 * The client commands as processes against a real server: exit codes, `--json` output, the
 * environment, files, and the progress display with and without a terminal.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import { EXIT } from "../../src/cli/client-io.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { runCli, runCliInPty, startCli } from "./run-cli.js";

let server: TestServer;
let env: Record<string, string>;
let dir: string;

beforeAll(async () => {
  // Retry-After of at most 1 s, so a waiting command sees progress move.
  server = await startServer({ dev: true, config: { retryAfterMax: 1 } });
  env = { TESSERA_URL: server.url };
  dir = mkdtempSync(join(tmpdir(), "tessera-cli-"));
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const api = () => createClient({ baseUrl: server.url });

describe("tessera submit", { timeout: 60_000 }, () => {
  it("prints the new job's id, or its representation with --json", async () => {
    const plain = await runCli(["submit", "demo.echo", "--input", '{"a":1}'], { env });
    expect(plain.code).toBe(EXIT.ok);
    const id = plain.stdout.trim();
    expect(id).toMatch(/^job_[0-9a-z]{44}$/);
    expect((await api().get(id)).type).toBe("demo.echo");

    const json = await runCli(
      [
        "submit",
        "demo.sleep",
        "--input",
        '{"ms":10}',
        "--json",
        "--max-attempts",
        "4",
        "--priority=-5",
        "--metadata",
        "k=v",
      ],
      { env },
    );
    expect(json.code).toBe(EXIT.ok);
    const job = JSON.parse(json.stdout) as {
      id: string;
      status: string;
      maxAttempts: number;
      metadata: Record<string, string>;
    };
    // Queued, or already running when an idle worker took it at once.
    expect(job).toMatchObject({ maxAttempts: 4, metadata: { k: "v" } });
    expect(["queued", "running"]).toContain(job.status);
  });

  it("reads the input from a file and from standard input", async () => {
    const file = join(dir, "input.json");
    writeFileSync(file, '{"from":"file"}');
    const fromFile = await runCli(["submit", "demo.echo", "--input", `@${file}`, "--wait", "--json"], {
      env,
    });
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ status: "succeeded", result: { from: "file" } });
    const fromStdin = await runCli(["submit", "demo.echo", "--input", "@-", "--wait", "--json"], {
      env,
      input: '{"from":"stdin"}',
    });
    expect(JSON.parse(fromStdin.stdout)).toMatchObject({ status: "succeeded", result: { from: "stdin" } });
  });

  it("with --wait exits by the outcome: 0 succeeded, 1 failed, 3 timed out", async () => {
    const ok = await runCli(
      ["submit", "demo.sleep", "--input", '{"ms":300,"result":{"done":true}}', "--wait"],
      { env },
    );
    expect(ok.code).toBe(EXIT.ok);
    expect(JSON.parse(ok.stdout)).toEqual({ done: true });

    const failed = await runCli(
      ["submit", "demo.fail", "--input", '{"message":"boom"}', "--max-attempts", "1", "--wait", "--json"],
      { env },
    );
    expect(failed.code).toBe(EXIT.failed);
    expect(JSON.parse(failed.stdout)).toMatchObject({
      status: "failed",
      problem: { status: 500, detail: "boom" },
    });
    expect(failed.stderr).toContain("failed: boom");

    const timedOut = await runCli(
      ["submit", "demo.sleep", "--input", '{"ms":30000}', "--timeout-seconds", "1", "--wait", "--quiet"],
      { env },
    );
    expect(timedOut.code).toBe(EXIT.timedOut);
    expect(timedOut.stderr).toMatch(/timed out/);
  });

  it("refuses invalid input with the server's problem (6) and bad flags as usage (2)", async () => {
    const invalid = await runCli(["submit", "demo.sleep", "--input", '{"ms":"long"}'], { env });
    expect(invalid.code).toBe(EXIT.refused);
    expect(invalid.stderr).toContain("/input/ms");
    for (const args of [
      ["submit"],
      ["submit", "demo.echo", "--input", "{not json"],
      ["submit", "demo.echo", "--priority", "high"],
      ["submit", "demo.echo", "--no-such-flag"],
      ["status"],
    ]) {
      const run = await runCli(args, { env });
      expect(run.code, args.join(" ")).toBe(EXIT.usage);
      expect(run.stderr, args.join(" ")).toMatch(/usage: tessera/);
    }
  });

  it("sends the envelope options, including the idempotency key", async () => {
    const args = [
      "submit",
      "demo.sleep",
      "--input",
      '{"ms":10}',
      "--idempotency-key",
      "cli-key-1",
      "--timeout-seconds",
      "120",
      "--json",
    ];
    const first = JSON.parse((await runCli(args, { env })).stdout) as {
      id: string;
      createdAt: string;
      deadlineAt: string;
    };
    const second = JSON.parse((await runCli(args, { env })).stdout) as { id: string };
    expect(second.id).toBe(first.id);
    expect(Date.parse(first.deadlineAt) - Date.parse(first.createdAt)).toBe(120_000);
  });
});

describe("tessera status, result, wait, cancel, jobs", { timeout: 60_000 }, () => {
  it("shows, waits for and fetches a job", async () => {
    const handle = await api().submit("demo.sleep", { ms: 1500, result: { rows: 3 } });
    const status = await runCli(["status", handle.id, "--json"], { env });
    expect(status.code).toBe(EXIT.ok);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: handle.id, type: "demo.sleep" });

    const waited = await runCli(["wait", handle.id], { env });
    expect(waited.code).toBe(EXIT.ok);
    expect(waited.stdout).toBe(`${handle.id} succeeded\n`);

    const out = join(dir, "result.json");
    const saved = await runCli(["result", handle.id, "-o", out], { env });
    expect(saved.code).toBe(EXIT.ok);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual({ rows: 3 });

    const printed = await runCli(["result", handle.id, "--json"], { env });
    expect(JSON.parse(printed.stdout)).toMatchObject({
      id: handle.id,
      status: "succeeded",
      result: { rows: 3 },
    });

    const human = await runCli(["status", handle.id], { env });
    expect(human.stdout).toMatch(/status\s+succeeded/);
  });

  it("cancels: cancel exits 0, wait and result then exit 4; cancelling a finished job exits 6", async () => {
    const handle = await api().submit("demo.sleep", { ms: 30_000 });
    const canceled = await runCli(["cancel", handle.id, "--json"], { env });
    expect(canceled.code).toBe(EXIT.ok);
    expect(JSON.parse(canceled.stdout)).toMatchObject({ status: "canceled" });
    expect((await runCli(["wait", handle.id, "--quiet"], { env })).code).toBe(EXIT.canceled);
    expect((await runCli(["result", handle.id, "--quiet"], { env })).code).toBe(EXIT.canceled);

    const done = await api().submit("demo.echo", 1, { wait: 10 });
    const refused = await runCli(["cancel", done.id], { env });
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.stderr).toMatch(/already succeeded/);
  });

  it("exits 6 for an unknown job and 7 when --timeout passes", async () => {
    expect((await runCli(["status", "00000000-0000-4000-8000-000000000000"], { env })).code).toBe(
      EXIT.refused,
    );
    const handle = await api().submit("demo.sleep", { ms: 30_000 });
    const waited = await runCli(["wait", handle.id, "--timeout", "1", "--quiet"], { env });
    expect(waited.code).toBe(EXIT.waitTimeout);
    await handle.cancel();
  });

  it("lists jobs with filters, as a table or --json", async () => {
    const h = await api().submit("demo.fail", { message: "listed", status: 400 });
    await h.wait();
    const json = await runCli(["jobs", "--status", "failed", "--type", "demo.fail", "--json"], { env });
    expect(json.code).toBe(EXIT.ok);
    const jobs = JSON.parse(json.stdout) as { id: string; status: string }[];
    expect(jobs.map((j) => j.id)).toContain(h.id);
    expect(jobs.every((j) => j.status === "failed")).toBe(true);
    const table = await runCli(["jobs", "--limit", "2"], { env });
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+TYPE\s+STATUS/);
    const lines = table.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    // The columns line up under their headings: each row's type starts where TYPE does.
    const typeAt = lines[0]!.indexOf("TYPE");
    for (const line of lines.slice(1)) expect(line.slice(typeAt)).toMatch(/^demo\.\w+\s/);
    expect((await runCli(["jobs", "--status", "sleeping"], { env })).code).toBe(EXIT.usage);
  });
});

describe("connection and credentials", { timeout: 60_000 }, () => {
  it("exits 5 when the server cannot be reached, saying how long it tried", async () => {
    const port = await freePort();
    const run = await runCli(["status", "x", "--retries", "1"], {
      env: { TESSERA_URL: `http://127.0.0.1:${port}` },
    });
    expect(run.code).toBe(EXIT.connection);
    expect(run.stderr).toMatch(/cannot reach the server: .*gave up after 2 attempts in \d+\.\d s/);
  });

  it("takes the key from TESSERA_API_KEY or --api-key; a wrong key exits 6", async () => {
    const authed = await startServer();
    try {
      const key = await authed.key("cli");
      const viaEnv = await runCli(["submit", "demo.echo", "--input", "1", "--wait"], {
        env: { TESSERA_URL: authed.url, TESSERA_API_KEY: key },
      });
      expect(viaEnv.code).toBe(EXIT.ok);
      const viaFlag = await runCli(["jobs", "--url", authed.url, "--api-key", key, "--json"], {});
      expect(viaFlag.code).toBe(EXIT.ok);
      expect(JSON.parse(viaFlag.stdout)).toHaveLength(1);
      const wrong = await runCli(["jobs", "--url", authed.url, "--api-key", "tsk_wrong"], {});
      expect(wrong.code).toBe(EXIT.refused);
      expect(wrong.stderr).toMatch(/401/);
    } finally {
      await authed.close();
    }
  });
});

describe("progress display", { timeout: 60_000 }, () => {
  it("draws a bar with percent, message and elapsed time on a terminal", async () => {
    const run = await runCliInPty(
      ["submit", "demo.sleep", "--input", '{"ms":3000,"result":"pty"}', "--wait"],
      { env },
    );
    expect(run.code).toBe(EXIT.ok);
    const screen = run.stdout;
    expect(screen).toContain("\r\x1b[2K"); // redrawn in place
    expect(screen).toMatch(/█+░*\s+\d{1,3}%/);
    expect(screen).toMatch(/slept \d+ of 3000 ms/);
    expect(screen).toMatch(/\d+\.\ds/);
    expect(screen).toContain('"pty"');
  });

  it("prints plain lines without a terminal", async () => {
    const run = await runCli(["submit", "demo.sleep", "--input", '{"ms":3000}', "--wait"], { env });
    expect(run.code).toBe(EXIT.ok);
    expect(run.stderr).not.toContain("\x1b");
    expect(run.stderr).not.toContain("\r");
    const lines = run.stderr.trim().split("\n");
    expect(
      lines.some((l) => /^job …[0-9a-z]{8}: running \d+% slept \d+ of 3000 ms \(\d+\.\ds\)$/.test(l)),
    ).toBe(true);
    expect(JSON.parse(run.stdout)).toEqual({ sleptMs: 3000 });
  });

  it("shows each step of progress even when the server says to come back in 10 s", async () => {
    // The server above says Retry-After 1; this one says 10, so each wait is one long poll
    // that only the job's progress can end early.
    const slow = await startServer({ dev: true, config: { retryAfterMin: 10, retryAfterMax: 10 } });
    try {
      const run = await runCli(["submit", "demo.sleep", "--input", '{"ms":4000}', "--wait"], {
        env: { TESSERA_URL: slow.url },
      });
      expect(run.code).toBe(EXIT.ok);
      const percents = new Set(
        run.stderr
          .split("\n")
          .map((l) => / running (\d+)% /.exec(l)?.[1])
          .filter((p) => p !== undefined && p !== "100"),
      );
      expect(percents.size).toBeGreaterThanOrEqual(2);
    } finally {
      await slow.close();
    }
  });

  it("stops waiting on Ctrl-C (130); with --cancel-on-interrupt it also cancels the job", async () => {
    for (const cancel of [false, true]) {
      const handle = await api().submit("demo.sleep", { ms: 30_000 });
      const { child, done } = startCli(["wait", handle.id, ...(cancel ? ["--cancel-on-interrupt"] : [])], {
        env,
      });
      let progress = "";
      child.stderr?.on("data", (d: Buffer) => (progress += d.toString("utf8")));
      // A progress line means the process is up, its Ctrl-C handler in place, and waiting.
      await waitFor(async () => progress.includes("running"), 30_000);
      child.kill("SIGINT");
      const run = await done;
      expect(run.code).toBe(EXIT.interrupted);
      expect((await api().get(handle.id)).status).toBe(cancel ? "canceled" : "running");
      if (!cancel) await handle.cancel();
    }
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
