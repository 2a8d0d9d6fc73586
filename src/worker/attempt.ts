import { createHash } from "node:crypto";
import { canonicalJson, RESERVED_KEY_PREFIX as RESERVED_EVENT_PREFIX } from "../http/idempotency.js";
import { findUnsafeString } from "../http/json-body.js";
import type { EmitOptions } from "../jobs/define.js";
import { JobAbortedError, type AbortCause } from "../jobs/errors.js";
import type { ClaimedJob, Lease, NewEvent } from "../store/store.js";

/** Events one attempt may emit, and the JSON of one event's data. */
export const MAX_EMITTED = 100;
const MAX_EMITTED_BYTES = 1_048_576;
const EVENT_TYPE = /^[\x21-\x7e]{1,256}$/;

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
    if (typeof type !== "string" || !EVENT_TYPE.test(type))
      throw new TypeError("ctx.emit: the event type must be 1-256 printable ASCII characters");
    const subject = options?.subject ?? this.job.id;
    if (
      typeof subject !== "string" ||
      subject.length < 1 ||
      subject.length > 1024 ||
      findUnsafeString(subject)
    )
      throw new TypeError(
        "ctx.emit: subject must be a string of 1-1024 characters, without NUL or lone surrogates",
      );
    const emitted = (this.emitted ??= []);
    if (emitted.length >= MAX_EMITTED)
      throw new RangeError(`ctx.emit: at most ${MAX_EMITTED} events per attempt`);
    const json = data === undefined ? "null" : JSON.stringify(data);
    if (json === undefined) throw new TypeError("ctx.emit: data must be JSON");
    if (json.length > MAX_EMITTED_BYTES)
      throw new RangeError(
        `ctx.emit: data is ${json.length} characters of JSON; at most ${MAX_EMITTED_BYTES}`,
      );
    if (findUnsafeString(data))
      throw new TypeError("ctx.emit: data must not contain NUL characters or lone surrogates");
    // In Tessera's own namespace (refused from clients): no event sent over HTTP can take its id.
    const id = `${RESERVED_EVENT_PREFIX}${this.job.id}-${this.job.attempt}-${emitted.length}`;
    const source = `/jobs/${this.job.type}`;
    const copy = JSON.parse(json) as unknown;
    emitted.push({
      tenantId: this.job.tenantId,
      id,
      source,
      type,
      subject,
      time: Date.now(),
      datacontenttype: "application/json",
      data: copy,
      traceparent: null,
      extensions: {},
      hash: createHash("sha256")
        .update(canonicalJson({ id, source, type, subject, data: copy }))
        .digest("base64url"),
    });
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
