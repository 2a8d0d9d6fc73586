import { setTimeout as sleep } from "node:timers/promises";
import { coerceError, JobAbortedError, JobError, JobSuspended, type JobProblem } from "../jobs/errors.js";
import { jobProblem } from "../jobs/problems.js";
import type { JobContext } from "../jobs/define.js";
import type { ClaimedJob, JobRecord, StepKind, StepRecord, Store } from "../store/store.js";
import { createClient, HttpError, JobFailureError, type JobHandle } from "../client/index.js";

/** What a step's function (and its compensation) is handed. */
export interface StepContext {
  /**
   * The same for every run of this step of this saga, on every attempt and node: give it to
   * the service the step calls (an `Idempotency-Key`), so a step run again does its work once.
   * `<saga id>.<place>`; a compensation gets `<saga id>.<place>.undo`, a key of its own.
   */
  readonly idempotencyKey: string;
  /** Runs of this step's function so far, this one included. */
  readonly attempt: number;
  /** Fires when the saga must stop (cancel, deadline, lost lease, shutdown). */
  readonly signal: AbortSignal;
}

export interface StepOptions<T> {
  /** Undo the step: run, newest first, when a later step fails for good. */
  compensate?: (result: T, step: StepContext) => Promise<unknown> | unknown;
  /** Runs of the function (and of its compensation) before it fails for good. @default 3 */
  maxAttempts?: number;
  /** First pause between runs, doubled each time. @default 1000 */
  retryDelayMs?: number;
  /**
   * Longest a run of the function (or of its compensation) may take: then its `signal` fires
   * and the run counts as failed (retried while runs are left; `504` when it was the last).
   * @default no limit but the saga's deadline
   */
  timeoutSeconds?: number;
}

/**
 * The store could not take a journal write (it is down, or refused the statement): not the
 * saga's failure, so nothing is compensated; the attempt fails and is retried as a job's is.
 */
class JournalWriteError extends Error {
  constructor(cause: unknown) {
    super(`the saga's journal could not be written: ${coerceError(cause).message}`, { cause });
  }
}

/** Longest step timeout a timer can hold (2^31 - 1 ms). */
const MAX_STEP_TIMEOUT_SECONDS = 2_147_483;

/** A run of a step that took longer than its `timeoutSeconds`. */
class StepTimedOut extends Error {
  constructor(seconds: number) {
    super(`timed out after ${seconds} s`);
  }
}

/** A saga's handle in its `run`: the job's ctx, and durable steps. */
export interface SagaContext extends JobContext {
  /**
   * Run `fn` once and record its result before going on: on a replay (after a crash, a
   * restart or a lost lease) a step that finished returns its recorded result without running.
   * Step names are unique within a saga; the steps must come in the same order on every run.
   */
  step<T>(name: string, fn: (step: StepContext) => Promise<T> | T, options?: StepOptions<T>): Promise<T>;
  /**
   * A durable timer: the saga is given back to the store until then (no worker slot held, the
   * attempt not counted) and goes on from here, on any node, once it is due. `duration` in ms,
   * or a time; `name` (unique, as a step's) defaults to `sleep-<place>`.
   */
  sleep(duration: number | Date, name?: string): Promise<void>;
  /**
   * A step that runs a job at another Tessera (any server of this API): submitted with the
   * step's idempotency key, so a step run again (after a crash) finds the same remote job
   * rather than making a second; followed as its `Retry-After` says; its JSON result is the
   * step's result, its failure the step's failure. A cancel or deadline of the saga cancels the
   * remote job. The worker slot is held while the remote job runs.
   */
  call<T = unknown>(name: string, target: CallTarget, options?: StepOptions<T>): Promise<T>;
  /**
   * The data of the event `event` sent to this saga (`POST /v1/jobs/{id}/events/{event}`),
   * however early it came. Until it comes the saga is given back to the store (no slot held);
   * after `timeoutSeconds` (default: until the saga's deadline) the wait fails as a step does.
   * `name` (unique, as a step's) defaults to `event:<event>`.
   */
  waitForEvent<T = unknown>(event: string, options?: { timeoutSeconds?: number; name?: string }): Promise<T>;
}

/** Where `saga.call` runs its job: a job type at another Tessera, or any endpoint of the pattern. */
export type CallTarget = TesseraTarget | EndpointTarget;

