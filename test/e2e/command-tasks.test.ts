/**
 * Command tasks through a real server over real HTTP, with real processes: results from stdout
 * and from a file, progress in the status monitor, exits mapped to problems, a retry after a
 * crash, timeouts and cancels that leave no process of the tree alive (/proc), a scrubbed
 * environment, a stdout flood, a missing executable, and the cap on tasks alive at once.
 * The 50 MB file and the server's SIGTERM are in command-tasks-process.test.ts.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { taskJobs } from "../fixtures/tasks/jobs.js";
import { alive, gone, pidsFrom } from "../helpers/processes.js";
import { http, startServer, type TestServer } from "../helpers/server.js";

interface Job {
  id: string;
  status: string;
  attempt: number;
  progress: { percent: number | null; message: string | null } | null;
  error: { type: string; status: number; detail: string } | null;
  links: { result?: string };
}

let server: TestServer;
const scratch = mkdtempSync(join(tmpdir(), "tessera-tasks-e2e-"));

beforeAll(async () => {
  process.env.TESSERA_TEST_SERVER_SECRET = "do-not-leak";
  process.env.DATABASE_URL = "postgres://secret@db/prod";
  process.env.TASK_PASSED_X = "passed";
  server = await startServer({
    dev: true,
    jobs: taskJobs,
    config: { concurrency: 20, maxTasks: 4 },
  });
});

afterAll(async () => {
  await server?.close();
  delete process.env.TESSERA_TEST_SERVER_SECRET;
  delete process.env.DATABASE_URL;
  delete process.env.TASK_PASSED_X;
  rmSync(scratch, { recursive: true, force: true });
});

async function submit(type: string, input: unknown, extra: Record<string, unknown> = {}): Promise<Job> {
  const response = await http(`${server.url}/v1/jobs`, { json: { type, input, ...extra } });
  expect(response.status, await response.clone().text()).toBe(202);
  return (await response.json()) as Job;
}

async function status(id: string): Promise<Job> {
  const response = await http(`${server.url}/v1/jobs/${id}?onComplete=status`);
  return (await response.json()) as Job;
}

/** Hold the request until the job is terminal (event-driven on the server). */
async function settled(id: string): Promise<Job> {
  for (;;) {
    const response = await http(`${server.url}/v1/jobs/${id}?onComplete=status`, {
      headers: { prefer: "wait=30" },
    });
    const job = (await response.json()) as Job;
    if (response.status === 200) return job;
  }
}

async function result(job: Job): Promise<Response> {
  expect(job.links.result, JSON.stringify(job)).toBeDefined();
  return fetch(job.links.result!);
}

