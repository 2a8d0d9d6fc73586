/**
 * One HTTP exchange with the server, made robust: credentials for the server's own origin
 * only, a time limit per attempt, bounded retries of faults, and the whole body read within
 * the attempt (so a connection cut mid-body is retried like any other network error).
 */
import { linkedSignal } from "./delay.js";
import { isJobOutcome } from "./errors.js";
import { withRetries, type AttemptOutcome, type RetryPolicy } from "./retry.js";
import { parseRetryAfter } from "./retry-after.js";
import { asProblem, problemSlug, type Problem } from "./wire.js";

/** The `fetch` the client calls; any WHATWG-compatible implementation will do. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface SendSpec {
  method: "GET" | "POST" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal | undefined;
  /** The server may hold this request so long (a `Prefer: wait`); added to the attempt timeout. */
  holdMs?: number;
  /** Retry `409 idempotency-in-flight` too: a submit whose earlier try is still being committed. */
  retryInFlight?: boolean;
  /** Overrides the client's retry policy for this request. */
  policy?: RetryPolicy;
}

/** An answer, read whole. `url` is where it came from after redirects were followed. */
export interface Reply {
  status: number;
  headers: Headers;
  url: string;
  redirected: boolean;
  body: Uint8Array;
}

const decoder = new TextDecoder();

export function replyText(reply: Reply): string {
  return decoder.decode(reply.body);
}

/** The JSON body, or null when empty. */
export function replyJson<T>(reply: Reply): T {
  const text = replyText(reply);
  return (text.length === 0 ? null : JSON.parse(text)) as T;
}

export function isJsonType(contentType: string | null): boolean {
  return contentType !== null && /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType);
}

/** The problem in an error answer, if it is one. */
export function replyProblem(reply: Reply): Problem | null {
  if (!isJsonType(reply.headers.get("content-type"))) return null;
  try {
    return asProblem(replyJson(reply));
  } catch {
    return null;
  }
}

/** The URL without its query: a signed URL's signature must not end up in logs. */
export function displayUrl(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

const ATTEMPT_TIMEOUT = Symbol("attempt timeout");

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  const detail = typeof cause?.message === "string" ? cause.message : undefined;
  if (code && detail) return `${error.message} (${code}: ${detail})`;
  return detail ? `${error.message} (${detail})` : error.message;
}

function isRetryableStatus(status: number, problem: Problem | null, retryInFlight: boolean): boolean {
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return true;
  return (
    status === 409 && retryInFlight && problem !== null && problemSlug(problem) === "idempotency-in-flight"
  );
}

export class Transport {
  private readonly origin: string;

  constructor(
    readonly baseUrl: string,
    private readonly options: {
      fetch: FetchLike;
      apiKey: string | undefined;
      headers: Readonly<Record<string, string>>;
      policy: RetryPolicy;
    },
  ) {
    this.origin = new URL(baseUrl).origin;
  }

  get policy(): RetryPolicy {
    return this.options.policy;
  }

  /**
   * Send with retries. Resolves with any answer that is not a fault (2xx, 3xx, a 4xx other
   * than 408/429, or a job's failure at the result resource); rejects with a
   * `RetryExhaustedError` when faults went on, or with the signal's reason when it aborted.
   */
  send(spec: SendSpec): Promise<Reply> {
    const policy = spec.policy ?? this.options.policy;
    const request = { method: spec.method, url: displayUrl(spec.url) };
    return withRetries(request, policy, spec.signal, () => this.attempt(spec, policy));
  }

  private headersFor(spec: SendSpec): Record<string, string> {
    const headers: Record<string, string> = {
      accept: "application/json, application/problem+json;q=0.9, */*;q=0.1",
      ...this.options.headers,
    };
    // The key goes to the server's own origin only, never to a URL elsewhere.
    if (this.options.apiKey !== undefined && new URL(spec.url).origin === this.origin) {
      headers.authorization = `Bearer ${this.options.apiKey}`;
    }
    if (spec.body !== undefined) headers["content-type"] = "application/json";
    return { ...headers, ...spec.headers };
  }

  private async attempt(spec: SendSpec, policy: RetryPolicy): Promise<AttemptOutcome<Reply>> {
    const timeoutMs = policy.timeoutMs + (spec.holdMs ?? 0);
    const link = linkedSignal([spec.signal], timeoutMs, ATTEMPT_TIMEOUT);
    let reply: Reply;
    try {
      const init: RequestInit = {
        method: spec.method,
        headers: this.headersFor(spec),
        signal: link.signal,
        redirect: "follow",
      };
      if (spec.body !== undefined) init.body = spec.body;
      const response = await this.options.fetch(spec.url, init);
      link.clearTimer(); // the time limit is for the answer to start; a large result may take longer
      const body = new Uint8Array(await response.arrayBuffer());
      reply = {
        status: response.status,
        headers: response.headers,
        url: response.url || spec.url,
        redirected: response.redirected,
        body,
      };
    } catch (error) {
      if (spec.signal?.aborted) throw spec.signal.reason;
      if (link.signal.aborted && link.signal.reason === ATTEMPT_TIMEOUT) {
        return { fault: `no answer within ${timeoutMs} ms`, status: null };
      }
      return { fault: describeNetworkError(error), status: null, cause: error };
    } finally {
      link.dispose();
    }
    const { status } = reply;
    if (status < 400 || (status !== 408 && status !== 409 && status !== 429 && status < 500))
      return { done: reply };
    const problem = replyProblem(reply);
    if (isJobOutcome(problem) || !isRetryableStatus(status, problem, spec.retryInFlight ?? false))
      return { done: reply };
    const what = problem ? `${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : "";
    return {
      fault: `HTTP ${status}${what ? ` (${what})` : ""}`,
      status,
      retryAfterMs: parseRetryAfter(reply.headers.get("retry-after")),
    };
  }
}
