/** Base class of every error Tessera throws on purpose. */
export class TesseraError extends Error {
  override name = "TesseraError";
}

/**
 * Thrown by a handler to fail its job at once, without retry, with an HTTP status the result
 * resource will answer with (a 4xx says the work itself was a client error).
 *
 * @example
 * throw new JobError(422, "the report has no pages");
 */
export class JobError extends TesseraError {
  override name = "JobError";
  readonly #problem: JobErrorProblem | undefined;
  constructor(
    /** HTTP status of the persisted problem. @default 422 */
    readonly status: number = 422,
    message = "the job was rejected",
    options: {
      /** A more precise problem type than `job-rejected` / `job-failed` (command tasks use these). */
      problem?: JobErrorProblem;
    } = {},
  ) {
    super(message);
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`JobError status must be an HTTP error status, got ${status}`);
    }
    this.#problem = options.problem;
  }

  /** Problem slug: the one given, else `job-rejected` for a client error (4xx), else `job-failed`. */
  get slug(): JobErrorProblem {
    return this.#problem ?? (this.status < 500 ? "job-rejected" : "job-failed");
  }
}

/** The problem types a failed job's problem may have (see docs/problems.md). */
export type JobErrorProblem =
  | "job-rejected"
  | "job-failed"
  | "command-not-found"
  | "command-output-too-large"
  | "command-output-invalid"
  | "saga-step-failed"
  | "saga-compensation-failed"
  | "saga-nondeterministic";

/** The problem object persisted for a failed, canceled or timed-out job (RFC 9457 members). */
export interface JobProblem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

/** Normalise anything a handler threw into an Error, once (never trust `throw "string"`). */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) {
    try {
      // A hostile error may have a throwing or non-string `message` getter.
      if (typeof thrown.message === "string") return thrown;
    } catch {
      return new Error(`an error whose message cannot be read (${Object.prototype.toString.call(thrown)})`);
    }
    return new Error(`an error with a non-string message (${Object.prototype.toString.call(thrown)})`);
  }
  if (typeof thrown === "string") return new Error(thrown);
  if (thrown && typeof thrown === "object" && typeof (thrown as { message?: unknown }).message === "string") {
    return new Error((thrown as { message: string }).message);
  }
  let text: string;
  try {
    text = JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = Object.prototype.toString.call(thrown);
  }
  return new Error(`non-error thrown: ${text.slice(0, 200)}`);
}

/**
 * Thrown out of a job's run by Tessera's own job kinds (a sleeping saga) to give the job back
 * until `runAt`: its slot and lease are freed, and the attempt is not counted.
 */
export class JobSuspended extends TesseraError {
  override name = "JobSuspended";
  constructor(
    readonly runAt: number,
    /** Run once the job is given back: a wake-up it may have missed meanwhile is looked for. */
    readonly afterRelease?: () => Promise<unknown>,
  ) {
    super(`suspended until ${new Date(runAt).toISOString()}`);
  }
}

/** Why a handler's signal fired; `signal.reason` is one of these. */
export type AbortCause = "canceled" | "timed_out" | "lease-lost" | "shutdown" | "deleted";

export class JobAbortedError extends TesseraError {
  override name = "JobAbortedError";
  constructor(
    readonly reason: AbortCause,
    jobId: string,
  ) {
    super(`job ${jobId} was aborted: ${reason}`);
  }
}
