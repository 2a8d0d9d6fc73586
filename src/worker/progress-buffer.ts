import type { Store } from "../store/store.js";
import type { Attempt } from "./attempt.js";
import type { ProgressSink } from "./context.js";

export interface Progress {
  percent: number | null;
  message: string | null;
}

/**
 * The handlers' progress reports, coalesced: the latest unwritten one per attempt, all written
 * in one group commit per event-loop turn.
 */
export class ProgressBuffer {
  /** Latest unwritten progress per attempt (keyed by run, so a stale attempt never writes under a newer lease). */
  private readonly pending = new Map<Attempt, Progress>();
  /** Writes on their way: an outcome must wait for them, or it could land first and fence them. */
  private readonly writing = new Map<Attempt, Promise<unknown>>();
  private scheduled = false;

  constructor(
    private readonly deps: {
      store: Store;
      now: () => number;
      /** A progress write was refused: the attempt's lease is gone. */
      onLost: (attempt: Attempt) => void;
    },
  ) {}

  /** Every attempt's `ctx.progress` ends here. */
  readonly queue: ProgressSink<Attempt> = (attempt, percent, message) => {
    // After the signal fired the attempt no longer owns the job: its reports are dropped.
    if (attempt.aborted) return;
    this.pending.set(attempt, { percent, message });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  };

  /** An unwritten report, or one being written. */
  has(attempt: Attempt): boolean {
    return this.pending.has(attempt) || this.writing.has(attempt);
  }

  /** Once the attempt's report being written, if any, is (or failed to be). */
  async written(attempt: Attempt): Promise<void> {
    await this.writing.get(attempt)?.catch(() => undefined);
  }

  /** The attempt's unwritten report, if any, which is then no longer written by a flush. */
  take(attempt: Attempt): Progress | undefined {
    const progress = this.pending.get(attempt);
    if (progress) this.pending.delete(attempt);
    return progress;
  }

  forget(attempt: Attempt): void {
    this.pending.delete(attempt);
  }

  /**
   * Latest progress per job, written in one group commit; a refused write means the lease is
   * gone. An attempt with a write still on its way keeps its report for the flush after that
   * write: two writes of one job in flight at once could commit in either order.
   */
  async flush(): Promise<void> {
    this.scheduled = false;
    const batch = [...this.pending.entries()].filter(([attempt]) => !this.writing.has(attempt));
    for (const [attempt] of batch) this.pending.delete(attempt);
    await Promise.all(
      batch.map(async ([attempt, { percent, message }]) => {
        if (attempt.aborted) return;
        const write = this.deps.store
          .progress({ lease: attempt.lease, percent, message, now: this.deps.now() })
          .catch(() => true); // a transient store error is not proof the lease is lost
        this.writing.set(attempt, write);
        const applied = await write;
        this.writing.delete(attempt);
        if (!applied) this.deps.onLost(attempt);
        else if (this.pending.has(attempt) && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => void this.flush());
        }
      }),
    );
  }
}
