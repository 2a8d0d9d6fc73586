import type { Attempt } from "./attempt.js";

/** Node's timers take at most 2^31 - 1 ms; a later deadline re-arms when this passes. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The deadline enforced in this process too, so a handler stops at deadlineAt even before the
 * sweeper. One timer for the earliest deadline of the running attempts, not one per attempt.
 */
export class DeadlineWatch {
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  constructor(
    private readonly running: ReadonlyMap<string, Attempt>,
    private readonly now: () => number,
  ) {}

  /** Have the timer fire by `at` (an attempt started that must end then). */
  watch(at: number): void {
    if (at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.enforce(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  /** Abort the attempts past their deadline; watch the earliest of the others. */
  private enforce(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const attempt of this.running.values()) {
      if (attempt.job.deadlineAt <= now) attempt.abort("timed_out");
      else if (!attempt.aborted) next = Math.min(next, attempt.job.deadlineAt);
    }
    if (next < Infinity) this.watch(next);
  }
}
