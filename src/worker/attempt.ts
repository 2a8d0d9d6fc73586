import { emittedEvent, MAX_EMITTED } from "../events/cloud-event.js";
import type { EmitOptions } from "../jobs/define.js";
import { JobAbortedError, type AbortCause } from "../jobs/errors.js";
import type { ClaimedJob, Lease, NewEvent } from "../store/store.js";

/** How an attempt's handler ended, as far as the worker is concerned. */
export type AttemptOutcome = HandlerOutcome | { aborted: AbortCause };
/** How the handler itself ended. */
export type HandlerOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * One attempt of a job in this process: its lease, its abort state and its outcome, handed to
 * `onOutcome` once (in a later microtask, never from inside `run` or `abort`). The worker stops
 * waiting the moment the attempt is aborted, so a handler that ignores its signal cannot hold
 * the slot; whatever it returns later is discarded.
 *
 * The AbortController behind `signal` is made only when the handler reads it: a short handler
 * that never looks at it (most of them) costs no controller, no event target and no listener.
 */
export class Attempt {
  readonly lease: Lease;
  private outcome: AttemptOutcome | null = null;
  private reason: JobAbortedError | null = null;
  private controller: AbortController | null = null;
  /** What the handler emitted (`ctx.emit`), kept with its success; null until it emits. */
  emitted: NewEvent[] | null = null;

  constructor(
    readonly job: ClaimedJob,
    /** When the handler was called (ms). */
    readonly startedAt: number,
    private readonly onOutcome: (attempt: Attempt, outcome: AttemptOutcome) => void,
  ) {
    this.lease = { id: job.id, leaseToken: job.leaseToken };
  }

  get aborted(): boolean {
    return this.reason !== null;
  }

  /** The handler's signal; aborted with a JobAbortedError naming the cause. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /**
   * Call the handler now (synchronously: a job starts the moment its slot is given), as a method
   * of its definition, so that a handler may use `this`.
   */
  run<I, C>(definition: { run(input: I, ctx: C): unknown }, input: I, ctx: C): void {
    try {
      const value = definition.run(input, ctx);
      // Inside the try: a hostile thenable may throw from its `then` (or from reading it).
      if (!isThenable(value)) {
        this.settle({ ok: true, value });
        return;
      }
      value.then(
        (resolved) => this.settle({ ok: true, value: resolved }),
        (error: unknown) => this.settle({ ok: false, error }),
      );
    } catch (error) {
      this.settle({ ok: false, error });
    }
  }

  /**
   * Keep an event for the attempt's success (`ctx.emit`). Its data is copied as JSON now; one
   * emitted after the handler ended is dropped, as its outcome is already being written.
   */
  emit(type: string, data: unknown, options: EmitOptions | undefined): void {
    if (this.outcome) return;
    const emitted = (this.emitted ??= []);
    if (emitted.length >= MAX_EMITTED)
      throw new RangeError(`ctx.emit: at most ${MAX_EMITTED} events per attempt`);
    emitted.push(
      emittedEvent(this.job, emitted.length, { type, data, subject: options?.subject, now: Date.now() }),
    );
  }

  /** Stop the attempt: its signal fires and its outcome is `aborted` (unless it had ended). */
  abort(cause: AbortCause): void {
    if (this.reason) return;
    this.reason = new JobAbortedError(cause, this.job.id);
    this.controller?.abort(this.reason);
    this.settle({ aborted: cause });
  }

  /** The first outcome wins. Reported from a microtask: the caller's own state is settled first. */
  private settle(outcome: AttemptOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    settledAttempts.push(this);
    if (settledAttempts.length === 1) queueMicrotask(reportSettled);
  }

  /** Hand the outcome over (see reportSettled). */
  report(): void {
    this.onOutcome(this, this.outcome!);
  }
}

/**
 * Attempts settled since the last report, handed over in order by one microtask (not one
 * closure and microtask per attempt). An attempt settled while they are handed over (the next
 * job started in a freed slot returned at once) is handed over in the same pass.
 */
const settledAttempts: Attempt[] = [];

function reportSettled(): void {
  for (let i = 0; i < settledAttempts.length; i++) {
    try {
      settledAttempts[i]!.report();
    } catch (error) {
      // The runtime's callback catches its own failures; this one must not cost the rest theirs.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
  settledAttempts.length = 0;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"
  );
}
