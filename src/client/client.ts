/**
 * `createClient`: the Tessera client for browsers, Node, Deno and Bun, on `fetch` alone.
 * Submits get an Idempotency-Key each (so a retried submit never makes two jobs), faults are
 * retried with bounded backoff, and jobs are followed through handles (see handle.ts).
 */
import { JobHandle, httpError, type PollOptions, type WaitOptions } from "./handle.js";
import { typeName, type InputOf, type JobType, type OutputOf } from "./job-ref.js";
import { retryPolicy, type RetryOptions } from "./retry.js";
import { parseRetryAfter } from "./retry-after.js";
import { isJsonType, replyJson, Transport, type FetchLike, type Reply } from "./transport.js";
import type { JobPage, JobRepresentation, JobStatus, JobTypeInfo } from "./wire.js";

export interface ClientOptions {
  /** The server, e.g. `https://jobs.example.com` (a path prefix is kept). */
  baseUrl: string | URL;
  /** Sent as `Authorization: Bearer …` to the server's origin only. Not needed with `--dev`. */
  apiKey?: string | undefined;
  /** The `fetch` to use. @default globalThis.fetch */
  fetch?: FetchLike | undefined;
  /** Extra headers on every request. */
  headers?: Record<string, string> | undefined;
  /** Retries of network errors, timeouts, 408, 429 and 5xx. */
  retry?: RetryOptions | undefined;
  /** Defaults for every wait (`result()`, `wait()`, `run()`). */
  poll?: PollOptions | undefined;
}

export interface SubmitOptions {
  /** @default a fresh random key per `submit()` call, reused by its retries */
  idempotencyKey?: string;
  /** Where to POST the job's events: a URL, or `{ url, events?, verify? }`. */
  callback?: string | { url: string; events?: string[]; verify?: boolean };
  /** Deadline counted from submission. @default the job type's */
  timeoutSeconds?: number;
  /** @default the job type's */
  maxAttempts?: number;
  /** -100…100, higher runs first. @default 0 */
  priority?: number;
  /** Run no earlier than this. */
  runAt?: Date | string;
  metadata?: Record<string, string>;
  /** Let the server hold the submit up to this many seconds (`Prefer: wait`) in case the job ends quickly. */
  wait?: number;
  signal?: AbortSignal;
}

export interface ListFilter {
  status?: JobStatus;
  type?: string;
  /** Jobs per page, 1-500 (the server answers `400` outside that range). @default 50 */
  limit?: number;
  signal?: AbortSignal;
}

/** A handle from `submit()`: the representation is known. */
export type SubmittedJob<O> = JobHandle<O> & { readonly job: JobRepresentation };

