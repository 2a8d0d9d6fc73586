/**
 * NATS JetStream: one stream `TESSERA_EVENTS` holds every `tessera.>` subject (file storage,
 * server-side dedupe by `Nats-Msg-Id` within two minutes); a service's nodes share one durable
 * pull consumer named after its group, acked only once the event's jobs are committed.
 */
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  headers,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
} from "nats";
import type { Logger } from "pino";
import {
  confirmedPrefix,
  HASH_HEADER,
  type Broker,
  type Delivery,
  type OutgoingEvent,
  type Verdict,
} from "./broker.js";

const STREAM = "TESSERA_EVENTS";
const DEAD_LETTERS = "TESSERA_DEAD_LETTERS";
const PUBLISH_TIMEOUT_MS = 5_000;
/** A delivery not settled in this long goes to another node of the group. */
const ACK_WAIT_MS = 30_000;
const RETRY_DELAY_MS = 1_000;
/** Deliveries handed over and not settled yet, at most. */
const MAX_IN_FLIGHT = 256;

export class NatsBroker implements Broker {
  readonly kind = "nats";
  private closed = false;
  private readonly consuming = new Set<ConsumerMessages>();
  private readonly loops: Promise<void>[] = [];

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly logger: Logger,
  ) {}

  static async open(url: string, logger: Logger): Promise<NatsBroker> {
    const parsed = new URL(url);
    const nc = await connect({
      servers: `${parsed.hostname}:${parsed.port || "4222"}`,
      ...(parsed.username ? { user: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { pass: decodeURIComponent(parsed.password) } : {}),
      name: "tessera",
      // Through a broker restart: keep trying, and keep what is published meanwhile in order.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // A broker down at start fails here, and the caller tries again.
      waitOnFirstConnect: false,
    });
    const jsm = await nc.jetstreamManager();
    await ensureStream(jsm, STREAM, "tessera.>");
    await ensureStream(jsm, DEAD_LETTERS, "tessera-dead-letter.>");
    return new NatsBroker(nc, nc.jetstream(), jsm, logger.child({ broker: "nats" }));
  }

  async publish(events: readonly OutgoingEvent[]): Promise<{ confirmed: number; error?: unknown }> {
    // All sent at once, in order, on one connection; the acks tell how far the stream got.
    const acks = events.map((event) => {
      const h = headers();
      h.set(HASH_HEADER, event.hash);
      return this.js.publish(event.subject, event.body, {
        msgID: event.id,
        headers: h,
        timeout: PUBLISH_TIMEOUT_MS,
        expect: { streamName: STREAM },
      });
    });
    return confirmedPrefix(await Promise.allSettled(acks));
  }

  async consume(
    group: string,
    _types: readonly string[],
    handle: (delivery: Delivery) => Promise<Verdict>,
  ): Promise<void> {
    // One consumer of all `tessera.>` per group keeps the broker's order across the types it
    // listens to (NATS 2.9 filters on one subject only); the handler passes over the others.
    await this.jsm.consumers.add(STREAM, {
      durable_name: group,
      ack_policy: AckPolicy.Explicit,
      // A new group starts with what is published from now on (as a new RabbitMQ queue does).
      deliver_policy: DeliverPolicy.New,
      filter_subject: "tessera.>",
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
      max_ack_pending: 1_000,
    });
    this.loops.push(this.consumeLoop(group, handle));
  }

  private async consumeLoop(group: string, handle: (delivery: Delivery) => Promise<Verdict>): Promise<void> {
    while (!this.closed) {
      let messages: ConsumerMessages | null = null;
      try {
        const consumer = await this.js.consumers.get(STREAM, group);
        messages = await consumer.consume({ max_messages: 256 });
        this.consuming.add(messages);
        let inFlight = 0;
        let drained: (() => void) | null = null;
        for await (const m of messages) {
          inFlight++;
          void handle({ subject: m.subject, body: m.data, hash: m.headers?.get(HASH_HEADER) || null })
            .catch((): Verdict => "retry")
            .then((verdict) => {
              if (verdict === "ack") m.ack();
              else if (verdict === "retry") m.nak(RETRY_DELAY_MS);
              else {
                this.deadLetter(group, m.subject, m.data, verdict.reject);
                m.term(verdict.reject);
              }
              if (--inFlight < MAX_IN_FLIGHT) drained?.();
            });
          if (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => (drained = resolve));
          drained = null;
        }
      } catch (error) {
        if (this.closed) break;
        this.logger.warn({ err: error, group }, "event consumer interrupted; resuming");
      } finally {
        if (messages) this.consuming.delete(messages);
      }
      if (!this.closed) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    }
  }

  private deadLetter(group: string, subject: string, body: Uint8Array, reason: string): void {
    const h = headers();
    h.set("tessera-subject", subject);
    h.set("tessera-reason", reason.slice(0, 512).replace(/[\r\n]/g, " "));
    this.js.publish(`tessera-dead-letter.${group}`, body, { headers: h }).catch((error: unknown) => {
      this.logger.warn({ err: error, subject }, "a refused event could not be dead-lettered");
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const messages of this.consuming) messages.stop();
    await Promise.allSettled(this.loops);
    await this.nc.drain().catch(() => this.nc.close());
  }
}

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string): Promise<void> {
  try {
    await jsm.streams.info(name);
  } catch {
    await jsm.streams.add({
      name,
      subjects: [subjects],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(120_000),
      max_age: nanos(7 * 24 * 3_600_000),
    });
  }
}
