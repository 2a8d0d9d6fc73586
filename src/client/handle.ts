/**
 * A handle on one job (like Temporal's `WorkflowHandle`): its id and status URL, the latest
 * representation seen, and `result()`, `wait()`, `status()`, `cancel()`. The polling lives
 * here: each poll waits what the server's `Retry-After` said (bounded by `minDelayMs` and
 * `maxDelayMs`), asks the server to hold it (`Prefer: wait`) when the server does that, and
 * follows the `303` to the result.
 */
import { delay } from "./delay.js";
import { HttpError, JobAlreadyFinishedError, WaitTimeoutError, isJobOutcome, jobFailure } from "./errors.js";
import { parseAppliedWait, parseRetryAfter } from "./retry-after.js";
import type { RetryPolicy } from "./retry.js";
import { displayUrl, isJsonType, replyJson, replyProblem, type Reply, type Transport } from "./transport.js";
import { problemSlug, type JobRepresentation } from "./wire.js";

export interface PollOptions {
  /** Shortest time between the starts of two polls, whatever `Retry-After` says. @default 1000 */
  minDelayMs?: number;
  /** Longest pause between polls (a larger `Retry-After` is cut to this). @default 30000 */
  maxDelayMs?: number;
  /**
   * Ask the server to hold each poll (`Prefer: wait=N`, N the pause `Retry-After` asked for),
   * so the answer comes the moment the job ends. Used only while the server acknowledges it
   * with `Preference-Applied`; otherwise the client sleeps between polls. @default true
   */
  longPoll?: boolean;
}

export interface WaitOptions extends PollOptions {
  /** Stop waiting when it aborts: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** With `signal`: also cancel the job on the server when it aborts. @default false */
  cancelOnAbort?: boolean;
  /** Give up waiting after this long (`WaitTimeoutError`); the job goes on. @default no limit */
  timeoutMs?: number;
  /** Called with each representation seen while the job is queued or running. */
  onProgress?: (job: JobRepresentation) => void;
}

/** A result as the server sent it: status, media type and bytes. */
export interface RawResult {
  /** 200 (a result), 201 (the job created a resource at `location`) or 204 (no result). */
  status: number;
  contentType: string | null;
  location: string | null;
  body: Uint8Array;
}

/** What a handle shares with its client. */
export interface HandleContext {
  transport: Transport;
  poll: Readonly<Required<PollOptions>>;
  /** Learned from the first long poll: does this server hold polls? Shared by all handles. */
  hints: { serverHoldsPolls?: boolean };
  now: () => number;
}

/** Bounded policy for the cancel sent when a wait is aborted: the caller is leaving. */
const CANCEL_ON_ABORT: Partial<RetryPolicy> = { attempts: 2, deadlineMs: 5_000, timeoutMs: 5_000 };

/** The result's value: parsed JSON, `null` for no result, else the bytes. */
export function decodeResult(raw: RawResult): unknown {
  if (raw.status === 204 || raw.body.length === 0) return null;
  if (isJsonType(raw.contentType)) return JSON.parse(new TextDecoder().decode(raw.body));
  return raw.body;
}

export class JobHandle<O = unknown> {
  /** The latest representation seen (at submit, then from every poll); null until one is. */
  job: JobRepresentation | null;
  /** True when the submit was answered from an earlier one with the same Idempotency-Key. */
  readonly replayed: boolean;
  private retryAfterMs: number | undefined;
  private repliedAt: number;
  /** A result the server already gave (a submit with `wait` that finished in time). */
  private settled: Reply | null = null;

  constructor(
    private readonly ctx: HandleContext,
    /** The job's id. */
    readonly id: string,
    /** The status monitor, `…/v1/jobs/{id}`. */
    readonly statusUrl: string,
    init: {
      job?: JobRepresentation | null;
      retryAfterMs?: number | undefined;
      replayed?: boolean;
      settled?: Reply;
    } = {},
  ) {
    this.job = init.job ?? null;
    this.retryAfterMs = init.retryAfterMs;
    this.repliedAt = ctx.now();
    this.replayed = init.replayed ?? false;
    this.settled = init.settled ?? null;
  }