/** A job at another Tessera (any server of this API). */
export interface TesseraTarget {
  /** The other service's base URL (`https://payments.internal`). */
  url: string;
  type: string;
  input: unknown;
  apiKey?: string;
  /** Submit options the remote job gets (its own deadline, metadata, …). */
  timeoutSeconds?: number;
  metadata?: Record<string, string>;
}

/**
 * Any server of the asynchronous request-reply pattern: `body` is POSTed to `endpoint` with
 * the step's `Idempotency-Key`; its `202` is followed to `Location`, polled as `Retry-After`
 * says, and what the monitor ends with (a `303` to the result, or a `200`) is the result.
 */
export interface EndpointTarget {
  endpoint: string;
  body: unknown;
  /** Sent as `Authorization: Bearer …`, to the endpoint's origin only. */
  apiKey?: string;
  headers?: Record<string, string>;
}

/**
 * A replay for compensation reached what its journal does not hold as done: nothing more may
 * run, what was done is undone from here.
 */
class ReplayEnd extends Error {
  constructor() {
    super("the replay reached the end of the journal");
  }
}

/** How a run goes: a saga's own attempt, or a compensation job's replay of a saga that ended. */
export interface SagaRunMode {
  /**
   * The saga whose journal this is, when not the attempt's own job (a compensation job's): its
   * code is shown the saga's id, type, metadata and deadline, not the compensation job's.
   */
  saga?: Pick<JobRecord, "id" | "type" | "metadata" | "deadlineAt">;
  /** Replay only: return what the journal holds, run nothing new (a compensation's replay). */
  replayOnly?: boolean;
}

/** Submit `saga.call`'s remote job, with the step's key: a handle to follow it. */
function submitCall(target: CallTarget, idempotencyKey: string, signal: AbortSignal): Promise<JobHandle> {
  const apiKey = target.apiKey ? { apiKey: target.apiKey } : {};
  if ("endpoint" in target) {
    const client = createClient({ baseUrl: new URL(target.endpoint).origin, ...apiKey });
    const headers = target.headers ? { headers: target.headers } : {};
    return client.submitTo(target.endpoint, target.body, { idempotencyKey, signal, ...headers });
  }
  const client = createClient({ baseUrl: target.url, ...apiKey });
  return client.submit(target.type, target.input, {
    idempotencyKey,
    signal,
    ...(target.timeoutSeconds !== undefined ? { timeoutSeconds: target.timeoutSeconds } : {}),
    ...(target.metadata ? { metadata: target.metadata } : {}),
  });
}

/** A step that failed for good: the saga compensates, then fails. */
class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly problem: JobProblem,
  ) {
    super(problem.detail);
  }
}

interface Done {
  record: StepRecord;
  compensate: ((result: unknown, step: StepContext) => Promise<unknown> | unknown) | undefined;
  options: StepOptions<unknown>;
}

const STEP_NAME = /^[\x21-\x7e][\x20-\x7e]{0,127}$/;
const KIND_NAMES: Record<StepKind, string> = {
  step: "saga.step",
  sleep: "saga.sleep",
  call: "saga.call",
  event: "saga.waitForEvent",
};

/**
 * One attempt of a saga: replays its code against the journal, runs what is new, and on a
 * failure compensates what was done, newest first. Every journal write is fenced by the
 * attempt's lease; a write refused means another attempt owns the saga now, and this one stops.
 */
export class SagaRun {
  private seq = 0;
  /** A journal write not waited for yet (see `write`). */
  private pending: Promise<void> | null = null;
  private readonly names = new Set<string>();
  /** The saga reported progress of its own: the share of steps done is no longer reported. */
  private ownProgress = false;
  private readonly done: Done[] = [];
  private readonly job: ClaimedJob;
  /** The saga's id: its steps' keys, its journal and events are the saga's. */
  private readonly sagaId: string;
  private readonly saga: SagaRunMode["saga"];
  private readonly replayOnly: boolean;

