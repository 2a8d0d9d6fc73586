/**
 * The outbox relay (`--events`): publishes kept events to the broker in the order they came,
 * marking each published once the broker confirms it. Every node runs one; the one holding the
 * partition's lease publishes, so a tenant's events leave in order, and when it dies (its lease
 * lapses) another node goes on from the first event not marked. What was published but not yet
 * marked when a node died is published again: the broker (by event id) and the consumers (by
 * the trigger's key) take it once.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Metrics } from "../http/metrics.js";
import type { EventRecord, Store } from "../store/store.js";
import { subjectOf, type Broker, type OutgoingEvent } from "./bridge/broker.js";
import { toCloudEvent } from "./cloud-event.js";
import type { TenantNames } from "./tenant-names.js";

export interface RelayOptions {
  /** How long a node holds the lease without renewing it (a dead node's is taken after this). */
  leaseMs: number;
  /** Events published per round trip to the store. */
  batchSize: number;
  /** How often to look for events kept on another node (this node's wake it at once). */
  pollMs: number;
}

/** The relay's one partition today: all tenants' events, in one order. */
const PARTITION = 0;
const MAX_BACKOFF_MS = 5_000;

export class EventRelay {
  readonly owner = randomUUID();
  private running = false;
  private loop: Promise<void> | null = null;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private holding = false;
  private renewedAt = -Infinity;

  constructor(
    private readonly deps: {
      store: Store;
      broker: Broker;
      tenants: TenantNames;
      logger: Logger;
      metrics: Metrics;
      now: () => number;
      options: RelayOptions;
    },
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Events were kept: look now rather than at the next poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Stop after the batch in flight, and give the lease up so another node takes over at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeUp?.();
    await this.loop;
    if (this.holding)
      await this.deps.store.releaseRelayLease({ part: PARTITION, owner: this.owner }).catch(() => undefined);
    this.holding = false;
  }

  private async run(): Promise<void> {
    const { leaseMs, batchSize, pollMs } = this.deps.options;
    let backoff = 0;
    while (this.running) {
      try {
        if (!(await this.hold())) {
          await this.sleep(leaseMs / 3);
          continue;
        }
        const sent = await this.publishBatch(batchSize);
        backoff = 0;
        if (sent < batchSize) await this.sleep(pollMs);
      } catch (error) {
        backoff = Math.min(MAX_BACKOFF_MS, Math.max(100, backoff * 2));
        this.deps.logger.warn({ err: error, retryInMs: backoff }, "event relay: publishing failed; retrying");
        await this.sleep(backoff, false);
      }
    }
  }

  /** Take or renew the lease (renewed a third of the way through it). */
  private async hold(): Promise<boolean> {
    const now = this.deps.now();
    const { leaseMs } = this.deps.options;
    if (this.holding && now - this.renewedAt < leaseMs / 3) return true;
    const held = await this.deps.store.holdRelayLease({ part: PARTITION, owner: this.owner, leaseMs, now });
    if (held && !this.holding) this.deps.logger.info("event relay: this node publishes events to the broker");
    this.holding = held;
    this.renewedAt = now;
    return held;
  }

  private async publishBatch(limit: number): Promise<number> {
    this.woken = false;
    const events = await this.deps.store.unpublishedEvents({ limit });
    if (events.length === 0) return 0;
    const outgoing = await Promise.all(events.map((event) => this.outgoing(event)));
    const { confirmed, error } = await this.deps.broker.publish(outgoing);
    if (confirmed > 0) {
      await this.deps.store.markPublished({
        seqs: events.slice(0, confirmed).map((e) => e.seq),
        now: this.deps.now(),
      });
      this.deps.metrics.eventsPublished.inc(confirmed);
    }
    // The rest go again, from the first the broker did not take: the order holds.
    if (error !== undefined) throw error;
    return confirmed;
  }

  private async outgoing(event: EventRecord): Promise<OutgoingEvent> {
    const tenant = await this.deps.tenants.nameOf(event.tenantId);
    return {
      subject: subjectOf(tenant, event.type),
      // CloudEvents are unique by source and id; Tessera's by tenant and id: the key is of all three.
      id: createHash("sha256").update(`${tenant}\n${event.source}\n${event.id}`).digest("base64url"),
      body: Buffer.from(JSON.stringify({ ...toCloudEvent(event), tenant })),
      hash: event.hash,
    };
  }

  /** Until `ms` pass or (when `wakeable`) events are kept. */
  private sleep(ms: number, wakeable = true): Promise<void> {
    if (!this.running || (wakeable && this.woken)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        if (wakeable || !this.running) done();
      };
    }).finally(() => (this.wakeUp = null));
  }
}
