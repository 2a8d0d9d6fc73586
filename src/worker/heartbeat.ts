import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type { Attempt } from "./attempt.js";
import type { Slots } from "./slots.js";

/**
 * One batched heartbeat every `heartbeatMs` for every lease this process holds: its running
 * attempts, those still recording their outcome, and the jobs claimed ahead. Lost leases abort
 * their handlers (or drop the waiting jobs); a store unreachable for a whole lease aborts all.
 */
export class HeartbeatLoop {
  private timer: NodeJS.Timeout | null = null;
  private lastOk = 0;

  constructor(
    private readonly deps: {
      store: Store;
      logger: Logger;
      now: () => number;
      leaseMs: number;
      heartbeatMs: number;
      slots: Slots;
      /** Attempts recording their outcome: they keep their lease, and a lost one must not abort them. */
      finishing: ReadonlySet<Attempt>;
    },
  ) {}

  start(): void {
    this.lastOk = this.deps.now();
    this.timer = setInterval(() => void this.beat(), this.deps.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One batched heartbeat for every running job; lost leases abort their handlers. */
  private async beat(): Promise<void> {
    const { slots, finishing, now } = this.deps;
    // Attempts still recording their outcome hold their lease too: a write slowed by a lost
    // connection must not outlive it and let the sweeper hand the job to another worker.
    const entries = [...finishing, ...slots.running.values()];
    const waiting = slots.waiting.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
    if (entries.length === 0 && waiting.length === 0) {
      this.lastOk = now();
      return;
    }
    // The attempts whose leases are sent, not whatever runs under that job id by the answer;
    // and the jobs sent while waiting here, which may have started by then.
    const sent = new Map(entries.map((attempt) => [attempt.job.id, attempt]));
    const waitingTokens = new Map(waiting.map((w) => [w.id, w.leaseToken]));
    try {
      const lost = await this.deps.store.heartbeat({
        leases: [...entries.map((r) => r.lease), ...waiting],
        leaseMs: this.deps.leaseMs,
        now: now(),
      });
      this.lastOk = now();
      const lostSet = new Set(lost);
      slots.keepWaiting((j) => !lostSet.has(j.id) || waitingTokens.get(j.id) !== j.leaseToken);
      for (const id of lost) this.abortLost(sent.get(id) ?? this.startedSince(id, waitingTokens));
    } catch (error) {
      this.deps.logger.warn({ err: error }, "heartbeat failed");
      // Cut off from the store for a whole lease: we can no longer prove we own these jobs.
      if (now() - this.lastOk >= this.deps.leaseMs) {
        for (const attempt of entries) attempt.abort("lease-lost");
        for (const id of waitingTokens.keys()) this.abortLost(this.startedSince(id, waitingTokens));
        slots.keepWaiting((j) => !waitingTokens.has(j.id));
      }
    }
  }

  /** A job whose lease was sent while it waited in the prefetch buffer and that runs now. */
  private startedSince(id: string, waitingTokens: Map<string, string>): Attempt | undefined {
    const attempt = this.deps.slots.running.get(id);
    return attempt && attempt.lease.leaseToken === waitingTokens.get(id) ? attempt : undefined;
  }

  private abortLost(attempt: Attempt | undefined): void {
    if (attempt && !this.deps.finishing.has(attempt)) attempt.abort("lease-lost");
  }
}
