/**
 * A saga across real crashes: `tessera serve` is SIGKILLed in the middle of every step of a
 * 5-step saga and started again on the same SQLite file. Each step's function runs to its end
 * once (the interrupted run of a step runs again, the steps recorded before it never do), no
 * recorded result is lost, and the saga finishes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  FAST,
  FIXTURE_JOBS,
  killAll,
  readJsonLines,
  spawnTessera,
  waitFor,
  type Node,
} from "../helpers/cluster.js";
import { http } from "../helpers/server.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-saga-crash-"));
afterEach(killAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Line {
  step: string;
  event: "start" | "done";
  run: number;
  pid: number;
}

interface SagaStatus {
  status: string;
  attempt: number;
  steps: { name: string; status: string }[];
}

/** The saga's status monitor on `url` (the job's steps included). */
async function sagaStatus(url: string, id: string): Promise<SagaStatus> {
  return (await (await http(`${url}/v1/jobs/${id}?onComplete=status`)).json()) as SagaStatus;
}

/** Once it succeeded there. */
function finished(url: string, id: string): Promise<SagaStatus> {
  return waitFor(
    "the saga to finish",
    async () => {
      const job = await sagaStatus(url, id);
      return job.status === "succeeded" ? job : undefined;
    },
    30_000,
  );
}

const serve = (db: string): Promise<Node> =>
  spawnTessera(["--dev", "--db", db, "--jobs", FIXTURE_JOBS, ...FAST], { timeoutMs: 20_000 });

describe("a saga across SIGKILLs", { timeout: 120_000 }, () => {
  it("killed in the middle of each of its 5 steps, it finishes: every step done once, none lost", async () => {
    const db = join(dir, "tessera.db");
    const logPath = join(dir, "steps.log");
    const lines = (): Line[] => readJsonLines<Line>(logPath);
    let server = await serve(db);
    const submitted = await http(`${server.url}/v1/jobs`, {
      json: { type: "fixture.saga", input: { steps: 5, stepMs: 1500, logPath } },
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };

    const pids: number[] = [];
    for (let step = 0; step < 5; step++) {
      // Mid-step: its start is logged by this server's process, its end not yet.
      const pid = server.pid;
      await waitFor(
        `s${step} to start under ${pid}`,
        () => lines().some((l) => l.step === `s${step}` && l.event === "start" && l.pid !== pids.at(-1)),
        20_000,
      );
      pids.push(pid);
      await server.kill();
      server = await serve(db);
    }
    const done = await waitFor(
      "the saga to finish",
      async () => {
        const res = await http(`${server.url}/v1/jobs/${id}?onComplete=status`);
        const job = (await res.json()) as {
          status: string;
          attempt: number;
          steps: { name: string; status: string; attempts: number }[];
        };
        return res.status === 200 ? job : undefined;
      },
      60_000,
    );
    expect(done.status).toBe("succeeded");
    expect(done.attempt).toBe(6); // five lost leases, then the attempt that finished
    expect(done.steps.map((s) => [s.name, s.status, s.attempts])).toEqual(
      ["s0", "s1", "s2", "s3", "s4"].map((name) => [name, "succeeded", 2]),
    );

    const log = lines();
    for (const name of ["s0", "s1", "s2", "s3", "s4"]) {
      const mine = log.filter((l) => l.step === name);
      // Started twice (the run a kill cut off, then one to its end), done once.
      expect(mine.filter((l) => l.event === "start")).toHaveLength(2);
      expect(mine.filter((l) => l.event === "done")).toHaveLength(1);
    }
    // Each killed process ran its step, and no step recorded before it again.
    for (let step = 0; step < 5; step++) {
      const ranThere = log.filter((l) => l.pid === pids[step] && l.event === "start").map((l) => l.step);
      expect(ranThere).toEqual(step === 0 ? ["s0"] : [`s${step - 1}`, `s${step}`]);
    }
    // The result: each step's recorded value, made by the process that finished it.
    const result = (await (await http(`${server.url}/v1/jobs/${id}/result`)).json()) as string[];
    expect(result).toHaveLength(5);
    result.forEach((value, i) => expect(value).toMatch(new RegExp(`^s${i}@\\d+$`)));
  });

  it("asleep when the server is killed, it wakes on the next server at its time; no step runs again", async () => {
    const db = join(dir, "nap.db");
    const logPath = join(dir, "nap.log");
    const first = await serve(db);
    const submitted = await http(`${first.url}/v1/jobs`, {
      json: { type: "fixture.saga", input: { steps: 2, stepMs: 0, logPath, napMs: 3000 } },
    });
    const { id } = (await submitted.json()) as { id: string };
    const status = (url: string) => sagaStatus(url, id);
    // Asleep: the nap recorded and the job given back (killed before the release, it would be
    // a crash of a running attempt, which costs one).
    await waitFor(
      "the saga to sleep",
      async () => {
        const job = await status(first.url);
        return job.status !== "running" && job.steps?.some((s) => s.name === "nap" && s.status === "running");
      },
      10_000,
    );
    await first.kill();
    const second = await serve(db);
    const done = await finished(second.url, id);
    expect(done.attempt).toBe(1); // neither the sleep nor the kill of a sleeping saga cost one
    expect(done.steps.map((s) => [s.name, s.status])).toEqual([
      ["s0", "succeeded"],
      ["nap", "succeeded"],
      ["s1", "succeeded"],
    ]);
    const log = readJsonLines<Line>(logPath);
    expect(log.map((l) => [l.step, l.event, l.pid])).toEqual([
      ["s0", "start", first.pid],
      ["s0", "done", first.pid],
      ["s1", "start", second.pid],
      ["s1", "done", second.pid],
    ]);
  });

  it("waiting for an event when the server is killed, the event sent to the next server wakes it", async () => {
    const db = join(dir, "event.db");
    const logPath = join(dir, "event.log");
    const first = await serve(db);
    const submitted = await http(`${first.url}/v1/jobs`, {
      json: { type: "fixture.saga", input: { steps: 2, stepMs: 0, logPath, awaitEvent: "approved" } },
    });
    const { id } = (await submitted.json()) as { id: string };
    const status = (url: string) => sagaStatus(url, id);
    await waitFor(
      "the saga to wait",
      async () => {
        const job = await status(first.url);
        return (
          job.status !== "running" &&
          job.steps?.some((s) => s.name === "event:approved" && s.status === "running")
        );
      },
      10_000,
    );
    await first.kill();
    const second = await serve(db);
    const sent = await http(`${second.url}/v1/jobs/${id}/events/approved`, {
      json: { by: "ops" },
      headers: { "idempotency-key": "approval-1" },
    });
    expect(sent.status).toBe(202);
    const done = await finished(second.url, id);
    expect(done.attempt).toBe(1);
    expect(done.steps.map((s) => [s.name, s.status])).toEqual([
      ["s0", "succeeded"],
      ["event:approved", "succeeded"],
      ["s1", "succeeded"],
    ]);
    const result = (await (await http(`${second.url}/v1/jobs/${id}/result`)).json()) as string[];
    expect(result).toEqual([`s0@${first.pid}`, JSON.stringify({ by: "ops" }), `s1@${second.pid}`]);
    const log = readJsonLines<Line>(logPath);
    expect(log.map((l) => [l.step, l.event, l.pid])).toEqual([
      ["s0", "start", first.pid],
      ["s0", "done", first.pid],
      ["s1", "start", second.pid],
      ["s1", "done", second.pid],
    ]);
  });
});