  constructor(
    private readonly store: Store,
    private readonly ctx: JobContext,
    job: ClaimedJob,
    private readonly journal: readonly StepRecord[],
    /** Steps a run is expected to take: progress is the share of them done. */
    private readonly expectedSteps?: number,
    /** The clock of the journal's times and of sleeps. */
    private readonly now: () => number = Date.now,
    mode: SagaRunMode = {},
  ) {
    this.job = job;
    this.saga = mode.saga;
    this.sagaId = mode.saga?.id ?? job.id;
    this.replayOnly = mode.replayOnly ?? false;
  }

  /** A step done: `ran` when it ran in this attempt (a replayed one reported its share before). */
  private finished(done: Done, ran = false): void {
    this.done.push(done);
    if (ran && this.expectedSteps && !this.ownProgress) {
      const percent = Math.min(100, (this.done.length / this.expectedSteps) * 100);
      this.ctx.progress(percent, `step "${done.record.name}" done`);
    }
  }

  /** The ctx the saga's `run` gets: the job's own members, and `step`. */
  context(): SagaContext {
    const own: Record<string, unknown> = {
      // A compensation job's replay shows the saga's code the saga's own job, as it saw it.
      ...(this.saga
        ? {
            jobId: this.saga.id,
            type: this.saga.type,
            metadata: this.saga.metadata,
            deadlineAt: new Date(this.saga.deadlineAt),
          }
        : {}),
      progress: (percent: number, message?: string) => {
        this.ownProgress = true;
        this.ctx.progress(percent, message);
      },
      step: this.step.bind(this),
      sleep: this.sleep.bind(this),
      call: this.call.bind(this),
      waitForEvent: this.waitForEvent.bind(this),
    };
    return new Proxy(this.ctx, {
      get: (target, key, receiver) =>
        typeof key === "string" && Object.hasOwn(own, key) ? own[key] : Reflect.get(target, key, receiver),
      has: (target, key) => (typeof key === "string" && Object.hasOwn(own, key)) || Reflect.has(target, key),
    }) as SagaContext;
  }

  step<T>(name: string, fn: (step: StepContext) => Promise<T> | T, options: StepOptions<T> = {}): Promise<T> {
    return this.runStep("step", name, fn, options);
  }

  /** A step or a call: run `fn` once and record its result before going on. */
  private async runStep<T>(
    kind: "step" | "call",
    name: string,
    fn: (step: StepContext) => Promise<T> | T,
    options: StepOptions<T>,
  ): Promise<T> {
    const { seq, recorded } = this.place(name, kind);
    const { timeoutSeconds } = options;
    if (timeoutSeconds !== undefined && !(timeoutSeconds > 0 && timeoutSeconds <= MAX_STEP_TIMEOUT_SECONDS))
      throw new JobError(
        500,
        `step "${name}": timeoutSeconds must be > 0 and <= ${MAX_STEP_TIMEOUT_SECONDS}`,
      );
    const compensate = options.compensate as Done["compensate"];
    const erased = options as StepOptions<unknown>;
    if (recorded && recorded.status !== "running") {
      if (recorded.status === "failed") throw new StepFailed(name, recorded.error!);
      this.finished({ record: recorded, compensate, options: erased });
      return recorded.result as T;
    }
    if (this.replayOnly) throw new ReplayEnd();
    const record: StepRecord = recorded ?? {
      seq,
      name,
      kind,
      status: "running",
      attempts: 0,
      startedAt: this.now(),
      finishedAt: null,
      result: null,
      error: null,
      compensatedAt: null,
      compensationError: null,
    };
    const outcome = await this.runWithRetries(name, record, options, (context) => fn(context));
    if (outcome.ok) {
      const result = outcome.value === undefined ? null : outcome.value;
      // Stored as JSON: what a replay returns is what this returns.
      const succeeded = { ...record, status: "succeeded" as const, finishedAt: this.now(), result };
      // Not waited for here: the next step's start (or the end) waits for both.
      await this.write(succeeded, { later: true });
      this.finished({ record: succeeded, compensate, options: erased }, true);
      return JSON.parse(JSON.stringify(result)) as T;
    }
    const error = outcome.error;
    await this.write({ ...record, status: "failed", finishedAt: this.now(), error });
    throw new StepFailed(name, error);
  }

