/**
 * Sagas on two nodes of one PostgreSQL database, as real processes: 500 sagas of 3 short steps
 * (`fixture.saga`) are submitted through both nodes, and node A is SIGKILLed mid-way. Node B
 * takes A's sagas over once their leases expire and replays them from their journals:
 * - 0 lost, 0 stuck: every saga ends `succeeded`, its 3 steps `succeeded`;
 * - 0 double terminal: each job moves to a terminal state once, and a terminal row is never
 *   rewritten (triggers of the test's own, beside the schema's tables);
 * - a step runs again only in a saga whose lease was lost (attempt 2: attempt 1 on A), and only
 *   the step A was in when it died: first under A's pid, then to its end under B's.
 * Each saga logs to a file of its own, so every log line is known to be its saga's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  createKey,
  groupAlive,
  killAll,
  logLines,
  pgNodeArgs,
  pgQuery,
  readJsonLines,
  recordTerminalMoves,
  spawnTessera,
  waitFor,
} from "../helpers/cluster.js";
import { freshSchema, PG_URL } from "../helpers/postgres.js";
import { bearer, http, TEST_SECRET } from "../helpers/server.js";

/** A line of the fixture saga's log: `run` counts the step's runs within one attempt. */
interface Line {
  step: string;
  event: "start" | "done";
  run: number;
  pid: number;
}

interface SagaJob {
  id: string;
  status: string;
  attempt: number;
  steps?: { name: string; status: string; attempts: number }[];
}

const SAGAS = 500;
const STEPS = 3;
const STEP_NAMES = Array.from({ length: STEPS }, (_, i) => `s${i}`);
/** Node A is killed once this many steps are recorded as succeeded (about a third). */
const KILL_AT_STEPS = Math.floor((SAGAS * STEPS) / 3);
/** The sagas are due this long after the first submit. */
const RUN_AT_DELAY_MS = 5000;

