import type { Logger } from "pino";
import { lifecycleEvent } from "../events/lifecycle.js";
import { coerceError, JobError, JobSuspended, type JobProblem } from "../jobs/errors.js";
import { jobProblem } from "../jobs/problems.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { CompleteParams, NewEvent, ResultPayload, Store } from "../store/store.js";
import type { Attempt, AttemptOutcome, HandlerOutcome } from "./attempt.js";
import { retryDelay } from "./backoff.js";
import type { ProgressBuffer } from "./progress-buffer.js";
import { discardResult, toResultPayload } from "./result-payload.js";

/**
 * Writes the outcome of each ended attempt, fenced by its lease: the succeeded attempts of one
 * event-loop turn in one write, failures and attempts with a progress report still to write
 * one by one. Counts the attempts not yet recorded, so that stop can wait for them.
 */
export class OutcomeRecorder {
  /**
   * Attempts whose outcome is being recorded (their slot is free already): a lost lease reported
   * by a heartbeat or a progress write sent before the handler ended must not abort them.
   */
  private readonly recording = new Set<Attempt>();
  /** Succeeded attempts waiting for this turn's one completion write. */
  private completing: { attempt: Attempt; result: ResultPayload; now: number }[] = [];
  /** Attempts started and not yet recorded, past the end of their handlers (stop waits for them). */
  private unrecorded = 0;
  private readonly recordedWaiters: (() => void)[] = [];

  constructor(
    private readonly deps: {
      store: Store;
      registry: JobRegistry;
      logger: Logger;
      now: () => number;
      maxResultBytes: number;
      progress: ProgressBuffer;
      /**
       * Events committed with a completion (`ctx.emit`, and the job's lifecycle event if it
       * asked for one): their triggers are run now.
       */
      onEvents?: (events: readonly NewEvent[]) => void;
    },
  ) {}

  /** Attempts whose outcome is being written; their leases are still held. */
  get finishing(): ReadonlySet<Attempt> {
    return this.recording;
  }

  /** An attempt starts: it counts as unrecorded until `settle` has written its outcome. */
  started(): void {
    this.unrecorded++;
  }

  /** Record the outcome of an attempt that ended or was aborted. */
  settle(attempt: Attempt, outcome: AttemptOutcome): void {
    // Canceled, timed out, lease lost or shutting down: someone else owns the state now.
    if ("aborted" in outcome || attempt.aborted) {
      if ("ok" in outcome && outcome.ok) discardResult(outcome.value);
      this.recorded(attempt);
      return;
    }
    this.recording.add(attempt);
    if (outcome.ok && !this.deps.progress.has(attempt)) {
      const result = this.resultOf(outcome.value);
      if (result) {
        this.completing.push({ attempt, result, now: this.deps.now() });
        if (this.completing.length === 1) setImmediate(this.writeCompletions);
        return;
      }
    }
    // A failure, a result the store cannot take, or a last progress report to write first.
    this.track(attempt, this.record(attempt, outcome));
  }

  /** Settles once every attempt started so far is recorded. */
  allRecorded(): Promise<void> {
    if (this.unrecorded === 0) return Promise.resolve();
    return new Promise((resolve) => this.recordedWaiters.push(resolve));
  }

  /** Log what recording `attempt` threw, then let it go. */
  private track(attempt: Attempt, write: Promise<void>): void {
    write
      .catch((error: unknown) =>
        this.deps.logger.error({ err: error, jobId: attempt.job.id }, "recording outcome failed"),
      )
      .finally(() => this.recorded(attempt));
  }

  /** The handler's value as the store keeps it; null if it cannot be (record fails the job). */
  private resultOf(value: unknown): ResultPayload | null {
    try {
      return toResultPayload(value, this.deps.maxResultBytes);
    } catch {
      return null;
    }
  }