  call<T>(name: string, target: CallTarget, options: StepOptions<T> = {}): Promise<T> {
    return this.runStep(
      "call",
      name,
      async (step) => {
        const what =
          "endpoint" in target ? `POST ${target.endpoint}` : `the ${target.type} job at ${target.url}`;
        try {
          const handle = await submitCall(target, `saga-${step.idempotencyKey}`, step.signal);
          const result = await handle.result({ signal: step.signal }).catch(async (error: unknown) => {
            // Canceled, timed out or deleted here: the remote job is not wanted any more. A
            // lost lease or a shutdown leaves it running for the attempt that replays this step.
            const cause = (step.signal.reason as { reason?: unknown } | undefined)?.reason;
            // So is it after the step's last run timed out; a run left follows the same job.
            const lastRunTimedOut =
              step.signal.reason instanceof StepTimedOut && step.attempt >= (options.maxAttempts ?? 3);
            if (cause === "canceled" || cause === "timed_out" || cause === "deleted" || lastRunTimedOut)
              await handle.cancel().catch(() => undefined);
            throw error;
          });
          if (result instanceof Uint8Array) throw new JobError(500, `${what} answered bytes, not JSON`);
          return result as T;
        } catch (error) {
          // The remote job ended without success, or refused its input: the step fails for good.
          if (
            error instanceof JobFailureError ||
            (error instanceof HttpError && error.status < 500 && error.status !== 429)
          )
            throw new JobError(
              error instanceof JobFailureError && error.problem.status < 500 ? error.problem.status : 500,
              `${what}: ${error.message}`,
            );
          throw error; // unreachable, 5xx, 429 after the client's own retries: the step retries
        }
      },
      options,
    );
  }

  async waitForEvent<T>(event: string, options: { timeoutSeconds?: number; name?: string } = {}): Promise<T> {
    const { seq, recorded } = this.place(options.name ?? `event:${event}`, "event");
    if (recorded?.status === "failed") throw new StepFailed(recorded.name, recorded.error!);
    if (recorded?.status === "succeeded") {
      this.finished({ record: recorded, compensate: undefined, options: {} });
      return recorded.result as T;
    }
    if (this.replayOnly) throw new ReplayEnd();
    const now = this.now();
    const { timeoutSeconds } = options;
    const record: StepRecord = recorded ?? {
      seq,
      name: options.name ?? `event:${event}`,
      kind: "event",
      status: "running",
      attempts: 1,
      startedAt: now,
      finishedAt: null,
      // Its end, fixed when the wait began (null: the saga's deadline).
      result: { until: timeoutSeconds === undefined ? null : now + timeoutSeconds * 1000 },
      error: null,
      compensatedAt: null,
      compensationError: null,
    };
    const jobId = this.sagaId;
    const received = await this.store.sagaEvent({ jobId, name: event });
    if (received) {
      const done = { ...record, status: "succeeded" as const, finishedAt: now, result: received.data };
      await this.write(done);
      this.finished({ record: done, compensate: undefined, options: {} }, true);
      return received.data as T;
    }
    const until = (record.result as { until: number | null }).until;
    if (until !== null && until <= now) {
      const error = jobProblem(
        "job-failed",
        `no event "${event}" came by ${new Date(until).toISOString()}`,
        504,
      );
      await this.write({ ...record, status: "failed", finishedAt: now, error });
      throw new StepFailed(record.name, error);
    }
    if (!recorded) await this.write(record);
    // An event sent between the read above and the release finds the saga running, and wakes
    // nothing: look again once it is released.
    throw new JobSuspended(Math.min(until ?? Infinity, this.job.deadlineAt), async () => {
      if (await this.store.sagaEvent({ jobId, name: event }))
        await this.store.wake({ jobId, now: Date.now() });
    });
  }

  async sleep(duration: number | Date, name?: string): Promise<void> {
    const { seq, recorded } = this.place(name ?? `sleep-${this.seq}`, "sleep");
    if (recorded?.status === "succeeded")
      return this.finished({ record: recorded, compensate: undefined, options: {} });
    if (this.replayOnly) throw new ReplayEnd();
    const now = this.now();
    const record: StepRecord = recorded ?? {
      seq,
      name: name ?? `sleep-${seq}`,
      kind: "sleep",
      status: "running",
      attempts: 1,
      startedAt: now,
      finishedAt: null,
      // The wake-up time, fixed when the sleep began: a replay sleeps only what is left.
      result: { until: typeof duration === "number" ? now + Math.max(0, duration) : duration.getTime() },
      error: null,
      compensatedAt: null,
      compensationError: null,
    };
    const { until } = record.result as { until: number };
    if (!Number.isFinite(until)) throw new JobError(500, `sleep "${record.name}" has no valid end time`);
    if (until > now) {
      if (!recorded) await this.write(record);
      throw new JobSuspended(until);
    }
    const woke = { ...record, status: "succeeded" as const, finishedAt: now };
    await this.write(woke);
    this.finished({ record: woke, compensate: undefined, options: {} }, true);
  }

