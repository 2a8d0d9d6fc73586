/**
 * Rate limits, the per-job poll budget and the queued-jobs quota (`429`).
 *
 * - **Rates**: fixed windows of `--rate-window` seconds, separately for submits and polls
 *   (status, result, list), per tenant — per client address (`request.ip`) for requests
 *   without a tenant (failed authentication, `--dev`). A tenant may have its own rates
 *   (`tessera tenants limits`). With PostgreSQL the counters are rows of an UNLOGGED table
 *   shared by every node; the hits of one event-loop turn are one statement
 *   (`Store.hitRateCounter`). Once a window is used up, this node answers `429` from memory
 *   until the window ends, without asking the database again. With SQLite (one node) the
 *   counters are in memory. If the shared counters cannot be reached, requests are let through.
 * - **Poll budget** (per node): after a status poll answered `202` with `Retry-After: N`, the
 *   same tenant's poll of that job earlier than N seconds later (less a slack for rounding) is
 *   `429` with the remaining time, before the job is read. `Prefer: wait` and
 *   `onPending=synchronous` are long polls and exempt. A client that waits as told never sees it.
 * - **Quota**: a tenant's queued jobs, counted by the store at most once a second per node plus
 *   this node's own accepts since; so other nodes' accepts of the last second are the slack.
 *
 * Every response of a limited route carries `RateLimit-Policy` and `RateLimit`
 * (draft-ietf-httpapi-ratelimit-headers, structured fields), e.g. `"poll";q=5000;w=1` and
 * `"poll";r=4987;t=1`.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Store, TenantLimits } from "../store/store.js";
import { authenticate } from "./auth.js";
import type { Metrics } from "./metrics.js";
import { ProblemError } from "./problems.js";
import type { ServerDeps } from "./server.js";

export type RatePolicy = "submit" | "poll";

/** Which routes count against which policy (`METHOD url-pattern`). */
export const LIMITED_ROUTES: Readonly<Record<string, RatePolicy>> = {
  "POST /v1/jobs": "submit",
  "GET /v1/jobs": "poll",
  "HEAD /v1/jobs": "poll",
  "GET /v1/jobs/:id": "poll",
  "HEAD /v1/jobs/:id": "poll",
  "GET /v1/jobs/:id/result": "poll",
  "HEAD /v1/jobs/:id/result": "poll",
  // An event starts jobs (its triggers'): it counts as a submit, as does one for a saga.
  "POST /v1/events": "submit",
  "POST /v1/jobs/:id/events/:name": "submit",
  "GET /v1/events": "poll",
  "GET /v1/events/:id": "poll",
  // A subscription's writes count as submits, its reads as polls, like the events'.
  "POST /v1/subscriptions": "submit",
  "DELETE /v1/subscriptions/:id": "submit",
  "GET /v1/subscriptions": "poll",
  "GET /v1/subscriptions/:id": "poll",
};

export function policyOf(request: FastifyRequest): RatePolicy | undefined {
  return LIMITED_ROUTES[`${request.method} ${request.routeOptions.url ?? ""}`];
}

/** Tenants' own limits are re-read this often per node (a CLI change applies within it). */
const LIMITS_TTL_MS = 5_000;
/** The queued-jobs count is re-read this often per tenant and node. */
const QUEUED_TTL_MS = 1_000;
/** `Retry-After` of a `quota-exceeded` answer. */
const QUOTA_RETRY_AFTER_S = 5;
/** Jobs remembered by the poll budget (least recently answered dropped first). */
const BUDGET_ENTRIES = 100_000;
/** In-memory maps are swept of stale entries once they hold this many. */
const SWEEP_AT = 10_000;

export interface RateLimiterOptions {
  config: Config;
  store: Store;
  metrics: Metrics;
  logger?: Logger;
  now: () => number;
}

interface Counter {
  windowStart: number;
  hits: number;
}

export class RateLimiter {
  private readonly config: Config;
  private readonly store: Store;
  private readonly metrics: Metrics;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;
  private readonly windowMs: number;
  /** Single node: the counters themselves. */
  private readonly counters = new Map<string, Counter>();
  /** Shared counters: keys whose current window is used up (-> the window's end). */
  private readonly exhausted = new Map<string, number>();
  private readonly limits = new Map<string, { at: number; value: Promise<TenantLimits> }>();
  private readonly queued = new Map<string, { at: number; count: number }>();
  private readonly queuedReads = new Map<string, Promise<number>>();
  /** `tenant job` -> the earliest time (ms) a poll is welcome. */
  private readonly budget = new Map<string, number>();
  readonly pollBudget: boolean;

