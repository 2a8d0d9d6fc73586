/**
 * `tessera/client`: submit jobs to a Tessera server and follow them, from browsers, Node,
 * Deno and Bun. Uses `fetch` only; no `node:` imports.
 */
export {
  createClient,
  newIdempotencyKey,
  type ClientOptions,
  type ListFilter,
  type SubmitOptions,
  type SubmittedJob,
  type TesseraClient,
} from "./client.js";
export { decodeResult, JobHandle, type PollOptions, type RawResult, type WaitOptions } from "./handle.js";
export {
  jobRef,
  type ClientResult,
  type InputOf,
  type JobRef,
  type JobType,
  type OutputOf,
} from "./job-ref.js";
export {
  HttpError,
  JobAlreadyFinishedError,
  JobCanceledError,
  JobFailedError,
  JobFailureError,
  JobTimedOutError,
  RetryExhaustedError,
  TesseraClientError,
  WaitTimeoutError,
} from "./errors.js";
export { backoffDelay, DEFAULT_RETRY, type RetryOptions, type RetryPolicy } from "./retry.js";
export { parseRetryAfter } from "./retry-after.js";
export type { FetchLike } from "./transport.js";
export type { JobPage, JobRepresentation, JobStatus, JobTypeInfo, Problem, SagaStep } from "./wire.js";
