import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { coerceError, JobError, type AbortCause, type JobProblem } from "../jobs/errors.js";
import { jobProblem } from "../jobs/problems.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { JobStatus } from "../jobs/states.js";
import type { ClaimedJob, ResultPayload, Store, StoreEvent, SubmitOutcome } from "../store/store.js";
import { Attempt, type AttemptOutcome, type HandlerOutcome } from "./attempt.js";
import { retryDelay } from "./backoff.js";
import { createJobContext } from "./context.js";
import { discardResult, toResultPayload } from "./result-payload.js";

export interface WorkerOptions {
  /** Jobs run at once in this process. 0 disables the worker. @default 10 */
  concurrency: number;
  /** How long a claim holds a job without a heartbeat. @default 30000 */
  leaseMs: number;
  /** How often running jobs' leases are extended. @default leaseMs / 3 */
  heartbeatMs: number;
  /** Fallback poll for work this process was not told about. @default 2000 */
  pollIntervalMs: number;
  /** Results larger than this fail the job. @default 67108864 (64 MiB) */
  maxResultBytes: number;
  /**
   * Jobs claimed ahead of free slots, started as slots free up without a round trip. They are
   * leased (shown as running) while they wait here. 0 claims only for free slots. @default 0
   */
  prefetch?: number;
  /**
   * Job types that share one cap besides their own (command tasks: `--max-tasks`), so that a
   * burst across many types still cannot start more than `limit` of them at once.
   */
  sharedLimit?: { types: ReadonlySet<string>; limit: number };
}

/** Observed once per finished attempt; feeds the Retry-After estimate. */
export interface AttemptTiming {
  type: string;
  queueWaitMs: number;
  runMs: number;
}

/** Node's timers take at most 2^31 - 1 ms; a later deadline re-arms when this passes. */
const MAX_TIMER_MS = 2_147_483_647;

const ABORT_BY_STATUS: Partial<Record<JobStatus, AbortCause>> = {
  canceled: "canceled",
  timed_out: "timed_out",
  failed: "lease-lost",
  succeeded: "lease-lost",
};

/**
 * The worker: claims jobs in batches when it has free slots, runs their handlers, keeps their
 * leases alive with one batched heartbeat, and records each outcome with a fenced write.
 * Wakes on store events (work queued, a slot freed) and on a slow fallback poll, never in a
 * tight loop.
 */
export class WorkerRuntime {
  private readonly running = new Map<string, Attempt>();
  /** Claimed ahead (see `prefetch`), in claim order, waiting for a slot. */
  private prefetched: ClaimedJob[] = [];
  private readonly runningByType = new Map<string, number>();
  /** Running jobs of the sharedLimit's types. */
  private sharedRunning = 0;
  private filling = false;
  private refill = false;
  private stopping = false;
  private started = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** One timer for the earliest deadline of the running attempts, not one per attempt. */
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineTimerAt = Infinity;
  private lastHeartbeatOk = 0;
  private unsubscribe: (() => void) | null = null;
  /** Latest unwritten progress per attempt (keyed by run, so a stale attempt never writes under a newer lease). */
  private readonly pendingProgress = new Map<Attempt, { percent: number | null; message: string | null }>();
  private progressScheduled = false;
  /**
   * Attempts whose outcome is being recorded (their slot is free already): a lost lease reported
   * by a heartbeat or a progress write sent before the handler ended must not abort them.
   */
  private readonly finishing = new Set<Attempt>();
  /** Succeeded attempts waiting for this turn's one completion write. */
  private completing: { attempt: Attempt; result: ResultPayload; now: number }[] = [];
  /** Attempts started and not yet recorded, past the end of their handlers (stop waits for them). */
  private unrecorded = 0;
  private readonly recordedWaiters: (() => void)[] = [];
  /** The claim loop in progress, if any (stop waits for it). */
  private fillRun: Promise<void> | null = null;
  /** Slots promised to jobs being submitted through `submit` (see there). */
  private reserved = 0;
  /** The last claim came back short and no work was announced since: nothing waits in the queue. */
  private idle = false;

