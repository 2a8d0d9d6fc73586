/**
 * What the client throws. Every error is a `TesseraClientError`; catch the subclass you can
 * act on. Aborting a signal rejects with the signal's own `reason` (an `AbortError`
 * `DOMException` unless you gave one), as `fetch` does.
 */
import type { JobStatus } from "../jobs/states.js";
import { problemSlug, type JobRepresentation, type Problem } from "./wire.js";

/** Base class of every error the client throws on purpose. */
export class TesseraClientError extends Error {
  override name = "TesseraClientError";
}

/** The server answered with an error that retrying will not fix (a 4xx other than 408/429). */
export class HttpError extends TesseraClientError {
  override name = "HttpError";
  constructor(
    readonly method: string,
    /** The URL without its query (a signed URL's signature stays out of messages). */
    readonly url: string,
    readonly status: number,
    /** The RFC 9457 body, when the server sent one. */
    readonly problem: Problem | null,
  ) {
    super(`${method} ${url} answered ${status}${problem ? ` ${problem.title}: ${problem.detail}` : ""}`);
  }

  /** The problem type's slug (`not-found`, `validation-failed`, …), or null. */
  get slug(): string | null {
    return this.problem ? problemSlug(this.problem) : null;
  }
}

/**
 * Network errors, timeouts, 408, 429 and 5xx went on after every retry allowed: the request
 * was given up. The message says what happened last, how often and how long it was tried.
 */
export class RetryExhaustedError extends TesseraClientError {
  override name = "RetryExhaustedError";
  constructor(
    readonly method: string,
    readonly url: string,
    readonly attempts: number,
    readonly elapsedMs: number,
    /** HTTP status of the last answer, or null when the last attempt got none. */
    readonly lastStatus: number | null,
    /** What went wrong last, in words. */
    readonly lastError: string,
    /** Why it stopped: out of attempts, or the next try would pass the deadline. */
    readonly reason: "attempts" | "deadline",
    options?: { cause?: unknown },
  ) {
    super(
      `${method} ${url}: gave up after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${(elapsedMs / 1000).toFixed(1)} s ` +
        `(${reason === "attempts" ? "no attempts left" : "the retry deadline would pass"}); last: ${lastError}`,
      options,
    );
  }
}

/** A job ended without a result: failed, timed out or canceled. Carries the job's problem. */
export class JobFailureError extends TesseraClientError {
  override name = "JobFailureError";
  constructor(
    readonly jobId: string,
    readonly jobStatus: Extract<JobStatus, "failed" | "timed_out" | "canceled">,
    /** The problem the result resource answered with (`job-failed`, `job-rejected`, …). */
    readonly problem: Problem,
  ) {
    super(`job ${jobId} ${jobStatus.replace("_", " ")}: ${problem.detail || problem.title}`);
  }

  get slug(): string {
    return problemSlug(this.problem);
  }
}

/** The job failed (its handler threw or rejected the input; `problem.status` says which). */
export class JobFailedError extends JobFailureError {
  override name = "JobFailedError";
  constructor(jobId: string, problem: Problem) {
    super(jobId, "failed", problem);
  }
}

/** The job passed its deadline (`job-timed-out`). */
export class JobTimedOutError extends JobFailureError {
  override name = "JobTimedOutError";
  constructor(jobId: string, problem: Problem) {
    super(jobId, "timed_out", problem);
  }
}

/** The job was canceled (`job-canceled`). */
export class JobCanceledError extends JobFailureError {
  override name = "JobCanceledError";
  constructor(jobId: string, problem: Problem) {
    super(jobId, "canceled", problem);
  }
}

/** `cancel()` on a job that had already succeeded, failed or timed out. */
export class JobAlreadyFinishedError extends TesseraClientError {
  override name = "JobAlreadyFinishedError";
  constructor(readonly job: JobRepresentation) {
    super(`job ${job.id} cannot be canceled: it already ${job.status.replace("_", " ")}`);
  }
}

/** `result({ timeoutMs })` or `wait({ timeoutMs })` ran out; the job goes on. */
export class WaitTimeoutError extends TesseraClientError {
  override name = "WaitTimeoutError";
  constructor(
    readonly jobId: string,
    readonly timeoutMs: number,
    /** The last representation seen. */
    readonly job: JobRepresentation | null,
  ) {
    const where = job
      ? ` (still ${job.status}${job.progress?.percent != null ? `, ${Math.round(job.progress.percent)}%` : ""})`
      : "";
    super(`gave up waiting for job ${jobId} after ${timeoutMs} ms${where}; the job goes on`);
  }
}

/** The problem of a job outcome at the result resource, as the matching error. */
export function jobFailure(jobId: string, problem: Problem): JobFailureError {
  const slug = problem.error?.code ?? problemSlug(problem);
  if (slug === "job-timed-out") return new JobTimedOutError(jobId, problem);
  if (slug === "job-canceled") return new JobCanceledError(jobId, problem);
  return new JobFailedError(jobId, problem);
}

/**
 * Whether a problem is a job's outcome (at the result resource) rather than a fault of the
 * request: such a problem carries `error: { code, message }` (the contract's Azure-style
 * member), whatever its HTTP status. A handler may fail a job with 429 or 503: not a fault.
 */
export function isJobOutcome(problem: Problem | null): boolean {
  return (
    problem !== null &&
    typeof problem.error === "object" &&
    problem.error !== null &&
    typeof problem.error.code === "string"
  );
}