  /** The step's place in the run, checked against the journal; what the journal holds there. */
  private place(name: string, kind: StepKind): { seq: number; recorded: StepRecord | undefined } {
    if (typeof name !== "string" || !STEP_NAME.test(name))
      throw new JobError(500, `step name ${JSON.stringify(name)} must be 1-128 printable ASCII characters`);
    if (this.names.has(name)) throw this.nondeterministic(`step "${name}" is run twice in one saga`);
    this.names.add(name);
    const seq = this.seq++;
    const recorded = this.journal[seq];
    if (recorded && recorded.name !== name) {
      throw this.nondeterministic(
        `step ${seq} is "${name}" now, but the journal recorded "${recorded.name}"`,
      );
    }
    if (recorded && recorded.kind !== kind) {
      throw this.nondeterministic(
        `step ${seq} ("${name}") is a ${KIND_NAMES[kind]} now, but the journal recorded a ${KIND_NAMES[recorded.kind]}`,
      );
    }
    return { seq, recorded };
  }

  /**
   * After `run` threw: compensate what was done, newest first, then the error that ends the
   * saga. An abort (cancel, deadline, lost lease, shutdown) and a suspension pass as they are.
   */
  async fail(thrown: unknown): Promise<never> {
    if (
      thrown instanceof JobAbortedError ||
      thrown instanceof JobSuspended ||
      thrown instanceof JournalWriteError ||
      this.ctx.signal.aborted
    )
      throw thrown;
    await this.settle(); // what was done is recorded before anything is undone
    if (thrown instanceof JobError && thrown.slug === "saga-nondeterministic") throw thrown;
    const failure =
      thrown instanceof StepFailed
        ? `step "${thrown.step}" failed: ${thrown.problem.detail}`
        : `the saga failed outside its steps: ${coerceError(thrown).message}`;
    const compensated = await this.compensate(failure, { retryFailed: false });
    const undone =
      compensated.length > 0 ? `; compensated: ${compensated.join(", ")}` : "; nothing to compensate";
    throw new JobError(500, `${failure}${undone}`, { problem: "saga-step-failed" });
  }

  /**
   * A compensation job's end of the replay (`replayOnly`): the saga's code stopped where its
   * journal ends (or ran to its end, or met its failed step). Undo what was done, newest
   * first, a compensation that failed before included; the names undone, newest first.
   */
  async undo(thrown: unknown, why: string): Promise<string[]> {
    if (this.ctx.signal.aborted) throw thrown ?? this.ctx.signal.reason;
    if (thrown instanceof JobAbortedError || thrown instanceof JournalWriteError) throw thrown;
    if (thrown instanceof JobError && thrown.slug === "saga-nondeterministic") throw thrown;
    await this.settle();
    return this.compensate(why, { retryFailed: true });
  }

  /** Run the compensations of the steps done, newest first; those undone, newest first. */
  private async compensate(failure: string, { retryFailed }: { retryFailed: boolean }): Promise<string[]> {
    const compensated: string[] = [];
    for (const { record, compensate, options } of [...this.done].reverse()) {
      if (!compensate) continue;
      if (record.status === "compensated") {
        compensated.push(record.name);
        continue;
      }
      if (record.status === "compensation_failed" && !retryFailed) {
        throw this.compensationFailed(failure, record.name, record.compensationError!, compensated);
      }
      const outcome = await this.runWithRetries(
        `compensation of "${record.name}"`,
        record,
        options,
        (context) => compensate(record.result, context),
      );
      if (!outcome.ok) {
        await this.write({ ...record, status: "compensation_failed", compensationError: outcome.error });
        throw this.compensationFailed(failure, record.name, outcome.error, compensated);
      }
      await this.write({
        ...record,
        status: "compensated",
        compensatedAt: this.now(),
        compensationError: null,
      });
      compensated.push(record.name);
    }
    return compensated;
  }