  /** Fetch the current representation (`200` even once the job is terminal). */
  async status(options: { signal?: AbortSignal } = {}): Promise<JobRepresentation> {
    const url = `${this.statusUrl}?onComplete=status`;
    const reply = await this.ctx.transport.send({ method: "GET", url, signal: options.signal });
    if (reply.status !== 200 && reply.status !== 202) throw httpError("GET", url, reply);
    this.job = replyJson<JobRepresentation>(reply);
    return this.job;
  }

  /**
   * Wait for the job to end and return its result: parsed JSON, `null` when the handler
   * returned nothing, or the bytes for other media types.
   *
   * @throws JobFailedError | JobTimedOutError | JobCanceledError with the job's problem
   * @throws WaitTimeoutError when `timeoutMs` passed first
   * @throws RetryExhaustedError when the server could not be reached
   * @example
   * const report = await job.result({ timeoutMs: 600_000, onProgress: (j) => console.log(j.progress) });
   */
  async result(options: WaitOptions = {}): Promise<O> {
    return decodeResult(await this.rawResult(options)) as O;
  }

  /** Like `result()`, but the result as sent: status, media type and bytes. */
  async rawResult(options: WaitOptions = {}): Promise<RawResult> {
    const reply = this.settled ?? (await this.guard(options, () => this.poll("result", options)));
    return this.interpret(reply);
  }

  /**
   * Wait for the job to end and return its final representation, without fetching the
   * result and without throwing for a failed, timed-out or canceled job.
   */
  async wait(options: WaitOptions = {}): Promise<JobRepresentation> {
    const reply = await this.guard(options, () => this.poll("status", options));
    this.job = replyJson<JobRepresentation>(reply);
    return this.job;
  }

  /**
   * Cancel the job: the server tells a running handler to stop. Cancelling a canceled job
   * is fine; one that already succeeded, failed or timed out throws `JobAlreadyFinishedError`.
   * Sent to the job's `cancel` link when one was seen (a server may put it anywhere), else to
   * `…/v1/jobs/{id}/cancel`. A link to another origin (a server behind a public URL other than
   * the one this client uses) is followed on the status monitor's origin, where the key goes.
   */
  async cancel(options: { signal?: AbortSignal; policy?: RetryPolicy } = {}): Promise<JobRepresentation> {
    const url = cancelUrl(this.job?.links?.cancel, this.statusUrl);
    const reply = await this.ctx.transport.send({
      method: "POST",
      url,
      signal: options.signal,
      ...(options.policy ? { policy: options.policy } : {}),
    });
    const problem = reply.status === 409 ? replyProblem(reply) : null;
    if (problem && problemSlug(problem) === "job-already-finished" && problem.job) {
      this.job = problem.job;
      throw new JobAlreadyFinishedError(problem.job);
    }
    if (reply.status !== 200) throw httpError("POST", url, reply);
    this.job = replyJson<JobRepresentation>(reply);
    return this.job;
  }

  /** Run a wait; when its signal aborts and `cancelOnAbort` is set, cancel the job first. */
  private async guard<T>(options: WaitOptions, wait: () => Promise<T>): Promise<T> {
    try {
      return await wait();
    } catch (error) {
      if (options.cancelOnAbort && options.signal?.aborted) {
        const policy = { ...this.ctx.transport.policy, ...CANCEL_ON_ABORT };
        await this.cancel({ policy }).catch(() => undefined); // best effort: it may have just ended
      }
      throw error;
    }
  }

