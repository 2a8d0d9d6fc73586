import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AbortCause } from "../jobs/errors.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { JobStatus } from "../jobs/states.js";
import type { ClaimedJob, NewEvent, Store, StoreEvent, SubmitOutcome } from "../store/store.js";
import { Attempt, type AttemptOutcome } from "./attempt.js";
import { createJobContext } from "./context.js";
import { DeadlineWatch } from "./deadline-watch.js";
import { HeartbeatLoop } from "./heartbeat.js";
import { OutcomeRecorder } from "./outcome-recorder.js";
import { ProgressBuffer } from "./progress-buffer.js";
import { Slots } from "./slots.js";

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
  private readonly now = (): number => this.deps.now?.() ?? Date.now();
  private readonly slots: Slots;
  private readonly progress: ProgressBuffer;
  private readonly recorder: OutcomeRecorder;
  private readonly heartbeat: HeartbeatLoop;
  private readonly deadlines: DeadlineWatch;
  private filling = false;
  private refill = false;
  private stopping = false;
  private started = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private unsubscribe: (() => void) | null = null;
  /** The claim loop in progress, if any (stop waits for it). */
  private fillRun: Promise<void> | null = null;
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
      /** Events committed with a completion (`ctx.emit`): run their triggers. */
      onEvents?: (events: readonly NewEvent[]) => void;
      /**
       * At stop, after the attempts still running were aborted and before their leases are
       * released: wait for what they started outside this process (command tasks) to be gone,
       * so no other node runs a job while its old process still does.
       */
      beforeRelease?: () => Promise<void>;
    },
  ) {
    const { store, registry, options, logger } = deps;
    this.slots = new Slots(registry, options);
    const { now, slots } = this;
    // A refused progress write means the lease is gone, unless the outcome is being recorded.
    const onLost = (attempt: Attempt): void => {
      if (!this.recorder.finishing.has(attempt)) attempt.abort("lease-lost");
    };
    this.progress = new ProgressBuffer({ store, now, onLost });
    const { maxResultBytes, leaseMs, heartbeatMs } = options;
    this.recorder = new OutcomeRecorder({
      store,
      registry,
      logger,
      now,
      maxResultBytes,
      progress: this.progress,
      ...(deps.onEvents ? { onEvents: deps.onEvents } : {}),
    });
    const { finishing } = this.recorder;
    this.heartbeat = new HeartbeatLoop({ store, logger, now, leaseMs, heartbeatMs, slots, finishing });
    this.deadlines = new DeadlineWatch(slots.running, now);
  }

  get runningCount(): number {
    return this.slots.running.size;
  }

  start(): void {
    if (this.started || this.deps.options.concurrency <= 0) return;
    this.started = true;
    this.unsubscribe = this.deps.store.subscribe((event) => this.onStoreEvent(event));
    this.heartbeat.start();
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
    const settled = Promise.all([this.fillRun, this.recorder.allRecorded()]);
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise((resolve) => (graceTimer = setTimeout(resolve, graceMs)))]);
    clearTimeout(graceTimer);
    const unstarted = this.slots.takeWaiting().map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
    // Aborted, the attempts still running write nothing: their leases are released here.
    const leftover = [...this.slots.running.values()];
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
    await this.progress.flush();
    this.heartbeat.stop();
    this.deadlines.stop();
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
      this.slots.typeFree(definition.type) > this.slots.reserved &&
      job.runAt <= now &&
      this.started &&
      !this.stopping &&
      this.idle &&
      this.slots.waiting.length === 0 &&
      this.slots.free() > 0;
    if (!handoff) return store.submit(params);
    const lease = { token: randomUUID(), expiresAt: now + options.leaseMs };
    this.slots.reserved++;
    let outcome: SubmitOutcome;
    try {
      outcome = await store.submit({ ...params, lease });
    } finally {
      this.slots.reserved--;
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
    // For the deliverer, the waits, the dispatcher.
    if (event.kind === "outbox" || event.kind === "progress" || event.kind === "events") return;
    if (event.kind === "resync") {
      this.idle = false;
      this.wake();
      return;
    }
    if (this.slots.waiting.length > 0 && event.status !== "succeeded") {
      // Canceled, timed out or swept while waiting here: it must not start.
      this.slots.keepWaiting((j) => j.id !== event.jobId);
    }
    const local = this.slots.running.get(event.jobId);
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
        for (const group of this.slots.claimGroups()) {
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
          this.slots.addWaiting(claimed);
          this.startPrefetched();
          if (claimed.length === group.limit) claimedFull = true;
          else claimedShort = true;
        }
        // Set only after a claim looked (a fill without free slots learns nothing), and not
        // while a wake-up announced more work in the meantime.
        if (claimedShort && !claimedFull) this.idle = !this.refill;
      }
      if (!this.refill && !this.stopping && this.slots.free() > 0) {
        const next = await this.deps.store.nextRunAt({ types: this.deps.registry.types });
        // A job already due that the claim did not take waits for a slot of its own type (the
        // slot's end wakes us) or a row another claim holds: not for a claim again at once.
        if (next !== null && next > this.now()) this.scheduleWake(next);
      }
    } while (this.refill && !this.stopping);
  }

  /** Start waiting jobs, in claim order, as far as free slots and per-type limits allow. */
  private startPrefetched(): void {
    // Called whenever a slot frees. Each job leaves the buffer before it starts: a handler may
    // cause an event that filters the buffer (a job canceled) while this loop runs.
    const { slots } = this;
    let i = 0;
    while (i < slots.waiting.length && slots.free() > 0 && !this.stopping) {
      if (slots.typeFree(slots.waiting[i]!.type) <= 0) i++;
      else this.execute(slots.takeWaitingAt(i));
    }
  }

  private execute(job: ClaimedJob): void {
    const registered = this.deps.registry.get(job.type)!;
    const attempt = new Attempt(job, this.now(), this.settled);
    // Claimed again while an earlier attempt still runs here: that attempt's lease is gone.
    this.slots.running.get(job.id)?.abort("lease-lost");
    this.slots.occupy(attempt);
    // The deadline is enforced here too, so a handler stops at deadlineAt even before the sweeper.
    this.deadlines.watch(job.deadlineAt);

    const ctx = createJobContext(job, attempt, this.deps.logger, this.progress.queue);
    this.recorder.started();
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
    this.recorder.settle(attempt, outcome);
  };

  private freeSlot(attempt: Attempt): void {
    const { job, startedAt } = attempt;
    this.slots.vacate(attempt);
    this.deps.onAttemptFinished?.({
      type: job.type,
      queueWaitMs: Math.max(0, startedAt - job.runAt),
      runMs: this.now() - startedAt,
    });
    // A job claimed ahead takes the slot at once, without waiting for the claim loop's turn.
    this.startPrefetched();
    this.wake();
  }
}
