import type { Logger } from "pino";
import type { Metrics } from "../http/metrics.js";
import { representAt } from "../http/representation.js";
import type { UrlSigner } from "../http/signed-url.js";
import type { ClaimedDelivery, JobCallbackEvent, Store } from "../store/store.js";
import type { AddressPolicy } from "./address-policy.js";
import { newEventId } from "../store/shared/outbox.js";
import { postWebhook, type PostLimits, type PostOutcome } from "./post.js";
import { signWebhook } from "./signature.js";

export interface DelivererOptions {
  /** Deliveries in flight at once in this process. @default 16 */
  concurrency: number;
  /** In flight at once for one tenant, so one tenant's slow receivers never starve the others. @default 4 */
  perTenant: number;
  /** Retries stop this long after the event (then the delivery is recorded as failed). @default 24 h */
  retryWindowMs: number;
  /** First retry delay; doubles per attempt, with full jitter. @default 5000 */
  baseDelayMs: number;
  /** Longest delay between two attempts (also caps a receiver's Retry-After). @default 6 h */
  maxDelayMs: number;
  /** Fallback poll for events announced on another node. @default 1000 */
  pollIntervalMs: number;
  limits: PostLimits;
}

/** Sends Standard Webhooks events with the tenant's secrets; the HTTP client's User-Agent. */
const USER_AGENT = "Tessera-Webhooks/1";

/**
 * Delivers the callback outbox: claims due events (leased, so several nodes can run it), sends
 * each signed per Standard Webhooks with a fresh timestamp per attempt and the same body and
 * `webhook-id` every time, and records every attempt. 2xx ends a delivery; 410 stops it; any
 * other answer, a network error or a timeout is retried with exponential backoff and full
 * jitter (honouring the receiver's Retry-After up to the cap) until the retry window closes.
 */