  /** Poll until the job is terminal; the terminal answer (the result, or the representation). */
  private async poll(mode: "result" | "status", options: WaitOptions): Promise<Reply> {
    const { now } = this.ctx;
    const poll = { ...this.ctx.poll, ...definedOnly(options) };
    const started = now();
    const deadline = options.timeoutMs === undefined ? Infinity : started + options.timeoutMs;
    const url = mode === "status" ? `${this.statusUrl}?onComplete=status` : this.statusUrl;
    if (this.job && !isDone(this.job)) options.onProgress?.(this.job);
    let lastStart = -Infinity;
    let held = false;
    for (;;) {
      const pause = clamp(this.retryAfterMs ?? 0, poll.minDelayMs, poll.maxDelayMs);
      const longPoll = poll.longPoll && this.ctx.hints.serverHoldsPolls !== false;
      // Right after a held poll, or in long-poll mode, the server does the waiting.
      const notBefore =
        held || longPoll
          ? lastStart + poll.minDelayMs
          : Math.max(lastStart + poll.minDelayMs, this.repliedAt + pause);
      const sleep = Math.min(notBefore, deadline) - now();
      if (sleep > 0) await delay(sleep, options.signal);
      if (now() >= deadline) throw new WaitTimeoutError(this.id, options.timeoutMs ?? 0, this.job);

      const holdSeconds = longPoll ? Math.max(1, Math.ceil(Math.min(pause, deadline - now()) / 1000)) : 0;
      lastStart = now();
      const reply = await this.ctx.transport.send({
        method: "GET",
        url,
        signal: options.signal,
        ...(longPoll ? { headers: { prefer: `wait=${holdSeconds}` }, holdMs: holdSeconds * 1000 } : {}),
      });
      this.repliedAt = now();
      if (reply.status === 303) return this.follow(reply, options);
      if (reply.status !== 202) return reply;

      const body = replyJson<JobRepresentation | { id: string; status: string }>(reply);
      if ("links" in body) this.job = body;
      this.retryAfterMs = parseRetryAfter(reply.headers.get("retry-after"));
      if (longPoll) {
        const applied = parseAppliedWait(reply.headers.get("preference-applied"));
        this.ctx.hints.serverHoldsPolls = applied !== undefined && applied > 0;
        held = this.ctx.hints.serverHoldsPolls;
      } else held = false;
      if (this.job) options.onProgress?.(this.job);
    }
  }

  /** A `fetch` that does not follow redirects (a custom one) leaves the `303` to us. */
  private async follow(reply: Reply, options: WaitOptions): Promise<Reply> {
    const location = reply.headers.get("location");
    if (!location) throw httpError("GET", this.statusUrl, reply);
    return this.ctx.transport.send({
      method: "GET",
      url: new URL(location, this.statusUrl).href,
      signal: options.signal,
    });
  }

  private interpret(reply: Reply): RawResult {
    if (reply.status === 200 || reply.status === 201 || reply.status === 204) {
      return {
        status: reply.status,
        contentType: reply.headers.get("content-type"),
        location: reply.status === 201 ? reply.headers.get("location") : null,
        body: reply.body,
      };
    }
    const problem = replyProblem(reply);
    if (problem && isJobOutcome(problem)) throw jobFailure(this.id, problem);
    throw httpError("GET", reply.url, reply);
  }
}

function cancelUrl(link: string | undefined, statusUrl: string): string {
  if (!link) return `${displayUrl(statusUrl)}/cancel`;
  const target = new URL(link, statusUrl);
  const monitor = new URL(statusUrl);
  return target.origin === monitor.origin
    ? target.href
    : `${monitor.origin}${target.pathname}${target.search}`;
}

function isDone(job: JobRepresentation): boolean {
  return job.status !== "queued" && job.status !== "running";
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function definedOnly(options: PollOptions): PollOptions {
  const out: PollOptions = {};
  if (options.minDelayMs !== undefined) out.minDelayMs = options.minDelayMs;
  if (options.maxDelayMs !== undefined) out.maxDelayMs = options.maxDelayMs;
  if (options.longPoll !== undefined) out.longPoll = options.longPoll;
  return out;
}

export function httpError(method: string, url: string, reply: Reply): HttpError {
  return new HttpError(method, displayUrl(url), reply.status, replyProblem(reply));
}