  constructor(options: RateLimiterOptions) {
    this.config = options.config;
    this.store = options.store;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.now = options.now;
    this.windowMs = options.config.rateWindow * 1000;
    this.pollBudget = options.config.pollBudget;
  }

  // --- rates --------------------------------------------------------------------------------

  /**
   * Count this request against `policy` for its tenant (or, with `tenantId` null or in `--dev`,
   * its address); set the RateLimit headers; throw `429 rate-limited` when the window is used up.
   */
  async admit(
    request: FastifyRequest,
    reply: FastifyReply,
    policy: RatePolicy,
    tenantId: string | null,
  ): Promise<void> {
    const byAddress = tenantId === null || this.config.dev;
    const limits = tenantId === null ? null : await this.limitsOf(tenantId);
    const perSecond =
      policy === "submit"
        ? (limits?.submitRate ?? this.config.rateSubmit)
        : (limits?.pollRate ?? this.config.ratePoll);
    if (perSecond <= 0) return;
    const quota = perSecond * this.config.rateWindow;
    const key = `${policy}:${byAddress ? `ip:${request.ip}` : `t:${tenantId}`}`;
    const now = this.now();
    const windowStart = now - (now % this.windowMs);
    const windowEnd = windowStart + this.windowMs;
    const hits = await this.hit(key, windowStart, windowEnd, quota);
    const reset = Math.max(1, Math.ceil((windowEnd - now) / 1000));
    reply.header("ratelimit-policy", `"${policy}";q=${quota};w=${this.config.rateWindow}`);
    reply.header("ratelimit", `"${policy}";r=${Math.max(0, quota - hits)};t=${reset}`);
    if (hits > quota) {
      this.metrics.rateLimited.inc({ policy, reason: "rate" });
      throw new ProblemError(
        "rate-limited",
        `more than ${quota} ${policy === "submit" ? "submits" : "polls"} in ${this.config.rateWindow} s; retry after ${reset} s`,
        {},
        { "retry-after": String(reset) },
      );
    }
  }

  /** The counter's value with this hit; above `quota`: refused. */
  private async hit(key: string, windowStart: number, windowEnd: number, quota: number): Promise<number> {
    if (this.store.hitRateCounter) {
      const until = this.exhausted.get(key);
      if (until !== undefined) {
        if (until > windowStart) return quota + 1; // used up: answered here, no query
        this.exhausted.delete(key);
      }
      let hits: number;
      try {
        hits = await this.store.hitRateCounter({ key, windowStart, expiresAt: windowEnd + this.windowMs });
      } catch (error) {
        this.logger?.warn({ err: error }, "rate counter unavailable; request let through");
        return 0;
      }
      if (hits > quota) {
        if (this.exhausted.size >= SWEEP_AT) sweep(this.exhausted, (end) => end <= windowStart);
        this.exhausted.set(key, windowEnd);
      }
      return hits;
    }
    let counter = this.counters.get(key);
    if (counter === undefined || counter.windowStart !== windowStart) {
      if (counter === undefined && this.counters.size >= SWEEP_AT)
        sweep(this.counters, (c) => c.windowStart < windowStart);
      counter = { windowStart, hits: 0 };
      this.counters.set(key, counter);
    }
    return ++counter.hits;
  }

  /** The tenant's own limits, cached for a few seconds; the defaults if the store fails. */
  private async limitsOf(tenantId: string): Promise<TenantLimits> {
    const now = this.now();
    const cached = this.limits.get(tenantId);
    if (cached && now - cached.at < LIMITS_TTL_MS) return cached.value;
    if (this.limits.size >= SWEEP_AT) sweep(this.limits, (e) => now - e.at >= LIMITS_TTL_MS);
    const value = this.store.tenantLimits({ tenantId }).catch((error: unknown) => {
      this.logger?.warn({ err: error }, "tenant limits unavailable; defaults apply");
      this.limits.delete(tenantId);
      return { submitRate: null, pollRate: null, maxQueued: null };
    });
    this.limits.set(tenantId, { at: now, value });
    return value;
  }

  // --- the per-job poll budget --------------------------------------------------------------

