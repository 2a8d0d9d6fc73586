/**
 * RabbitMQ: a durable topic exchange `tessera.events`, persistent messages published on a
 * confirm channel, and per service group a durable queue `tessera.<group>` bound to the event
 * types it listens to, acked by hand once the event's jobs are committed. What a group refuses
 * goes to its dead-letter queue `tessera.<group>.dead-letter`. The connection recovers on its
 * own (amqplib's recovery); channels and consumers are made again on every connect.
 */
import { connect, type Channel, type ConfirmChannel, type ChannelModel, type ConsumeMessage } from "amqplib";
import type { Logger } from "pino";
import {
  confirmedPrefix,
  HASH_HEADER,
  typePattern,
  type Broker,
  type Delivery,
  type OutgoingEvent,
  type Verdict,
} from "./broker.js";

const EXCHANGE = "tessera.events";
const DEAD_LETTER_EXCHANGE = "tessera.dead-letter";
const RETRY_DELAY_MS = 1_000;
const PREFETCH = 256;

type Handler = (delivery: Delivery) => Promise<Verdict>;
type Recovering = Awaited<ReturnType<typeof openRecovering>>;

function openRecovering(url: string, setup: (model: ChannelModel) => Promise<void>) {
  return connect(url, {
    // Small frames (a publish, an ack) go at once, not after Nagle's wait for the last one's ACK.
    noDelay: true,
    recovery: { initialDelay: 100, maxDelay: 2_000, maxRetries: Infinity, initialMaxRetries: 5, setup },
  });
}

export class AmqpBroker implements Broker {
  readonly kind = "amqp";
  private publisher: ConfirmChannel | null = null;
  private readonly groups = new Map<string, { types: readonly string[]; handle: Handler }>();
  private model: ChannelModel | null = null;
  private connection: Recovering | null = null;
  private closed = false;

  private constructor(private readonly logger: Logger) {}

  static async open(url: string, logger: Logger): Promise<AmqpBroker> {
    const broker = new AmqpBroker(logger.child({ broker: "amqp" }));
    broker.connection = await openRecovering(url, (model) => broker.setup(model));
    broker.connection.on("disconnect", (error: Error) => {
      broker.publisher = null;
      broker.model = null; // consumers made meanwhile wait for the next connect's setup
      if (!broker.closed) broker.logger.warn({ err: error }, "RabbitMQ connection lost; reconnecting");
    });
    broker.connection.on("error", (error: Error) => broker.logger.warn({ err: error }, "RabbitMQ error"));
    return broker;
  }

  /** After every (re)connect: the topology, the publisher, the consumers. */
  private async setup(model: ChannelModel): Promise<void> {
    this.model = model;
    const publisher = await model.createConfirmChannel();
    await publisher.assertExchange(EXCHANGE, "topic", { durable: true });
    await publisher.assertExchange(DEAD_LETTER_EXCHANGE, "direct", { durable: true });
    for (const [group, { types, handle }] of this.groups)
      await this.startConsumer(model, group, types, handle);
    this.publisher = publisher;
  }

  async publish(events: readonly OutgoingEvent[]): Promise<{ confirmed: number; error?: unknown }> {
    const channel = this.publisher;
    if (!channel) return { confirmed: 0, error: new Error("not connected to RabbitMQ") };
    const confirms = events.map(
      (event) =>
        new Promise<void>((resolve, reject) => {
          channel.publish(
            EXCHANGE,
            event.subject,
            Buffer.from(event.body),
            {
              persistent: true,
              messageId: event.id,
              contentType: "application/cloudevents+json",
              headers: { [HASH_HEADER]: event.hash },
            },
            (error: unknown) =>
              error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(),
          );
        }),
    );
    return confirmedPrefix(await Promise.allSettled(confirms));
  }

  async consume(group: string, types: readonly string[], handle: Handler): Promise<void> {
    this.groups.set(group, { types, handle });
    if (this.model) await this.startConsumer(this.model, group, types, handle);
  }

  private async startConsumer(
    model: ChannelModel,
    group: string,
    types: readonly string[],
    handle: Handler,
  ): Promise<void> {
    const channel = await model.createChannel();
    const queue = `tessera.${group}`;
    const deadLetters = `${queue}.dead-letter`;
    await channel.assertQueue(deadLetters, { durable: true });
    await channel.bindQueue(deadLetters, DEAD_LETTER_EXCHANGE, group);
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": group },
    });
    for (const type of types) await channel.bindQueue(queue, EXCHANGE, typePattern(type));
    await channel.prefetch(PREFETCH);
    // In the queue's order, up to PREFETCH unsettled at once.
    await channel.consume(queue, (message) => {
      if (message) void this.settle(channel, message, handle);
    });
  }

  private async settle(channel: Channel, message: ConsumeMessage, handle: Handler): Promise<void> {
    const hash = message.properties.headers?.[HASH_HEADER] as unknown;
    const verdict = await handle({
      subject: message.fields.routingKey,
      body: message.content,
      hash: typeof hash === "string" ? hash : null,
    }).catch((): Verdict => "retry");
    try {
      if (verdict === "ack") channel.ack(message);
      else if (verdict === "retry")
        setTimeout(() => safe(() => channel.nack(message, false, true)), RETRY_DELAY_MS);
      else {
        this.logger.warn(
          { subject: message.fields.routingKey, reason: verdict.reject },
          "event dead-lettered",
        );
        channel.nack(message, false, false);
      }
    } catch (error) {
      // The channel closed under it: the broker delivers the message again after the reconnect.
      this.logger.debug({ err: error }, "a delivery could not be settled");
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connection?.close().catch(() => undefined);
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // The channel is gone; the message is redelivered.
  }
}
