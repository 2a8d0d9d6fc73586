import type { JobRecord } from "../store/store.js";

/** Weight of the newest observation in the moving averages. */
const ALPHA = 0.2;
/** Assumed run time of a type never seen finishing in this process. */
const DEFAULT_RUN_MS = 1000;

interface TypeStats {
  runMs: number;
  queueWaitMs: number;
}

/**
 * Retry-After from measured time: per job type, an exponentially weighted moving average of
 * run time and queue wait. For a queued job, ETA = time until its runAt (or the expected wait)
 * + run time; for a running one, the time its progress or the average says is left. Always an
 * integer number of seconds within [min, max].
 */
export class RetryAfterEstimator {
  private readonly stats = new Map<string, TypeStats>();

  constructor(
    private readonly minSeconds: number,
    private readonly maxSeconds: number,
  ) {}

  observe(sample: { type: string; queueWaitMs: number; runMs: number }): void {
    const s = this.stats.get(sample.type);
    if (!s) {
      this.stats.set(sample.type, { runMs: sample.runMs, queueWaitMs: sample.queueWaitMs });
      return;
    }
    s.runMs += ALPHA * (sample.runMs - s.runMs);
    s.queueWaitMs += ALPHA * (sample.queueWaitMs - s.queueWaitMs);
  }

  /** Expected milliseconds until the job is terminal. */
  remainingMs(job: JobRecord, now: number): number {
    const s = this.stats.get(job.type) ?? { runMs: DEFAULT_RUN_MS, queueWaitMs: 0 };
    let remaining: number;
    if (job.status === "queued") {
      remaining = Math.max(job.runAt - now, s.queueWaitMs) + s.runMs;
    } else {
      const elapsed = Math.max(0, now - (job.startedAt ?? now));
      const p = job.progressPercent;
      remaining =
        p !== null && p > 0 && p < 100
          ? (elapsed * (100 - p)) / p // what the job's own progress says is left
          : Math.max(s.runMs - elapsed, s.runMs * 0.1);
    }
    return Math.min(remaining, Math.max(0, job.deadlineAt - now));
  }

  seconds(job: JobRecord, now: number): number {
    const s = Math.ceil(this.remainingMs(job, now) / 1000);
    return Math.min(this.maxSeconds, Math.max(this.minSeconds, s));
  }
}
