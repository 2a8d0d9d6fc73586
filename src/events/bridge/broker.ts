/**
 * What the relay and the consumer need of a broker (NATS JetStream, RabbitMQ): publish events
 * durably and in order, and hand a service's share of the events it listens to over, one at a
 * time, until each is settled. Events travel as structured-mode CloudEvents on subjects
 * (routing keys) `tessera.<tenant>.<type>`.
 */

/** An event on its way to the broker. */
export interface OutgoingEvent {
  subject: string;
  /** The broker's dedupe key (`Nats-Msg-Id`, AMQP `message-id`): of the tenant, source and id. */
  id: string;
  /** The CloudEvent, JSON. */
  body: Uint8Array;
  /** The sender's hash of the event as first sent: a resend is told from another event by it. */
  hash: string;
}

/** An event from the broker. */
export interface Delivery {
  subject: string;
  body: Uint8Array;
  /** The sender's hash (a header), when a Tessera sent it. */
  hash: string | null;
}

/**
 * What became of a delivery: `ack` (kept and its jobs committed), `retry` (later: this store
 * could not take it now), `reject` (never: it is no event this service takes; dead-lettered).
 */
export type Verdict = "ack" | "retry" | { reject: string };

export interface Broker {
  /** `nats` or `amqp`, for logs and metrics. */
  readonly kind: string;
  /**
   * Publish `events` in order; resolves with how many of them, from the first, the broker has
   * confirmed it keeps (all of them unless `error` says why the rest were not).
   */
  publish(events: readonly OutgoingEvent[]): Promise<{ confirmed: number; error?: unknown }>;
  /**
   * Consume the events of `types` as consumer group `group` (durable: what comes while no node
   * of the group runs waits for it) until `close`: `handle` is called in the broker's order,
   * for the next delivery before the last is settled (up to a prefetch), and each delivery is
   * settled when its verdict comes.
   */
  consume(
    group: string,
    types: readonly string[],
    handle: (delivery: Delivery) => Promise<Verdict>,
  ): Promise<void>;
  close(): Promise<void>;
}

/** How far a batch of publishes got: the confirmed prefix, and why the next one was not. */
export function confirmedPrefix(settled: readonly PromiseSettledResult<unknown>[]): {
  confirmed: number;
  error?: unknown;
} {
  const failed = settled.findIndex((s) => s.status === "rejected");
  if (failed === -1) return { confirmed: settled.length };
  return { confirmed: failed, error: (settled[failed] as PromiseRejectedResult).reason };
}

/** The header (NATS) / AMQP header that carries the sender's event hash. */
export const HASH_HEADER = "tessera-event-hash";

// Subject tokens are split at dots; `*`, `>` (NATS) and `#` (AMQP) are wildcards; `%` escapes.
const escapeToken = (token: string): string =>
  token === "" ? "%" : token.replace(/[%*>#\s]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

/** The subject (routing key) of a tenant's event of `type`: `tessera.<tenant>.<type>`. */
export function subjectOf(tenant: string, type: string): string {
  return `tessera.${escapeToken(tenant).replace(/\./g, "%2e")}.${typeSubject(type)}`;
}

/** The subject tokens of an event type (`orders.created` stays `orders.created`). */
export function typeSubject(type: string): string {
  return type.split(".").map(escapeToken).join(".");
}

/** The subject pattern of every tenant's events of `type` (`*` is one token in both brokers). */
export function typePattern(type: string): string {
  return `tessera.*.${typeSubject(type)}`;
}
