/**
 * The broker's side of triggers (`--events`): each event this service's job types trigger on,
 * as it comes from the broker, is checked like one sent over HTTP, kept in this store (once per
 * id: a redelivery finds it kept), and dispatched to its triggers; the broker hears `ack` only
 * after that commit, `retry` when the store cannot take it now, and a refusal (dead-lettered)
 * when it is no event of a tenant here.
 */
import type { Logger } from "pino";
import type { Metrics } from "../http/metrics.js";
import type { Store } from "../store/store.js";
import { subjectOf, type Broker, type Delivery, type Verdict } from "./bridge/broker.js";
import { parseCloudEvent } from "./cloud-event.js";
import type { EventDispatcher } from "./dispatcher.js";
import type { TenantNames } from "./tenant-names.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

export class EventConsumer {
  constructor(
    private readonly deps: {
      store: Store;
      broker: Broker;
      dispatcher: EventDispatcher;
      tenants: TenantNames;
      /** This service's consumer group on the broker. */
      group: string;
      logger: Logger;
      metrics: Metrics;
      now: () => number;
    },
  ) {}

  /** Consume the types this service's triggers listen to (nothing when none does). */
  async start(): Promise<void> {
    const types = this.deps.dispatcher.triggerTypes();
    if (types.size === 0) return;
    await this.deps.broker.consume(this.deps.group, [...types], (delivery) => this.handle(delivery));
  }

  async handle(delivery: Delivery): Promise<Verdict> {
    const verdict = await this.settle(delivery);
    const outcome = verdict === "ack" ? "kept" : verdict === "retry" ? "retried" : "refused";
    if (typeof verdict === "object")
      this.deps.logger.warn(
        { subject: delivery.subject, reason: verdict.reject },
        "event from the broker refused",
      );
    this.deps.metrics.eventsConsumed.inc({ outcome });
    return verdict;
  }

  private async settle(delivery: Delivery): Promise<Verdict> {
    let body: unknown;
    try {
      body = JSON.parse(decoder.decode(delivery.body));
    } catch {
      return { reject: "not a JSON CloudEvent" };
    }
    if (typeof body !== "object" || body === null || Array.isArray(body))
      return { reject: "not a JSON CloudEvent" };
    const { type, tenant } = body as { type?: unknown; tenant?: unknown };
    if (typeof type !== "string" || typeof tenant !== "string")
      return { reject: "a CloudEvent with a string type and tenant is required" };
    // A subject names its tenant: a publisher cannot slip an event to another tenant's subject.
    if (subjectOf(tenant, type) !== delivery.subject)
      return { reject: `its subject is not ${subjectOf(tenant, type)} (its tenant and type)` };
    if (!this.deps.dispatcher.triggerTypes().has(type)) return "ack";
    const tenantId = await this.deps.tenants.idOf(tenant);
    if (tenantId === null) return { reject: `no tenant "${tenant}" in this service` };
    const now = this.deps.now();
    const parsed = parseCloudEvent({ ...body, tenant: tenantId }, { tenantId, now, fromBroker: true });
    if ("issues" in parsed)
      return { reject: parsed.issues.map((i) => `${i.path || "/"} ${i.message}`).join("; ") };
    // Its sender's hash, when a Tessera sent it: the same event again is a duplicate however its
    // defaults (time, content type) were written out.
    const event = delivery.hash ? { ...parsed.event, hash: delivery.hash } : parsed.event;
    try {
      const kept = await this.deps.store.appendEvent({ event, now, received: true });
      if (kept.kind === "conflict") return { reject: `another event with id "${event.id}" is kept` };
      if (kept.kind === "created" || kept.event.dispatchedAt === null)
        await this.deps.dispatcher.dispatch(kept.event);
      return "ack";
    } catch (error) {
      this.deps.logger.warn(
        { err: error, subject: delivery.subject },
        "an event from the broker waits: the store is unavailable",
      );
      return "retry";
    }
  }
}