export interface TesseraClient {
  /**
   * Submit a job; resolves once the server has durably accepted it (`202`).
   * @example
   * const job = await client.submit("demo.sleep", { ms: 2000 });
   * const result = await job.result();
   */
  submit<T extends JobType>(
    job: T,
    input: InputOf<T>,
    options?: SubmitOptions,
  ): Promise<SubmittedJob<OutputOf<T>>>;
  /** `submit` then `result`. */
  run<T extends JobType>(
    job: T,
    input: InputOf<T>,
    options?: SubmitOptions & WaitOptions,
  ): Promise<OutputOf<T>>;
  /**
   * POST `body` (JSON) to `url` at any server of the asynchronous request-reply pattern, not
   * only Tessera: resolves with a handle on the status monitor its `202` names in `Location`,
   * polled as its `Retry-After` says; a `200`/`201`/`204` answer is the result at once. Sent
   * with an `Idempotency-Key`, reused by the retries of a `429`, `503` or network error.
   * @example
   * const job = await client.submitTo("https://tts.internal/synthesize", { text: "hello" });
   * const audio = await job.result();
   */
  submitTo<O = unknown>(
    url: string,
    body: unknown,
    options?: { idempotencyKey?: string; headers?: Record<string, string>; signal?: AbortSignal },
  ): Promise<JobHandle<O>>;
  /** A handle on an existing job (no request is made). */
  getHandle<O = unknown>(id: string): JobHandle<O>;
  /** The job's current representation. */
  get(id: string, options?: { signal?: AbortSignal }): Promise<JobRepresentation>;
  /** Cancel a job (see `JobHandle.cancel`). */
  cancel(id: string, options?: { signal?: AbortSignal }): Promise<JobRepresentation>;
  /** Delete a job and its result (cancelling it first if active). */
  delete(id: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * The caller's jobs, newest first, one page at a time.
   * @example
   * for await (const page of client.list({ status: "failed" })) for (const job of page.items) console.log(job.id);
   */
  list(filter?: ListFilter): AsyncGenerator<JobPage, void, undefined>;
  /** The job types the server runs, with their input schemas. */
  jobTypes(options?: { signal?: AbortSignal }): Promise<JobTypeInfo[]>;
}

const DEFAULT_POLL: Required<PollOptions> = { minDelayMs: 1000, maxDelayMs: 30_000, longPoll: true };

/** 122 random bits in UUIDv4 form; `getRandomValues` works outside secure contexts too. */
export function newIdempotencyKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Create a client.
 *
 * @example
 * const client = createClient({ baseUrl: "http://127.0.0.1:3000", apiKey: "tsk_…" });
 * const report = await client.run(reportJob, { month: "2025-01" }, { onProgress: (j) => console.log(j.progress) });
 */
export function createClient(options: ClientOptions): TesseraClient {
  const base = new URL(String(options.baseUrl));
  if (base.protocol !== "http:" && base.protocol !== "https:")
    throw new TypeError(`baseUrl must be http(s), got "${String(options.baseUrl)}"`);
  const root = base.href.replace(/\/+$/, "");
  const userFetch = options.fetch;
  // Called as a plain function: browsers throw "Illegal invocation" for fetch detached from window.
  const fetchFn: FetchLike = userFetch ?? ((input, init) => globalThis.fetch(input, init));
  const transport = new Transport(root, {
    fetch: fetchFn,
    apiKey: options.apiKey,
    headers: { ...options.headers },
    policy: retryPolicy(options.retry),
  });
  const poll = Object.freeze({ ...DEFAULT_POLL, ...stripUndefined(options.poll ?? {}) });
  const ctx = { transport, poll, hints: {}, now: Date.now };
  const jobUrl = (id: string) => `${root}/v1/jobs/${encodeURIComponent(id)}`;

  const client: TesseraClient = {
    async submit(job, input, submitOptions = {}) {
      const body = envelope(typeName(job), input, submitOptions);
      const headers: Record<string, string> = {
        "idempotency-key": submitOptions.idempotencyKey ?? newIdempotencyKey(),
      };
      const wait = submitOptions.wait;
      if (wait !== undefined) headers.prefer = `wait=${Math.max(0, Math.floor(wait))}`;
      const url = `${root}/v1/jobs`;
      const reply = await transport.send({
        method: "POST",
        url,
        headers,
        body: JSON.stringify(body),
        signal: submitOptions.signal,
        retryInFlight: true,
        ...(wait !== undefined ? { holdMs: wait * 1000 } : {}),
      });
      return handleFromSubmit(reply, url) as Promise<SubmittedJob<OutputOf<typeof job>>>;
    },

    async run(job, input, runOptions = {}) {
      const handle = await client.submit(job, input, runOptions);
      return handle.result(runOptions);
    },

    async submitTo<O>(
      target: string,
      body: unknown,
      options: { idempotencyKey?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
    ) {
      const url = new URL(target, `${root}/`).href;
      const reply = await transport.send({
        method: "POST",
        url,
        headers: { ...options.headers, "idempotency-key": options.idempotencyKey ?? newIdempotencyKey() },
        body: JSON.stringify(body === undefined ? null : body),
        signal: options.signal,
        retryInFlight: true,
      });
      const replayed = reply.headers.get("idempotent-replayed") === "true";
      if (reply.status === 200 || reply.status === 201 || reply.status === 204)
        return new JobHandle<O>(ctx, "", url, { replayed, settled: reply });
      const location = reply.headers.get("location");
      if (reply.status !== 202 || location === null) throw httpError("POST", url, reply);
      const statusUrl = new URL(location, url).href;
      // Its representation when it sent one of the contract's shape (its links: where to cancel).
      const sent = isJsonType(reply.headers.get("content-type")) ? replyJson<unknown>(reply) : null;
      const job = isRepresentation(sent) ? sent : null;
      const id = job?.id ?? decodeURIComponent(new URL(statusUrl).pathname.split("/").pop() ?? "");
      return new JobHandle<O>(ctx, id, statusUrl, {
        job,
        retryAfterMs: parseRetryAfter(reply.headers.get("retry-after")),
        replayed,
      });
    },

    getHandle<O>(id: string) {
      return new JobHandle<O>(ctx, id, jobUrl(id));
    },

    get(id, opts = {}) {
      return new JobHandle(ctx, id, jobUrl(id)).status(opts);
    },

    cancel(id, opts = {}) {
      return new JobHandle(ctx, id, jobUrl(id)).cancel(opts);
    },

    async delete(id, opts = {}) {
      const url = jobUrl(id);
      const reply = await transport.send({ method: "DELETE", url, signal: opts.signal });
      if (reply.status !== 204 && reply.status !== 200) throw httpError("DELETE", url, reply);
    },

    async *list(filter = {}) {
      let cursor: string | null = null;
      do {
        const params = new URLSearchParams();
        if (filter.status !== undefined) params.set("status", filter.status);
        if (filter.type !== undefined) params.set("type", filter.type);
        if (filter.limit !== undefined) params.set("limit", String(filter.limit));
        if (cursor !== null) params.set("cursor", cursor);
        const query = params.toString();
        const url = `${root}/v1/jobs${query ? `?${query}` : ""}`;
        const reply = await transport.send({ method: "GET", url, signal: filter.signal });
        if (reply.status !== 200) throw httpError("GET", url, reply);
        const page = replyJson<JobPage>(reply);
        yield page;
        cursor = page.nextCursor;
      } while (cursor !== null);
    },

    async jobTypes(opts = {}) {
      const url = `${root}/v1/job-types`;
      const reply = await transport.send({ method: "GET", url, signal: opts.signal });
      if (reply.status !== 200) throw httpError("GET", url, reply);
      return replyJson<{ items: JobTypeInfo[] }>(reply).items;
    },
  };

  /** `202`: a pending job. Anything else with `Content-Location`: the wait saw it end. */
  async function handleFromSubmit(reply: Reply, url: string): Promise<JobHandle> {
    const replayed = reply.headers.get("idempotent-replayed") === "true";
    if (reply.status === 202) {
      const job = replyJson<JobRepresentation>(reply);
      const location = reply.headers.get("location") ?? jobUrl(job.id);
      return new JobHandle(ctx, job.id, location, {
        job,
        retryAfterMs: parseRetryAfter(reply.headers.get("retry-after")),
        replayed,
      });
    }
    const contentLocation = reply.headers.get("content-location");
    if (contentLocation === null) throw httpError("POST", url, reply);
    const statusUrl = new URL(contentLocation, url).href;
    const id = decodeURIComponent(new URL(statusUrl).pathname.split("/").pop() ?? "");
    const handle = new JobHandle(ctx, id, statusUrl, { replayed, settled: reply });
    await handle.status();
    return handle;
  }

  return client;
}

function isRepresentation(value: unknown): value is JobRepresentation {
  const v = value as Partial<JobRepresentation> | null;
  return typeof v?.id === "string" && typeof v.links === "object" && v.links !== null;
}

function envelope(type: string, input: unknown, o: SubmitOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { type, input: input === undefined ? null : input };
  if (o.callback !== undefined)
    body.callback = typeof o.callback === "string" ? { url: o.callback } : o.callback;
  if (o.timeoutSeconds !== undefined) body.timeoutSeconds = o.timeoutSeconds;
  if (o.maxAttempts !== undefined) body.maxAttempts = o.maxAttempts;
  if (o.priority !== undefined) body.priority = o.priority;
  if (o.runAt !== undefined) body.runAt = o.runAt instanceof Date ? o.runAt.toISOString() : o.runAt;
  if (o.metadata !== undefined) body.metadata = o.metadata;
  return body;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