  /** Throws `429` when this tenant polls `jobId` before the Retry-After this node gave it. */
  checkPollBudget(tenantId: string, jobId: string): void {
    if (!this.pollBudget) return;
    const key = `${tenantId} ${jobId}`;
    const notBefore = this.budget.get(key);
    if (notBefore === undefined) return;
    const now = this.now();
    if (now >= notBefore) {
      this.budget.delete(key);
      return;
    }
    const wait = Math.max(1, Math.ceil((notBefore - now) / 1000));
    this.metrics.rateLimited.inc({ policy: "poll", reason: "poll-budget" });
    throw new ProblemError(
      "rate-limited",
      `this job was polled before the Retry-After it was given; poll again in ${wait} s`,
      {},
      { "retry-after": String(wait) },
    );
  }

  /** A status poll of `jobId` was answered with `Retry-After: seconds`. */
  notePollAnswer(tenantId: string, jobId: string, seconds: number): void {
    if (!this.pollBudget || !Number.isFinite(seconds) || seconds <= 0) return;
    const key = `${tenantId} ${jobId}`;
    const ms = seconds * 1000;
    // Clients round, and clocks tick: whichever is larger of 10 % and 500 ms is forgiven.
    const notBefore = this.now() + ms - Math.max(500, ms / 10);
    this.budget.delete(key); // re-inserted last: the map's order is the LRU order
    this.budget.set(key, notBefore);
    if (this.budget.size > BUDGET_ENTRIES) this.budget.delete(this.budget.keys().next().value!);
  }

  /** The job is terminal or gone: nothing to budget. */
  forgetJob(tenantId: string, jobId: string): void {
    this.budget.delete(`${tenantId} ${jobId}`);
  }

  // --- the queued-jobs quota ----------------------------------------------------------------

  /** Throws `429 quota-exceeded` when the tenant has its maximum of queued jobs; else counts one. */
  async admitQueued(tenantId: string): Promise<void> {
    const limits = await this.limitsOf(tenantId);
    const max = limits.maxQueued ?? this.config.maxQueuedPerTenant;
    if (max <= 0) return;
    const now = this.now();
    let entry = this.queued.get(tenantId);
    if (entry === undefined || now - entry.at >= QUEUED_TTL_MS) {
      let count: number;
      try {
        count = await this.readQueued(tenantId);
      } catch (error) {
        this.logger?.warn({ err: error }, "queued-jobs count unavailable; submit let through");
        return;
      }
      entry = this.queued.get(tenantId);
      if (entry === undefined || now - entry.at >= QUEUED_TTL_MS) {
        if (this.queued.size >= SWEEP_AT) sweep(this.queued, (e) => now - e.at >= QUEUED_TTL_MS);
        entry = { at: now, count };
        this.queued.set(tenantId, entry);
      }
    }
    if (entry.count >= max) {
      this.metrics.rateLimited.inc({ policy: "submit", reason: "quota" });
      throw new ProblemError(
        "quota-exceeded",
        `the tenant already has ${max} or more jobs queued; retry once some have started`,
        { maxQueued: max },
        { "retry-after": String(QUOTA_RETRY_AFTER_S) },
      );
    }
    entry.count++;
  }

  /** One count query per tenant at a time, however many submits wait for it. */
  private readQueued(tenantId: string): Promise<number> {
    let read = this.queuedReads.get(tenantId);
    if (read === undefined) {
      read = this.store.countQueued({ tenantId }).finally(() => this.queuedReads.delete(tenantId));
      this.queuedReads.set(tenantId, read);
    }
    return read;
  }
}

function sweep<V>(map: Map<string, V>, stale: (value: V) => boolean): void {
  for (const [key, value] of map) if (stale(value)) map.delete(key);
}

/**
 * Authenticate (as `authenticate`) and count the request against its route's policy: by
 * tenant, or by address when authentication failed (so guessing keys is limited too).
 */
export async function authenticateLimited(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
): Promise<string> {
  const policy = policyOf(request);
  let tenantId: string;
  try {
    tenantId = await authenticate(request, deps);
  } catch (error) {
    if (policy && deps.limiter && error instanceof ProblemError && error.slug === "unauthorized")
      await deps.limiter.admit(request, reply, policy, null);
    throw error;
  }
  if (policy && deps.limiter) await deps.limiter.admit(request, reply, policy, tenantId);
  return tenantId;
}