  /** Run `fn` until it succeeds or fails for good; each run is counted in the journal first. */
  private async runWithRetries(
    what: string,
    record: StepRecord,
    options: StepOptions<never> | StepOptions<unknown>,
    fn: (step: StepContext) => unknown,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error: JobProblem }> {
    const maxAttempts = options.maxAttempts ?? 3;
    const baseDelay = options.retryDelayMs ?? 1000;
    // A compensation's key is its own: a payment service must not take a refund for a replay
    // of the charge it undoes.
    const key = `${this.sagaId}.${record.seq}${record.status === "running" ? "" : ".undo"}`;
    for (let run = 1; ; run++) {
      if (record.status === "running") {
        record.attempts++;
        await this.write(record);
      }
      try {
        const value = await this.runOnce(fn, key, run, options.timeoutSeconds);
        return { ok: true, value };
      } catch (thrown) {
        if (this.ctx.signal.aborted) throw thrown; // stopped: not the step's failure
        const error = coerceError(thrown);
        const final = thrown instanceof JobError || run >= maxAttempts;
        if (final) {
          const status =
            thrown instanceof JobError ? thrown.status : thrown instanceof StepTimedOut ? 504 : 500;
          return { ok: false, error: jobProblem("job-failed", `${what}: ${error.message}`, status) };
        }
        await sleep(baseDelay * 2 ** (run - 1), undefined, { signal: this.ctx.signal });
      }
    }
  }

  /** One run of a step's function, bounded by its timeout: its signal fires at either stop. */
  private async runOnce(
    fn: (step: StepContext) => unknown,
    idempotencyKey: string,
    attempt: number,
    timeoutSeconds: number | undefined,
  ): Promise<unknown> {
    if (timeoutSeconds === undefined) return fn({ idempotencyKey, attempt, signal: this.ctx.signal });
    const timer = new AbortController();
    const signal = AbortSignal.any([this.ctx.signal, timer.signal]);
    let handle: NodeJS.Timeout | undefined;
    // A function that ignores its signal is not waited for past its time.
    const late = new Promise<never>((_, reject) => {
      handle = setTimeout(() => {
        const error = new StepTimedOut(timeoutSeconds);
        timer.abort(error);
        reject(error);
      }, timeoutSeconds * 1000);
    });
    try {
      return await Promise.race([
        Promise.resolve().then(() => fn({ idempotencyKey, attempt, signal })),
        late,
      ]);
    } finally {
      clearTimeout(handle);
    }
  }

  /**
   * Record `step`, fenced by the lease. With `later`, do not wait: the write joins the next
   * one (a step's outcome goes out with the next step's start, one round trip for both), and
   * every later write, the end and a suspension wait for it (`settle`).
   */
  private async write(step: StepRecord, { later = false } = {}): Promise<void> {
    const previous = this.pending;
    this.pending = null;
    const own = this.store
      .recordStep({
        lease: { id: this.job.id, leaseToken: this.job.leaseToken },
        step,
        ...(this.sagaId !== this.job.id ? { sagaId: this.sagaId } : {}),
      })
      .then(
        (written) => {
          if (!written) throw new JobAbortedError("lease-lost", this.job.id);
        },
        (error: unknown) => {
          throw new JournalWriteError(error);
        },
      );
    const both = previous ? Promise.all([previous, own]).then(() => undefined) : own;
    if (!later) return both;
    both.catch(() => undefined); // seen by whoever settles it
    this.pending = both;
  }

  /** Wait for a write left pending: before the saga's end, and before it compensates. */
  async settle(): Promise<void> {
    const pending = this.pending;
    this.pending = null;
    await pending;
  }

  private nondeterministic(detail: string): JobError {
    return new JobError(500, detail, { problem: "saga-nondeterministic" });
  }

  private compensationFailed(
    failure: string,
    step: string,
    error: JobProblem,
    compensated: string[],
  ): JobError {
    const before = compensated.length > 0 ? `; compensated before it: ${compensated.join(", ")}` : "";
    return new JobError(
      500,
      `${failure}; then the compensation of "${step}" failed: ${error.detail}${before}`,
      {
        problem: "saga-compensation-failed",
      },
    );
  }
}