  /**
   * The completions of one turn, in one write. If that write fails, each is tried alone, so
   * that one job's trouble (a large result that could not be stored) costs no other job its
   * outcome: the lease fences every write, so a second try is safe.
   */
  private readonly writeCompletions = (): void => {
    const batch = this.completing;
    this.completing = [];
    const params = batch.map(({ attempt, result, now }) => {
      const item: CompleteParams = {
        lease: attempt.lease,
        result,
        now,
        hasCallback: attempt.job.callback !== null,
        lifecycleEvents: attempt.job.lifecycleEvents === true,
      };
      if (attempt.emitted) item.events = attempt.emitted;
      return item;
    });
    this.deps.store
      .completeMany(params)
      .then(
        (applied) => {
          for (let i = 0; i < batch.length; i++) {
            const { attempt } = batch[i]!;
            this.warnIfLost(attempt, applied[i]!);
            if (applied[i]) this.committed(attempt, params[i]!.now);
            this.recorded(attempt);
          }
        },
        (error: unknown) => {
          this.deps.logger.warn(
            { err: error, jobs: batch.length },
            "a batch of completions failed; each is tried alone",
          );
          for (let i = 0; i < batch.length; i++) {
            const { attempt } = batch[i]!;
            const alone = this.deps.store.complete(params[i]!);
            this.track(
              attempt,
              alone.then((applied) => {
                this.warnIfLost(attempt, applied);
                if (applied) this.committed(attempt, params[i]!.now);
              }),
            );
          }
        },
      )
      .catch((error: unknown) => this.deps.logger.error({ err: error }, "recording outcomes failed"));
  };

  /**
   * The attempt's success is committed at `now`, its events with it: their triggers go now. Its
   * lifecycle event is made again here as the store made it (the same id, hash and data).
   */
  private committed(attempt: Attempt, now: number): void {
    const { job } = attempt;
    if (!job.lifecycleEvents) {
      if (attempt.emitted) this.deps.onEvents?.(attempt.emitted);
      return;
    }
    const succeeded = lifecycleEvent(job, "succeeded", now);
    this.deps.onEvents?.(attempt.emitted ? [...attempt.emitted, succeeded] : [succeeded]);
  }

  private warnIfLost(attempt: Attempt, applied: boolean): void {
    if (applied) return;
    const { job } = attempt;
    this.deps.logger.warn(
      { jobId: job.id, attempt: job.attempt },
      "result not recorded: the lease was lost (or an earlier try recorded it)",
    );
  }

  /** The attempt's outcome is written, or needs no write: nothing of it is kept here any more. */
  private recorded(attempt: Attempt): void {
    this.recording.delete(attempt);
    this.deps.progress.forget(attempt);
    if (--this.unrecorded === 0) for (const resolve of this.recordedWaiters.splice(0)) resolve();
  }

  /** An outcome written on its own: a failure, or after the attempt's last progress report. */
  private async record(attempt: Attempt, outcome: HandlerOutcome): Promise<void> {
    const { job, lease } = attempt;
    const { store, logger } = this.deps;
    // The handler's last progress report lands before its outcome (one being written included).
    await this.deps.progress.written(attempt);
    const lastProgress = this.deps.progress.take(attempt);
    if (lastProgress) {
      await store.progress({ lease, ...lastProgress, now: this.deps.now() }).catch(() => false);
    }
    const now = this.deps.now();

    if (outcome.ok) {
      let applied: boolean;
      try {
        const result = toResultPayload(outcome.value, this.deps.maxResultBytes);
        applied = await store.complete({
          lease,
          result,
          now,
          hasCallback: job.callback !== null,
          lifecycleEvents: job.lifecycleEvents === true,
          ...(attempt.emitted ? { events: attempt.emitted } : {}),
        });
        if (applied) this.committed(attempt, now);
      } catch (error) {
        if (!(error instanceof JobError)) throw error;
        discardResult(outcome.value);
        applied = await store.fail({ lease, error: problemOf(error), retryAt: null, now });
      }
      if (!applied)
        logger.warn({ jobId: job.id, attempt: job.attempt }, "result discarded: the lease was lost");
      return;
    }

    if (outcome.error instanceof JobSuspended) {
      // Given back until then, uncounted; a queued event wakes a worker at that time.
      await store.release({ leases: [lease], now: outcome.error.runAt });
      await outcome.error
        .afterRelease?.()
        .catch((error: unknown) =>
          logger.warn({ err: error, jobId: job.id }, "could not check a suspended job"),
        );
      return;
    }
    const error = coerceError(outcome.error);
    const final = error instanceof JobError || job.attempt >= job.maxAttempts;
    const definition = this.deps.registry.get(job.type)!.definition;
    const retryAt = final ? null : now + retryDelay(job.attempt, definition.retryDelayMs);
    const applied = await store.fail({ lease, error: problemOf(error), retryAt, now });
    logger.info(
      { jobId: job.id, type: job.type, attempt: job.attempt, retryAt, applied, err: error.message },
      final ? "job failed" : "attempt failed, retry scheduled",
    );
  }
}

function problemOf(error: Error): JobProblem {
  if (error instanceof JobError) return jobProblem(error.slug, error.message, error.status);
  return jobProblem("job-failed", error.message || error.name);
}