export class CallbackDeliverer {
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, ClaimedDelivery[]>();
  private active = 0;
  private running: Promise<void>[] = [];
  private started = false;
  private stopping = false;
  private filling = false;
  private refill = false;
  private timer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly deps: {
      store: Store;
      policy: AddressPolicy;
      signer: UrlSigner;
      /** Origin for links when the job recorded none (public URL or a placeholder). */
      fallbackOrigin: string;
      logger: Logger;
      metrics: Metrics;
      options: DelivererOptions;
      now: () => number;
      random?: () => number;
    },
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.unsubscribe = this.deps.store.subscribe((event) => {
      if (event.kind === "outbox") this.scheduleWake(event.at);
      else if (event.kind === "resync") this.wake();
    });
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.unsubscribe?.();
    await Promise.all(this.running);
    this.started = false;
  }

  /**
   * Send a signed `webhook.ping` and report whether the receiver answered 2xx in time. `data`:
   * what will be sent there (`{ jobType }` for a job's callback, `{ types }` for a subscription).
   */
  async ping(params: {
    url: string;
    tenantId: string;
    data: Record<string, unknown>;
    timeoutMs: number;
  }): Promise<PostOutcome> {
    const now = this.deps.now();
    const body = JSON.stringify({
      type: "webhook.ping",
      timestamp: new Date(now).toISOString(),
      data: params.data,
    });
    const secrets = await this.deps.store.webhookSecrets({ tenantId: params.tenantId, now });
    const id = newEventId();
    const timestamp = Math.floor(now / 1000);
    return postWebhook({
      url: params.url,
      body,
      policy: this.deps.policy,
      limits: { ...this.deps.options.limits, timeoutMs: params.timeoutMs },
      headers: {
        "user-agent": USER_AGENT,
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(secrets, id, timestamp, body),
      },
    });
  }

  private scheduleWake(at: number): void {
    if (this.stopping) return;
    if (at <= this.deps.now()) {
      this.wake();
      return;
    }
    if (at >= this.wakeAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.wakeAt = at;
    this.timer = setTimeout(() => {
      this.wakeAt = Infinity;
      this.timer = null;
      this.wake();
    }, at - this.deps.now());
    this.timer.unref();
  }

  private wake(): void {
    if (this.stopping || !this.started) return;
    if (this.filling) {
      this.refill = true;
      return;
    }
    this.filling = true;
    void this.fill()
      .catch((error: unknown) => this.deps.logger.warn({ err: error }, "claiming callback deliveries failed"))
      .finally(() => {
        this.filling = false;
        this.scheduleWake(this.deps.now() + this.deps.options.pollIntervalMs);
      });
  }

  private async fill(): Promise<void> {
    do {
      this.refill = false;
      // Events waiting behind their tenant's in-flight ones do not count: only tenants with a
      // free slot are claimed for, so one tenant's backlog never holds up the others.
      const free = this.deps.options.concurrency - this.active;
      if (free <= 0) return;
      const claimed = await this.deps.store.claimDeliveries({
        limit: free,
        // Long enough for an event to wait behind its tenant's in-flight ones, then be sent.
        leaseMs:
          4 *
          this.deps.options.limits.timeoutMs *
          Math.ceil(this.deps.options.concurrency / this.deps.options.perTenant),
        now: this.deps.now(),
        skipTenants: this.busyTenants(),
      });
      for (const event of claimed) this.enqueue(event);
      if (claimed.length === free) this.refill = true;
      else {
        const next = await this.deps.store.nextDeliveryAt();
        // Only a time still ahead: an earlier one is an event in flight (here or on another
        // node) or a busy tenant's, and a freed slot or the poll wakes this loop for those.
        // Waking at once for them would spin on the database.
        if (next !== null && next > this.deps.now()) this.scheduleWake(next);
      }
    } while (this.refill && !this.stopping);
  }

  /** Tenants with every slot in use (a tenant with events waiting here is always one). */
  private busyTenants(): string[] {
    const busy: string[] = [];
    for (const [tenantId, n] of this.inFlight) if (n >= this.deps.options.perTenant) busy.push(tenantId);
    return busy;
  }

  private enqueue(event: ClaimedDelivery): void {
    if ((this.inFlight.get(event.tenantId) ?? 0) >= this.deps.options.perTenant) {
      const list = this.waiting.get(event.tenantId) ?? [];
      list.push(event);
      this.waiting.set(event.tenantId, list);
      return;
    }
    this.inFlight.set(event.tenantId, (this.inFlight.get(event.tenantId) ?? 0) + 1);
    this.active++;
    const run = this.deliver(event)
      .catch((error: unknown) =>
        this.deps.logger.error({ err: error, eventId: event.id }, "callback delivery failed"),
      )
      .finally(() => {
        this.active--;
        this.inFlight.set(event.tenantId, (this.inFlight.get(event.tenantId) ?? 1) - 1);
        this.running = this.running.filter((r) => r !== run);
        const next = this.waiting.get(event.tenantId)?.shift();
        if (next) this.enqueue(next);
        this.wake();
      });
    this.running.push(run);
  }

  /** A job's callback body, built once from the event's job snapshot and kept for every retry. */
  private render(event: JobCallbackEvent): string {
    const base = event.job.callback?.origin ?? this.deps.fallbackOrigin;
    // A pure function of the event (its signed URL's expiry counts from the event, not from
    // now): a crash between the POST and recording it re-renders the very same bytes.
    const data = representAt(event.job, base, { signer: this.deps.signer, now: () => event.occurredAt });
    return JSON.stringify({ type: event.event, timestamp: new Date(event.occurredAt).toISOString(), data });
  }

  private async deliver(event: ClaimedDelivery): Promise<void> {
    const { store, options, metrics, logger } = this.deps;
    // A subscription's delivery was rendered when it was enqueued.
    const body = event.kind === "subscription" ? event.body : (event.body ?? this.render(event));
    const now = this.deps.now();
    const secrets = await store.webhookSecrets({ tenantId: event.tenantId, now });
    const timestamp = Math.floor(now / 1000); // signed afresh on every attempt
    const outcome = await postWebhook({
      url: event.url,
      body,
      policy: this.deps.policy,
      limits: options.limits,
      headers: {
        "user-agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(secrets, event.id, timestamp, body),
      },
    });
    const attempt = event.attempts + 1;
    const at = this.deps.now();
    const code = outcome.statusCode;
    let result: "delivered" | "retry" | "stopped" | "failed";
    let nextAttemptAt: number | null = null;
    if (code !== null && code >= 200 && code < 300) result = "delivered";
    else if (code === 410) result = "stopped";
    else {
      const exp = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
      let delay = Math.max(1000, Math.round((this.deps.random ?? Math.random)() * exp));
      if (outcome.retryAfterMs !== null)
        delay = Math.max(delay, Math.min(outcome.retryAfterMs, options.maxDelayMs));
      nextAttemptAt = at + delay;
      result = nextAttemptAt - event.occurredAt > options.retryWindowMs ? "failed" : "retry";
      if (result === "failed") nextAttemptAt = null;
    }
    const error =
      outcome.error ??
      (result === "delivered" || code === null ? null : `HTTP ${code}: ${outcome.excerpt.slice(0, 200)}`);
    const applied = await store.recordDelivery({
      eventId: event.id,
      leaseToken: event.leaseToken,
      body,
      outcome: result,
      attempt: {
        eventId: event.id,
        event: event.event,
        attempt,
        at,
        statusCode: code,
        latencyMs: outcome.latencyMs,
        error,
        nextAttemptAt,
      },
    });
    metrics.callbackAttempts.inc({ outcome: result });
    metrics.callbackLatency.observe(outcome.latencyMs / 1000);
    logger.info(
      {
        eventId: event.id,
        ...(event.kind === "job" ? { jobId: event.jobId } : { subscriptionId: event.subscriptionId }),
        event: event.event,
        attempt,
        statusCode: code,
        latencyMs: outcome.latencyMs,
        error,
        outcome: result,
        nextAttemptAt,
        applied,
      },
      "callback attempt",
    );
  }
}