  constructor(
    private readonly deps: {
      store: Store;
      registry: JobRegistry;
      options: WorkerOptions;
      logger: Logger;
      now?: () => number;
      onAttemptFinished?: (timing: AttemptTiming) => void;
      /**
       * At stop, after the attempts still running were aborted and before their leases are
       * released: wait for what they started outside this process (command tasks) to be gone,
       * so no other node runs a job while its old process still does.
       */
      beforeRelease?: () => Promise<void>;
    },
  ) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  get runningCount(): number {
    return this.running.size;
  }

  start(): void {
    if (this.started || this.deps.options.concurrency <= 0) return;
    this.started = true;
    this.lastHeartbeatOk = this.now();
    this.unsubscribe = this.deps.store.subscribe((event) => this.onStoreEvent(event));
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.deps.options.heartbeatMs);
    this.heartbeatTimer.unref();
    this.wake();
  }

  /**
   * Stop claiming; let running jobs finish within `graceMs`; then abort the rest and release
   * their leases so another worker starts them at once instead of after the lease expires.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.started) return;
    this.stopping = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    // A claim already sent hands its jobs straight back (see fill): nothing starts after stop.
    const settled = Promise.all([this.fillRun, this.allRecorded()]);
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise((resolve) => (graceTimer = setTimeout(resolve, graceMs)))]);
    clearTimeout(graceTimer);
    const unstarted = this.prefetched.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
    this.prefetched = [];
    // Aborted, the attempts still running write nothing: their leases are released here.
    const leftover = [...this.running.values()];
    for (const attempt of leftover) attempt.abort("shutdown");
    await this.deps
      .beforeRelease?.()
      .catch((error: unknown) => this.deps.logger.error({ err: error }, "stopping running tasks failed"));
    const release = [...unstarted, ...leftover.map((r) => r.lease)];
    if (release.length > 0) {
      await this.deps.store
        .release({ leases: release, now: this.now() })
        .catch((error: unknown) => this.deps.logger.error({ err: error }, "releasing leases failed"));
    }
    await this.flushProgress();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.deadlineTimerAt = Infinity;
    this.unsubscribe?.();
    this.started = false;
  }

  /**
   * Submit a job through this worker. A job due now, of a type this worker runs without its own
   * limit, submitted while a slot is idle and nothing waits in the queue, is stored already
   * leased to this worker and starts as soon as it is committed: no claim round trip, no
   * wake-up, and no job overtaken. Otherwise it is queued as usual.
   */
  async submit(params: Parameters<Store["submit"]>[0]): Promise<SubmitOutcome> {
    const { job, now } = params;
    const { store, options } = this.deps;
    const definition = this.deps.registry.get(job.type)?.definition;
    const handoff =
      definition !== undefined &&
      // A type with a limit of its own only while the limit has room for every handoff in flight.
      this.typeFree(definition.type) > this.reserved &&
      job.runAt <= now &&
      this.started &&
      !this.stopping &&
      this.idle &&
      this.prefetched.length === 0 &&
      this.freeSlots() > 0;
    if (!handoff) return store.submit(params);
    const lease = { token: randomUUID(), expiresAt: now + options.leaseMs };
    this.reserved++;
    let outcome: SubmitOutcome;
    try {
      outcome = await store.submit({ ...params, lease });
    } finally {
      this.reserved--;
    }
    if (outcome.kind !== "created") {
      this.wake(); // the slot it held back is free again
      return outcome;
    }
    const claimed: ClaimedJob = {
      ...outcome.job,
      leaseToken: lease.token,
      // As the store keeps it: a lease never outlives the job's deadline.
      leaseExpiresAt: Math.min(lease.expiresAt, outcome.job.deadlineAt),
    };
    if (this.stopping) {
      await store.release({ leases: [{ id: claimed.id, leaseToken: lease.token }], now: this.now() });
    } else this.execute(claimed);
    return outcome;
  }

  private onStoreEvent(event: StoreEvent): void {
    if (event.kind === "queued") {
      if (!this.deps.registry.get(event.type)) return;
      if (event.runAt <= this.now()) {
        this.idle = false;
        this.wake();
      } else this.scheduleWake(event.runAt);
      return;
    }
    if (event.kind === "outbox" || event.kind === "progress") return; // for the deliverer, the waits
    if (event.kind === "resync") {
      this.idle = false;
      this.wake();
      return;
    }
    if (this.prefetched.length > 0 && event.status !== "succeeded") {
      // Canceled, timed out or swept while waiting here: it must not start.
      this.prefetched = this.prefetched.filter((j) => j.id !== event.jobId);
    }
    const local = this.running.get(event.jobId);
    const cause = ABORT_BY_STATUS[event.status];
    // Our own completion also arrives here, but its attempt has left `running` by then.
    if (local && cause) local.abort(cause);
  }

  private scheduleWake(at: number): void {
    if (this.stopping || at >= this.wakeAt) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeAt = Infinity;
        this.wakeTimer = null;
        this.idle = false; // delayed work may be due now
        this.wake();
      },
      Math.max(0, at - this.now()),
    );
    this.wakeTimer.unref();
  }

  /** Claim as long as there are free slots and work; coalesces concurrent wake-ups. */
  private wake(): void {
    if (this.stopping) return;
    if (this.filling) {
      this.refill = true;
      return;
    }
    this.filling = true;
    let failed = false;
    this.fillRun = this.fill()
      .catch((error: unknown) => {
        failed = true;
        this.deps.logger.error({ err: error }, "claiming jobs failed");
      })
      .finally(() => {
        this.filling = false;
        this.fillRun = null;
        // A slot freed after the loop's last look (its job ended while the fill was returning)
        // asked for a refill that no loop will see: look again now, not at the fallback poll.
        // Not after a failed claim: a store that is down is not asked again in a tight loop.
        if (this.refill && !failed) this.wake();
        // Whatever happens, look again later: the fallback poll covers missed wake-ups.
        else this.scheduleWake(this.now() + this.deps.options.pollIntervalMs);
      });
  }

  private async fill(): Promise<void> {
    // Let every slot freed in this turn (a batch of completions commits together) be counted,
    // so one claim takes them all instead of one claim per freed slot.
    await new Promise((resolve) => setImmediate(resolve));
    do {
      this.refill = false;
      this.startPrefetched();
      let claimedFull = true;
      while (claimedFull && !this.stopping) {
        claimedFull = false;
        let claimedShort = false;
        for (const group of this.claimGroups()) {
          const claimed = await this.deps.store.claim({
            types: group.types,
            limit: group.limit,
            leaseMs: this.deps.options.leaseMs,
            now: this.now(),
          });
          if (this.stopping) {
            // Stopped while the claim was in flight: hand the jobs back untouched.
            await this.deps.store.release({
              leases: claimed.map((j) => ({ id: j.id, leaseToken: j.leaseToken })),
              now: this.now(),
            });
            return;
          }
          this.prefetched.push(...claimed);
          this.startPrefetched();
          if (claimed.length === group.limit) claimedFull = true;
          else claimedShort = true;
        }
        // Set only after a claim looked (a fill without free slots learns nothing), and not
        // while a wake-up announced more work in the meantime.
        if (claimedShort && !claimedFull) this.idle = !this.refill;
      }
      if (!this.refill && !this.stopping && this.freeSlots() > 0) {
        const next = await this.deps.store.nextRunAt({ types: this.deps.registry.types });
        // A job already due that the claim did not take waits for a slot of its own type (the
        // slot's end wakes us) or a row another claim holds: not for a claim again at once.
        if (next !== null && next > this.now()) this.scheduleWake(next);
      }
    } while (this.refill && !this.stopping);
  }

  /** Jobs of `type` this process may still start: its own limit and the shared one. */
  private typeFree(type: string): number {
    const limit = this.deps.registry.get(type)?.definition.concurrency;
    const own = limit === undefined ? Infinity : limit - (this.runningByType.get(type) ?? 0);
    const shared = this.deps.options.sharedLimit;
    return shared?.types.has(type) ? Math.min(own, shared.limit - this.sharedRunning) : own;
  }

  private freeSlots(): number {
    return this.deps.options.concurrency - this.running.size - this.reserved;
  }

  /** Start waiting jobs, in claim order, as far as free slots and per-type limits allow. */
  private startPrefetched(): void {
    // Called whenever a slot frees. Each job leaves the buffer before it starts: a handler may
    // cause an event that filters the buffer (a job canceled) while this loop runs.
    let i = 0;
    while (i < this.prefetched.length && this.freeSlots() > 0 && !this.stopping) {
      const job = this.prefetched[i]!;
      if (this.typeFree(job.type) <= 0) i++;
      else {
        this.prefetched.splice(i, 1);
        this.execute(job);
      }
    }
  }

  /**
   * The claims to make, each computed from the slots free at that moment (so a type with its
   * own limit never reserves slots it has no work for). A type whose limit is tighter than the
   * free slots claims alone, up to its limit; then every type that cannot overshoot its limit
   * shares one claim, highest priority first.
   */
  private *claimGroups(): Generator<{ types: string[]; limit: number }> {
    const definitions = this.deps.registry.definitions();
    const typeFree = (d: (typeof definitions)[number]) => this.typeFree(d.type);
    const shared = this.deps.options.sharedLimit;
    if (shared) {
      // The shared types claim together, up to the cap less those already waiting here.
      const waiting = this.prefetched.filter((j) => shared.types.has(j.type)).length;
      const own = shared.limit - this.sharedRunning - waiting;
      const free = this.freeSlots() - this.prefetched.length;
      const types = definitions.filter((d) => shared.types.has(d.type) && typeFree(d) > 0).map((d) => d.type);
      if (own > 0 && free > 0 && types.length > 0) yield { types, limit: Math.min(own, free) };
    }
    for (const definition of definitions) {
      if (shared?.types.has(definition.type)) continue;
      const free = this.freeSlots() - this.prefetched.length;
      if (free <= 0) break;
      const own = typeFree(definition);
      if (own > 0 && own < free) yield { types: [definition.type], limit: own };
    }
    const free = Math.max(0, this.freeSlots());
    // Claim ahead up to `prefetch` jobs beyond the free slots (fewer while some still wait).
    const limit = free + (this.deps.options.prefetch ?? 0) - this.prefetched.length;
    if (limit <= 0) return;
    const types = definitions
      .filter((d) => !shared?.types.has(d.type) && typeFree(d) >= Math.max(1, free))
      .map((d) => d.type);
    if (types.length > 0) yield { types, limit };
  }

  private execute(job: ClaimedJob): void {
    const registered = this.deps.registry.get(job.type)!;
    const attempt = new Attempt(job, this.now(), this.settled);
    // Claimed again while an earlier attempt still runs here: that attempt's lease is gone.
    this.running.get(job.id)?.abort("lease-lost");
    this.running.set(job.id, attempt);
    this.runningByType.set(job.type, (this.runningByType.get(job.type) ?? 0) + 1);
    if (this.deps.options.sharedLimit?.types.has(job.type)) this.sharedRunning++;
    // The deadline is enforced here too, so a handler stops at deadlineAt even before the sweeper.
    this.watchDeadline(job.deadlineAt);

    const ctx = createJobContext(job, attempt, this.deps.logger, this.queueProgress);
    this.unrecorded++;
    attempt.run(registered.definition, job.input, ctx);
  }

  /**
   * An attempt ended (or was aborted). Its slot is free at once, while its outcome commits: the
   * next claim overlaps that commit instead of waiting for it (the lease still fences the job).
   * Succeeded attempts are written together, once per event-loop turn.
   */
  private readonly settled = (attempt: Attempt, outcome: AttemptOutcome): void => {
    try {
      this.freeSlot(attempt);
    } catch (error) {
      // Starting the next job went wrong: that must not cost this job its outcome.
      this.deps.logger.error({ err: error }, "starting a job failed");
    }
    // Canceled, timed out, lease lost or shutting down: someone else owns the state now.
    if ("aborted" in outcome || attempt.aborted) {
      if ("ok" in outcome && outcome.ok) discardResult(outcome.value);
      this.recorded(attempt);
      return;
    }
    this.finishing.add(attempt);
    if (outcome.ok && !this.pendingProgress.has(attempt)) {
      const result = this.resultOf(outcome.value);
      if (result) {
        this.completing.push({ attempt, result, now: this.now() });
        if (this.completing.length === 1) setImmediate(this.writeCompletions);
        return;
      }
    }
    // A failure, a result the store cannot take, or a last progress report to write first.
    this.track(attempt, this.record(attempt, outcome));
  };

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
      return toResultPayload(value, this.deps.options.maxResultBytes);
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
    const params = batch.map(({ attempt, result, now }) => ({
      lease: attempt.lease,
      result,
      now,
      hasCallback: attempt.job.callback !== null,
    }));
    this.deps.store
      .completeMany(params)
      .then(
        (applied) => {
          for (let i = 0; i < batch.length; i++) {
            const { attempt } = batch[i]!;
            this.warnIfLost(attempt, applied[i]!);
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
              alone.then((applied) => this.warnIfLost(attempt, applied)),
            );
          }
        },
      )
      .catch((error: unknown) => this.deps.logger.error({ err: error }, "recording outcomes failed"));
  };

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
    this.finishing.delete(attempt);
    this.pendingProgress.delete(attempt);
    if (--this.unrecorded === 0) for (const resolve of this.recordedWaiters.splice(0)) resolve();
  }

  /** Settles once every attempt started so far is recorded. */
  private allRecorded(): Promise<void> {
    if (this.unrecorded === 0) return Promise.resolve();
    return new Promise((resolve) => this.recordedWaiters.push(resolve));
  }

  private watchDeadline(at: number): void {
    if (at >= this.deadlineTimerAt) return;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = at;
    this.deadlineTimer = setTimeout(
      () => this.enforceDeadlines(),
      Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())),
    );
    this.deadlineTimer.unref();
  }

  /** Abort the attempts past their deadline; watch the earliest of the others. */
  private enforceDeadlines(): void {
    this.deadlineTimer = null;
    this.deadlineTimerAt = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const attempt of this.running.values()) {
      if (attempt.job.deadlineAt <= now) attempt.abort("timed_out");
      else if (!attempt.aborted) next = Math.min(next, attempt.job.deadlineAt);
    }
    if (next < Infinity) this.watchDeadline(next);
  }

  private freeSlot(attempt: Attempt): void {
    const { job, startedAt } = attempt;
    // A newer attempt of the same job may have replaced this one (lease lost, claimed again).
    if (this.running.get(job.id) === attempt) this.running.delete(job.id);
    this.runningByType.set(job.type, (this.runningByType.get(job.type) ?? 1) - 1);
    if (this.deps.options.sharedLimit?.types.has(job.type)) this.sharedRunning--;
    this.deps.onAttemptFinished?.({
      type: job.type,
      queueWaitMs: Math.max(0, startedAt - job.runAt),
      runMs: this.now() - startedAt,
    });
    // A job claimed ahead takes the slot at once, without waiting for the claim loop's turn.
    this.startPrefetched();
    this.wake();
  }

  /** An outcome written on its own: a failure, or after the attempt's last progress report. */
  private async record(attempt: Attempt, outcome: HandlerOutcome): Promise<void> {
    const { job, lease } = attempt;
    const { store, logger } = this.deps;
    // The handler's last progress report lands before its outcome.
    const lastProgress = this.pendingProgress.get(attempt);
    if (lastProgress) {
      this.pendingProgress.delete(attempt);
      await store.progress({ lease, ...lastProgress, now: this.now() }).catch(() => false);
    }
    const now = this.now();

    if (outcome.ok) {
      let applied: boolean;
      try {
        const result = toResultPayload(outcome.value, this.deps.options.maxResultBytes);
        applied = await store.complete({ lease, result, now, hasCallback: job.callback !== null });
      } catch (error) {
        if (!(error instanceof JobError)) throw error;
        discardResult(outcome.value);
        applied = await store.fail({ lease, error: problemOf(error), retryAt: null, now });
      }
      if (!applied)
        logger.warn({ jobId: job.id, attempt: job.attempt }, "result discarded: the lease was lost");
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

  private readonly queueProgress = (
    attempt: Attempt,
    percent: number | null,
    message: string | null,
  ): void => {
    // After the signal fired the attempt no longer owns the job: its reports are dropped.
    if (attempt.aborted) return;
    this.pendingProgress.set(attempt, { percent, message });
    if (this.progressScheduled) return;
    this.progressScheduled = true;
    setImmediate(() => void this.flushProgress());
  };

  /** Latest progress per job, written in one group commit; a refused write means the lease is gone. */
  private async flushProgress(): Promise<void> {
    this.progressScheduled = false;
    const batch = [...this.pendingProgress.entries()];
    this.pendingProgress.clear();
    await Promise.all(
      batch.map(async ([attempt, { percent, message }]) => {
        if (attempt.aborted) return;
        const applied = await this.deps.store
          .progress({ lease: attempt.lease, percent, message, now: this.now() })
          .catch(() => true); // a transient store error is not proof the lease is lost
        if (!applied && !this.finishing.has(attempt)) attempt.abort("lease-lost");
      }),
    );
  }

  /** One batched heartbeat for every running job; lost leases abort their handlers. */
  private async heartbeat(): Promise<void> {
    // Attempts still recording their outcome hold their lease too: a write slowed by a lost
    // connection must not outlive it and let the sweeper hand the job to another worker.
    const entries = [...this.finishing, ...this.running.values()];
    const waiting = this.prefetched.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
    if (entries.length === 0 && waiting.length === 0) {
      this.lastHeartbeatOk = this.now();
      return;
    }
    // The attempts whose leases are sent, not whatever runs under that job id by the answer;
    // and the jobs sent while waiting here, which may have started by then.
    const sent = new Map(entries.map((attempt) => [attempt.job.id, attempt]));
    const waitingTokens = new Map(waiting.map((w) => [w.id, w.leaseToken]));
    try {
      const lost = await this.deps.store.heartbeat({
        leases: [...entries.map((r) => r.lease), ...waiting],
        leaseMs: this.deps.options.leaseMs,
        now: this.now(),
      });
      this.lastHeartbeatOk = this.now();
      const lostSet = new Set(lost);
      this.prefetched = this.prefetched.filter(
        (j) => !lostSet.has(j.id) || waitingTokens.get(j.id) !== j.leaseToken,
      );
      for (const id of lost) this.abortLost(sent.get(id) ?? this.startedSince(id, waitingTokens));
    } catch (error) {
      this.deps.logger.warn({ err: error }, "heartbeat failed");
      // Cut off from the store for a whole lease: we can no longer prove we own these jobs.
      if (this.now() - this.lastHeartbeatOk >= this.deps.options.leaseMs) {
        for (const attempt of entries) attempt.abort("lease-lost");
        for (const id of waitingTokens.keys()) this.abortLost(this.startedSince(id, waitingTokens));
        this.prefetched = this.prefetched.filter((j) => !waitingTokens.has(j.id));
      }
    }
  }

  /** A job whose lease was sent while it waited in the prefetch buffer and that runs now. */
  private startedSince(id: string, waitingTokens: Map<string, string>): Attempt | undefined {
    const attempt = this.running.get(id);
    return attempt && attempt.lease.leaseToken === waitingTokens.get(id) ? attempt : undefined;
  }

  private abortLost(attempt: Attempt | undefined): void {
    if (attempt && !this.finishing.has(attempt)) attempt.abort("lease-lost");
  }
}

function problemOf(error: Error): JobProblem {
  if (error instanceof JobError) return jobProblem(error.slug, error.message, error.status);
  return jobProblem("job-failed", error.message || error.name);
}
