/**
 * The broker's side of triggers (`--events`): each event this service's job types trigger on,
 * as it comes from the broker, is checked like one sent over HTTP, kept in this store (once per
 * id: a redelivery finds it kept), and dispatched to its triggers; the broker hears `ack` only
 * after that commit, `retry` when the store cannot take it now, and a refusal (dead-lettered)
 * when it is no event of a tenant here. Deliveries that come while a commit is in flight are
 * kept together in the next one, in the broker's order (a tenant's events keep theirs).
 */
import type { Logger } from "pino";
import type { Metrics } from "../http/metrics.js";
import type { AppendedEvent, NewEvent, Store } from "../store/store.js";
import { subjectOf, type Broker, type Delivery, type Verdict } from "./bridge/broker.js";
import { parseCloudEvent } from "./cloud-event.js";
import type { EventDispatcher } from "./dispatcher.js";
import type { TenantNames } from "./tenant-names.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

interface Waiting {
  event: NewEvent;
  settle: (verdict: Verdict) => void;
}

export class EventConsumer {
  /** Deliveries are checked one after another, so they reach `waiting` in the broker's order. */
  private intake: Promise<void> = Promise.resolve();
  private waiting: Waiting[] = [];
  private committing = false;

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

  handle(delivery: Delivery): Promise<Verdict> {
    return new Promise<Verdict>((resolve) => {
      this.intake = this.intake.then(async () => {
        const checked = await this.check(delivery).catch((): Verdict => "retry");
        if (typeof checked === "object" && "id" in checked) {
          this.waiting.push({ event: checked, settle: resolve });
          void this.commit();
        } else resolve(checked);
      });
    }).then((verdict) => {
      const outcome = verdict === "ack" ? "kept" : verdict === "retry" ? "retried" : "refused";
      if (typeof verdict === "object")
        this.deps.logger.warn(
          { subject: delivery.subject, reason: verdict.reject },
          "event from the broker refused",
        );
      this.deps.metrics.eventsConsumed.inc({ outcome });
      return verdict;
    });
  }

  /** The event to keep, or the verdict on a delivery that is none (or none of ours). */
  private async check(delivery: Delivery): Promise<NewEvent | Verdict> {
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
    // Another service's interest (a NATS group sees every subject): passed over.
    if (!this.deps.dispatcher.triggerTypes().has(type)) return "ack";
    const tenantId = await this.deps.tenants.idOf(tenant);
    if (tenantId === null) return { reject: `no tenant "${tenant}" in this service` };
    const parsed = parseCloudEvent(
      { ...body, tenant: tenantId },
      { tenantId, now: this.deps.now(), fromBroker: true },
    );
    if ("issues" in parsed)
      return { reject: parsed.issues.map((i) => `${i.path || "/"} ${i.message}`).join("; ") };
    // Its sender's hash, when a Tessera sent it: the same event again is a duplicate however its
    // defaults (time, content type) were written out.
    return delivery.hash ? { ...parsed.event, hash: delivery.hash } : parsed.event;
  }

  /** Keep what waits in one commit, run its triggers, settle each; then the next lot. */
  private async commit(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      while (this.waiting.length > 0) {
        const lot = this.waiting;
        this.waiting = [];
        let kept: AppendedEvent[];
        try {
          kept = await this.deps.store.appendEvents({
            events: lot.map((w) => w.event),
            now: this.deps.now(),
            received: true,
          });
        } catch (error) {
          this.deps.logger.warn({ err: error }, "events from the broker wait: the store is unavailable");
          for (const w of lot) w.settle("retry");
          continue;
        }
        await Promise.all(lot.map((w, i) => this.dispatch(w, kept[i]!)));
      }
    } finally {
      this.committing = false;
    }
  }

  private async dispatch(waiting: Waiting, kept: AppendedEvent): Promise<void> {
    if (kept.kind === "conflict") {
      waiting.settle({ reject: `another event with id "${kept.event.id}" is kept` });
      return;
    }
    try {
      if (kept.kind === "created" || kept.event.dispatchedAt === null)
        await this.deps.dispatcher.dispatch(kept.event);
      waiting.settle("ack");
    } catch (error) {
      // Kept, not dispatched: acked or not, the sweep runs it; retrying lets this node try first.
      this.deps.logger.warn({ err: error, event: kept.event.id }, "an event's triggers could not be run yet");
      waiting.settle("retry");
    }
  }
}