const schema = freshSchema("smn");
let dir: string | null = null;
afterEach(killAll);
afterAll(async () => {
  await pgQuery(PG_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const readLines = (path: string): Line[] => readJsonLines<Line>(path);

/**
 * What is wrong with the log `lines` of one run of consecutive steps from `first` on, in one
 * process: each step started, then done, in order; only the last may lack its `done` (`cut`).
 */
function runProblems(lines: Line[], first: number, cut: boolean): string[] {
  const expected: string[] = [];
  for (let i = first; expected.length < lines.length; i++) expected.push(`s${i} start`, `s${i} done`);
  const seen = lines.map((l) => `${l.step} ${l.event}`);
  const ok =
    seen.every((s, i) => s === expected[i]) && (cut || lines.length === 0 || lines.at(-1)!.event === "done");
  return ok ? [] : [`steps out of order: ${seen.join(", ")}`];
}

describe("e2e: sagas on two PostgreSQL nodes, one SIGKILLed", { timeout: 180_000 }, () => {
  it("500 sagas of 3 steps, node A killed mid-way: 0 lost, 0 stuck, 0 double terminal, re-runs only of lost leases", async () => {
    const key = await createKey({ db: PG_URL, schema });
    const terminal = await recordTerminalMoves(PG_URL, schema);
    // A second completion of a job already terminal is no move from queued or running: log any
    // change to a terminal row's status, attempt, finish, result or lease as well.
    await pgQuery(
      PG_URL,
      `CREATE TABLE ${schema}.test_terminal_rewrites (seq bigserial PRIMARY KEY, job_id text NOT NULL, old_status text NOT NULL, new_status text NOT NULL);
       CREATE FUNCTION ${schema}.test_log_terminal_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO ${schema}.test_terminal_rewrites (job_id, old_status, new_status) VALUES (NEW.id, OLD.status, NEW.status);
           RETURN NULL;
         END $$;
       CREATE TRIGGER test_terminal_rewrites AFTER UPDATE ON ${schema}.jobs FOR EACH ROW
         WHEN (OLD.status NOT IN ('queued', 'running') AND
               (NEW.status, NEW.attempt, NEW.finished_at, NEW.result_data, NEW.lease_token) IS DISTINCT FROM
               (OLD.status, OLD.attempt, OLD.finished_at, OLD.result_data, OLD.lease_token))
         EXECUTE FUNCTION ${schema}.test_log_terminal_rewrite();`,
    );

    const args = [...pgNodeArgs({ db: PG_URL, schema, secret: TEST_SECRET }), "--concurrency", "10"];
    const [a, b] = await Promise.all([
      spawnTessera(args, { name: "A", timeoutMs: 30_000 }),
      spawnTessera(args, { name: "B", timeoutMs: 30_000 }),
    ]);
    const nodes = [a, b];

    // --- 500 sagas through both nodes alternately, 16 at a time --------------------------------
    // All due a few seconds on, so that none runs before they are all in (a slow submit on a
    // loaded machine would otherwise leave little to kill mid-way) and both nodes claim them.
    const runAt = new Date(Date.now() + RUN_AT_DELAY_MS).toISOString();
    const logDir = (dir = mkdtempSync(join(tmpdir(), "tessera-saga-multi-")));
    const logPath = (i: number) => join(logDir, `saga-${i}.log`);
    const ids: string[] = new Array<string>(SAGAS);
    const refused: string[] = [];
    let next = 0;
    const submitter = async () => {
      while (next < SAGAS) {
        const i = next++;
        const response = await http(`${nodes[i % 2]!.url}/v1/jobs`, {
          json: {
            type: "fixture.saga",
            input: { steps: STEPS, stepMs: 5 + ((i * 37) % 46), logPath: logPath(i) },
            runAt,
          },
          headers: bearer(key),
        });
        const text = await response.text();
        if (response.status === 202) ids[i] = (JSON.parse(text) as SagaJob).id;
        else refused.push(`#${i}: ${response.status} ${text.slice(0, 200)}`);
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 16 }, submitter));
    const submitMs = Date.now() - started;
    expect(refused).toEqual([]);
    expect(new Set(ids).size).toBe(SAGAS);

    // --- mid-way: a third of the steps recorded, then SIGKILL node A ---------------------------
    const progress = async () => {
      const [row] = await pgQuery<{ steps: number; done: number; open: number }>(
        PG_URL,
        `SELECT (SELECT count(*)::int FROM ${schema}.saga_steps WHERE status = 'succeeded') AS steps,
                count(*) FILTER (WHERE status = 'succeeded')::int AS done,
                count(*) FILTER (WHERE status IN ('queued', 'running'))::int AS open
         FROM ${schema}.jobs`,
      );
      return row!;
    };
    await waitFor(
      "a third of the steps to be recorded",
      async () => (await progress()).steps >= KILL_AT_STEPS,
      90_000,
      50,
    );
    const atKill = await progress();
    await a.kill();
    const killedAt = Date.now();
    expect(groupAlive(a.pid)).toBe(false);

    // --- every saga terminal (node B alone now) -----------------------------------------------
    await waitFor("every saga terminal", async () => (await progress()).open === 0, 90_000, 200);
    const drainMs = Date.now() - killedAt;

    const jobs: SagaJob[] = new Array<SagaJob>(SAGAS);
    const results: unknown[] = new Array<unknown>(SAGAS);
    let read = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (read < SAGAS) {
          const i = read++;
          const response = await http(`${b.url}/v1/jobs/${ids[i]}?onComplete=status`, {
            headers: bearer(key),
          });
          expect(response.status, `saga #${i} ${ids[i]}`).toBe(200);
          jobs[i] = (await response.json()) as SagaJob;
          results[i] = await (
            await http(`${b.url}/v1/jobs/${ids[i]}/result`, { headers: bearer(key) })
          ).json();
        }
      }),
    );

    // --- 0 lost, 0 stuck: every one succeeded, its 3 steps too ---------------------------------
    expect(jobs.filter((j) => j.status !== "succeeded").map((j) => `${j.id} ${j.status}`)).toEqual([]);
    for (const job of jobs)
      expect(
        job.steps?.map((s) => [s.name, s.status]),
        job.id,
      ).toEqual(STEP_NAMES.map((n) => [n, "succeeded"]));
    // One lease lost at most: A's, when it died (B lost none).
    expect(jobs.filter((j) => j.attempt !== 1 && j.attempt !== 2).map((j) => `${j.id} ${j.attempt}`)).toEqual(
      [],
    );
    const takenOver = jobs.filter((j) => j.attempt === 2).length;
    expect(takenOver).toBeGreaterThan(0); // A held sagas when it was killed

    // --- the step log: what ran where, how often ----------------------------------------------
    const problems: string[] = [];
    let reruns = 0;
    let cutOff = 0;
    for (let i = 0; i < SAGAS; i++) {
      const job = jobs[i]!;
      const lines = readLines(logPath(i));
      const wrong = (what: string) =>
        problems.push(
          `saga #${i} ${job.id} (attempt ${job.attempt}): ${what}; log ${JSON.stringify(lines.map((l) => [l.step, l.event, l.pid]))}`,
        );
      const attempts = job.steps!.map((s) => s.attempts);
      const result = results[i] as string[];
      const starts = (pid: number | null, step: number) =>
        lines.filter((l) => l.step === `s${step}` && l.event === "start" && (pid === null || l.pid === pid))
          .length;
      for (let s = 0; s < STEPS; s++)
        if (!lines.some((l) => l.step === `s${s}` && l.event === "done")) wrong(`s${s} never ran to its end`);

      if (job.attempt === 1) {
        // Its only attempt, on one node: each step ran once, to its end, and was recorded once.
        const pid = lines[0]?.pid;
        if (pid !== a.pid && pid !== b.pid) wrong("not run by A or B");
        if (lines.some((l) => l.pid !== pid)) wrong("run by two processes");
        problems.push(...runProblems(lines, 0, false).map((p) => `saga #${i} ${job.id}: ${p}`));
        if (lines.length !== 2 * STEPS) wrong("a step ran more than once, or not at all");
        if (attempts.some((n) => n !== 1)) wrong(`step attempts ${attempts.join(",")}`);
        if (JSON.stringify(result) !== JSON.stringify(STEP_NAMES.map((n) => `${n}@${pid}`)))
          wrong(`result ${JSON.stringify(result)}`);
        continue;
      }

      // Attempt 1 on A, cut off by the kill; attempt 2 on B, from the first step A had not
      // recorded. A step's outcome is written before the next step starts, so only the step A
      // was in (the last it started) may run again.
      const onA = lines.filter((l) => l.pid === a.pid);
      const onB = lines.filter((l) => l.pid === b.pid);
      if (onA.length + onB.length !== lines.length) wrong("run by a process other than A and B");
      if (
        lines.findIndex((l) => l.pid === b.pid) !== -1 &&
        lines.findLastIndex((l) => l.pid === a.pid) > lines.findIndex((l) => l.pid === b.pid)
      )
        wrong("A ran it after B");
      const last = onA.length === 0 ? -1 : Number(onA.at(-1)!.step.slice(1)); // the step A was in
      const first = onB.length === 0 ? STEPS : Number(onB[0]!.step.slice(1)); // where B began
      problems.push(...runProblems(onA, 0, true).map((p) => `saga #${i} ${job.id} on A: ${p}`));
      problems.push(...runProblems(onB, first, false).map((p) => `saga #${i} ${job.id} on B: ${p}`));
      if (first < last) wrong(`B ran s${first} again, recorded before A started s${last}`);
      if (first > last + 1) wrong(`s${last + 1} ran nowhere`);
      if (onA.at(-1)?.event === "start" && first !== last) wrong(`s${last}, cut off on A, was not run again`);
      if (first === last) reruns++;
      if (onA.at(-1)?.event === "start") cutOff++;
      for (let s = 0; s < STEPS; s++) {
        const runs = starts(null, s);
        // Each run was counted in the journal before it began (a count without its run: A
        // killed between the two).
        if (attempts[s]! < runs || attempts[s]! > runs + 1 || attempts[s]! > 2)
          wrong(`s${s}: ${attempts[s]} attempts recorded for ${runs} runs`);
        if (s < first && attempts[s] !== 1) wrong(`s${s}, run on A alone, has ${attempts[s]} attempts`);
        const by = s < first ? a.pid : b.pid;
        if (result?.[s] !== `s${s}@${by}`)
          wrong(`s${s}'s result ${JSON.stringify(result?.[s])}, expected from ${by}`);
      }
      if (starts(a.pid, last) > 1 || starts(b.pid, first) > 1) wrong("a step run twice by one process");
    }
    expect(problems).toEqual([]);
    // The kill cut steps off: A was inside a step of some of its 10 sagas (each spends most of
    // its time inside one), and those steps ran again on B.
    expect(reruns).toBeGreaterThan(0);

    // --- 0 double terminal ----------------------------------------------------------------------
    const moves = await terminal.moves();
    expect(moves.size).toBe(SAGAS);
    expect([...moves].filter(([, list]) => list.length !== 1 || list[0] !== "succeeded")).toEqual([]);
    expect(new Set(moves.keys())).toEqual(new Set(ids));
    const rewrites = await pgQuery(
      PG_URL,
      `SELECT job_id, old_status, new_status FROM ${schema}.test_terminal_rewrites`,
    );
    expect(rewrites).toEqual([]);

    // Node B still up, with no error logged.
    expect(b.hasExited(), b.output()).toBe(false);
    expect(logLines(b.output()).filter((l) => l.level >= 50)).toEqual([]);

    console.log(
      `saga multi-node: ${SAGAS} sagas submitted in ${submitMs} ms; A killed with ${atKill.steps} steps recorded, ` +
        `${atKill.done} sagas done, ${atKill.open} open; ${takenOver} taken over by B (${cutOff} cut off mid-step, ` +
        `${reruns} steps run again); drained ${drainMs} ms after the kill`,
    );
  });
});
