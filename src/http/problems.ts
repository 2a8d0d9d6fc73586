import type { FastifyReply, FastifyRequest } from "fastify";
import { PROBLEMS, problemType, type ProblemSlug } from "../jobs/problems.js";
import type { ValidationIssue } from "../jobs/registry.js";

export const PROBLEM_JSON = "application/problem+json";

/** Thrown by routes and hooks; the error handler turns it into problem+json. */
export class ProblemError extends Error {
  constructor(
    readonly slug: ProblemSlug,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  get status(): number {
    return PROBLEMS[this.slug].status;
  }
}

/** The store could not commit or answer: nothing was done; the client may try again in a second. */
export function storeUnavailable(detail: string): ProblemError {
  return new ProblemError("service-unavailable", detail, {}, { "retry-after": "1" });
}

/** At most this many `errors` are listed: 10,000 bad members must not make a 500 KB answer. */
export const MAX_LISTED_ISSUES = 50;

export function validationProblem(
  errors: ValidationIssue[],
  slug: ProblemSlug = "validation-failed",
): ProblemError {
  const detail =
    errors.length === 1
      ? `${errors[0]!.path || "/"} ${errors[0]!.message}`
      : `${errors.length} problems in the request${errors.length > MAX_LISTED_ISSUES ? ` (the first ${MAX_LISTED_ISSUES} are listed)` : ""}`;
  return new ProblemError(slug, detail, { errors: errors.slice(0, MAX_LISTED_ISSUES) });
}

/** The RFC 9457 body; `instance` is the request path (never the query, which may hold a signature). */
export function problemBody(
  slug: ProblemSlug,
  detail: string,
  instance: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { title, status } = PROBLEMS[slug];
  return { type: problemType(slug), title, status, detail, instance, ...extra };
}

export function instanceOf(request: FastifyRequest): string {
  const url = request.raw.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

export function sendProblem(reply: FastifyReply, error: ProblemError): FastifyReply {
  const body = problemBody(error.slug, error.detail, instanceOf(reply.request), error.extra);
  return reply
    .code(error.status)
    .headers(error.headers)
    .header("content-type", PROBLEM_JSON)
    .send(JSON.stringify(body));
}

/** Map a Fastify/Node error code to one of our problems. */
export function problemFromFrameworkError(error: {
  code?: string;
  statusCode?: number;
  message: string;
}): ProblemError | null {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ProblemError("payload-too-large", "the request body is larger than the limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ProblemError("unsupported-media-type", "send the body as application/json (UTF-8)");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new ProblemError("invalid-json", "the request body is empty");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new ProblemError("bad-request", "Content-Length does not match the body");
    case "FST_ERR_BAD_URL":
      return new ProblemError("bad-request", "the URL is not validly percent-encoded");
    case "FST_ERR_MAX_PARAM_LENGTH":
      // No id (or slug) is that long, so nothing lives there: the same 404 as any unknown id.
      return new ProblemError("not-found", "no such resource");
    default:
      break;
  }
  const status = error.statusCode ?? 500;
  if (status === 413)
    return new ProblemError("payload-too-large", "the request body is larger than the limit");
  if (status === 415) return new ProblemError("unsupported-media-type", "unsupported media type");
  if (status === 408) return new ProblemError("request-timeout", "the request took too long to arrive");
  if (status === 431) return new ProblemError("header-too-large", "the request headers are too large");
  if (status >= 400 && status < 500)
    return new ProblemError("bad-request", "the request could not be understood");
  return null;
}
