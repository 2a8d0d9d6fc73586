import type { JobProblem } from "./errors.js";

/**
 * The one registry of problem types (RFC 9457). A problem's `type` is `/problems/<slug>`;
 * docs/problems.md documents each slug, and a test checks the two agree in both directions.
 */
export const PROBLEMS = {
  "bad-request": { status: 400, title: "Bad request" },
  "validation-failed": { status: 400, title: "The request is not valid" },
  "unknown-job-type": { status: 400, title: "Unknown job type" },
  "input-too-deep": { status: 400, title: "JSON nested too deeply" },
  "invalid-json": { status: 400, title: "Malformed JSON" },
  "invalid-idempotency-key": { status: 400, title: "Invalid Idempotency-Key" },
  "invalid-parameter": { status: 400, title: "Invalid query parameter" },
  "callback-url-forbidden": { status: 400, title: "Callback URL not allowed" },
  "callback-unreachable": { status: 400, title: "Callback receiver did not answer the ping" },
  unauthorized: { status: 401, title: "Missing or invalid API key" },
  "signature-invalid": { status: 403, title: "Invalid or expired signature" },
  "not-found": { status: 404, title: "Not found" },
  "method-not-allowed": { status: 405, title: "Method not allowed" },
  "request-timeout": { status: 408, title: "Request timeout" },
  "job-canceled": { status: 409, title: "The job was canceled" },
  "job-already-finished": { status: 409, title: "The job has already finished" },
  "saga-event-exists": { status: 409, title: "The saga has an event of that name already" },
  "event-id-conflict": { status: 409, title: "Another event with this id was sent before" },
  "idempotency-in-flight": { status: 409, title: "A request with this Idempotency-Key is in flight" },
  "result-gone": { status: 410, title: "The result is no longer available" },
  "payload-too-large": { status: 413, title: "Request body too large" },
  "unsupported-media-type": { status: 415, title: "Unsupported media type" },
  "idempotency-key-mismatch": { status: 422, title: "Idempotency-Key reused with a different request" },
  "job-rejected": { status: 422, title: "The job rejected its input" },
  "rate-limited": { status: 429, title: "Too many requests" },
  "quota-exceeded": { status: 429, title: "Too many queued jobs" },
  "header-too-large": { status: 431, title: "Request headers too large" },
  "internal-error": { status: 500, title: "Internal server error" },
  "job-failed": { status: 500, title: "The job failed" },
  "command-not-found": { status: 500, title: "The job's command could not be started" },
  "command-output-too-large": { status: 500, title: "The job's command wrote too much output" },
  "command-output-invalid": { status: 500, title: "The job's command left no usable result" },
  "saga-step-failed": {
    status: 500,
    title: "A step of the saga failed; the steps before it were compensated",
  },
  "saga-compensation-failed": {
    status: 500,
    title: "A compensation of the saga failed; the saga needs an operator",
  },
  "saga-nondeterministic": { status: 500, title: "The saga's code no longer matches its journal" },
  "service-unavailable": { status: 503, title: "Service unavailable" },
  "job-timed-out": { status: 504, title: "The job timed out" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemSlug = keyof typeof PROBLEMS;

export function problemType(slug: string): string {
  return `/problems/${slug}`;
}

/** A job's persisted problem for one of the registered slugs. */
export function jobProblem(slug: ProblemSlug, detail: string, status?: number): JobProblem {
  const entry = PROBLEMS[slug];
  return { type: problemType(slug), title: entry.title, status: status ?? entry.status, detail };
}