describe("command tasks behind the HTTP API", () => {
  it("a task's JSON stdout is the job's result; input on stdin, TESSERA_* in its env", async () => {
    const job = await settled((await submit("task.echo", { hello: "world" })).id);
    expect(job.status).toBe("succeeded");
    const response = await result(job);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await response.json()) as { input: unknown; env: Record<string, string> };
    expect(body.input).toEqual({ hello: "world" });
    expect(body.env.TESSERA_JOB_ID).toBe(job.id);
    expect(body.env.TESSERA_ATTEMPT).toBe("1");
    expect(body.env.TESSERA_OUTPUT_DIR).toBeTruthy();
    expect(Date.parse(body.env.TESSERA_DEADLINE!)).toBeGreaterThan(Date.now());
  });

  it("the server's secrets do not reach a task: only the allowlist and what the definition names", async () => {
    const job = await settled((await submit("task.env", null)).id);
    const env = (await (await result(job)).json()) as Record<string, string>;
    expect(env.TESSERA_TEST_SERVER_SECRET).toBeUndefined();
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.TASK_PASSED_X).toBe("passed");
    const allowed = new Set(["PATH", "HOME", "LANG", "TZ", "TASK_PASSED_X"]);
    for (const name of Object.keys(env))
      expect(allowed.has(name) || name.startsWith("TESSERA_"), name).toBe(true);
  });

  it("one file left in the output dir is the result, with the content type its manifest names", async () => {
    const bytes = 3 * 1024 * 1024 + 17; // above the inline limit: a blob, streamed
    const job = await settled(
      (await submit("task.file", { name: "out.bin", bytes, type: "application/x-test" })).id,
    );
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    const response = await result(job);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-test");
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(bytes);
    for (const at of [0, 250, 251, 1 << 20, bytes - 1]) expect(body[at]).toBe((at % (1 << 20)) % 251);
    expect(createHash("sha256").update(body).digest("hex")).toHaveLength(64);
  });

  it("progress lines show in the status monitor while the task runs", async () => {
    const job = await submit("task.progress", null);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const now = await status(job.id);
      if (now.progress?.message) seen.add(`${now.progress.percent} ${now.progress.message}`);
      if (now.status === "succeeded") break;
      await sleep(20);
    }
    expect(
      [...seen].some((s) => /^(10|50|90) /.test(s)),
      [...seen].join(", "),
    ).toBe(true);
    const done = await settled(job.id);
    expect(done.status).toBe("succeeded");
    expect(await (await result(done)).json()).toEqual({ done: true });
  });

  it("a mapped exit code fails the job at once with a 4xx problem; others are retried, stderr in the detail", async () => {
    const mapped = await settled((await submit("task.exit", { code: 65 })).id);
    expect(mapped.status).toBe("failed");
    expect(mapped.attempt).toBe(1);
    expect(mapped.error?.status).toBe(422);
    expect(mapped.error?.detail).toMatch(/exited with code 65.*failing with 65/);

    const retried = await settled((await submit("task.exit", { code: 3 })).id);
    expect(retried.status).toBe("failed");
    expect(retried.attempt).toBe(2);
    expect(retried.error?.type).toMatch(/job-failed$/);
    expect(retried.error?.detail).toMatch(/exited with code 3; stderr: failing with 3/);
  });

  it("a task killed by a signal is retried, and the next attempt's result stands", async () => {
    const job = await settled((await submit("task.crash-once", null)).id);
    expect(job.status).toBe("succeeded");
    expect(job.attempt).toBe(2);
    expect(await (await result(job)).json()).toEqual({ attempt: 2 });
  });

  it("the job's deadline stops the task and its whole tree", async () => {
    const pidFile = join(scratch, "timeout.pids");
    const job = await submit("task.tree", { pidFile }, { timeoutSeconds: 2 });
    const pids = await pidsFrom(pidFile);
    expect(pids.every(alive)).toBe(true);
    expect((await settled(job.id)).status).toBe("timed_out");
    expect(await gone(pids)).toEqual([]);
  });

  it.each(["task.tree", "task.stubborn"])(
    "cancel stops %s: SIGTERM to the tree, SIGKILL after the grace; no process survives",
    async (type) => {
      const pidFile = join(scratch, `${type}.pids`);
      const job = await submit(type, { pidFile });
      const pids = await pidsFrom(pidFile);
      expect(pids.every(alive)).toBe(true);
      const cancel = await http(`${server.url}/v1/jobs/${job.id}/cancel`, { method: "POST" });
      expect(cancel.status).toBe(200);
      expect(await gone(pids)).toEqual([]);
      expect((await status(job.id)).status).toBe("canceled");
    },
  );

  it("a task flooding stdout is stopped and fails with command-output-too-large", async () => {
    const job = await settled((await submit("task.flood", null)).id);
    expect(job.status).toBe("failed");
    expect(job.attempt).toBe(1);
    expect(job.error?.type).toMatch(/command-output-too-large$/);
  });

  it("a missing executable fails the job with command-not-found; the server goes on", async () => {
    const job = await settled((await submit("task.missing", null)).id);
    expect(job.status).toBe("failed");
    expect(job.attempt).toBe(1);
    expect(job.error?.type).toMatch(/command-not-found$/);
    expect(job.error?.detail).toMatch(/tessera-no-such-program/);
    expect((await settled((await submit("task.echo", 1)).id)).status).toBe("succeeded");
  });

  it("200 tasks of two types submitted at once, --max-tasks 4: never more than 4 alive", async () => {
    const dir = mkdtempSync(join(scratch, "count-"));
    const jobs = await Promise.all(
      Array.from({ length: 200 }, (_, i) => submit(i % 2 ? "task.count" : "task.count2", { dir, ms: 30 })),
    );
    let most = 0;
    for (const { id } of jobs) {
      const job = await settled(id);
      expect(job.status).toBe("succeeded");
      most = Math.max(most, ((await (await result(job)).json()) as { most: number }).most);
    }
    expect(most).toBeGreaterThan(1); // they did run side by side
    expect(most).toBeLessThanOrEqual(4);
    expect(readdirSync(dir)).toEqual([]);
  }, 120_000);

  it("no attempt's dir is left behind", async () => {
    const taskDir = server.tessera.config.taskDir;
    const own = readdirSync(taskDir).filter((n) => n.startsWith(`node-${process.pid}-`));
    for (const name of own) expect(readdirSync(join(taskDir, name))).toEqual([]);
  });
});
