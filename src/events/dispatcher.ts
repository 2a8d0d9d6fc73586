/**
 * Runs the triggers of kept events: for each job type whose `on` matches, a job with the event
 * as its input, submitted with an idempotency key of the (job type, event id), so however often
 * an event is dispatched (after a crash, on two nodes) it starts one job per trigger. The event
 * is dispatched right after it is kept; one whose dispatch never finished (a crash, the store
 * down) is dispatched again by the sweep.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { buildJob } from "../http/envelope.js";
import { RESERVED_KEY_PREFIX, requestHash } from "../http/idempotency.js";
import { ProblemError } from "../http/problems.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { EventRecord, NewEvent, Store, TriggeredJob } from "../store/store.js";
import { PeriodicTask } from "../worker/maintenance/periodic.js";
import { toCloudEvent } from "./cloud-event.js";
import { matches } from "./triggers.js";

/** An event as kept: what a dispatch needs of it. */
export type KeptEvent = NewEvent & { receivedAt: number };

/** An event whose dispatch has not finished after this long is the sweep's. */
export const DISPATCH_GRACE_MS = 5_000;

export class EventDispatcher {
  constructor(
    private readonly deps: {
      store: Store;
      registry: JobRegistry;
      config: Config;
      /** How a triggered job is stored (the local worker's submit). */
      submit: Store["submit"];
      logger: Logger;
      now: () => number;
    },
  ) {}

  /** Start the event's jobs and record them with it; what it started (or why not), per trigger. */
  async dispatch(event: KeptEvent): Promise<TriggeredJob[]> {
    const triggered: TriggeredJob[] = [];
    for (const definition of this.deps.registry.definitions()) {
      if (definition.on?.some((trigger) => matches(trigger, event)))
        triggered.push(await this.start(definition.type, event));
    }
    await this.deps.store.markDispatched({
      tenantId: event.tenantId,
      id: event.id,
      triggered,
      now: this.deps.now(),
    });
    return triggered;
  }

  private async start(type: string, event: KeptEvent): Promise<TriggeredJob> {
    const { registry, config, submit } = this.deps;
    const now = this.deps.now();
    let job;
    try {
      job = buildJob(
        { type, input: toCloudEvent(event) },
        { tenantId: event.tenantId, registry, config, now },
      );
    } catch (error) {
      // The job type's input schema refuses this event: nothing to retry, say so with it.
      if (error instanceof ProblemError) return { type, error: error.detail };
      throw error;
    }
    const digest = createHash("sha256").update(`${type}\n${event.id}`).digest("base64url");
    const key = `${RESERVED_KEY_PREFIX}trigger:${digest}`;
    const hash = requestHash(event.tenantId, "EVENT", type, event.hash);
    const outcome = await submit({ job, idempotency: { key, requestHash: hash }, now });
    if (outcome.kind === "key-mismatch") return { type, error: "another event holds this trigger's key" };
    return { type, jobId: outcome.job.id };
  }

  /** Events committed with a job's completion (`ctx.emit`): dispatched in turn, failures left to the sweep. */
  dispatchCommitted(events: readonly NewEvent[]): void {
    const receivedAt = this.deps.now();
    void (async () => {
      for (const event of events) {
        await this.dispatch({ ...event, receivedAt }).catch((error: unknown) =>
          this.deps.logger.warn({ err: error, event: event.id }, "an event's triggers could not be run yet"),
        );
      }
    })();
  }

  /** Dispatch what was kept but never dispatched, oldest first. */
  sweeper(intervalMs: number, batchSize: number): PeriodicTask {
    return new PeriodicTask(
      "event-dispatch-sweeper",
      intervalMs,
      async () => {
        let events: EventRecord[];
        let failed = 0;
        do {
          events = await this.deps.store.undispatchedEvents({
            receivedBefore: this.deps.now() - DISPATCH_GRACE_MS,
            limit: batchSize,
          });
          // One event that cannot be dispatched now must not hold up the others behind it; the
          // next pass tries it again.
          for (const event of events)
            await this.dispatch(event).catch((error: unknown) => {
              failed++;
              this.deps.logger.warn(
                { err: error, event: event.id },
                "an event's triggers could not be run yet",
              );
            });
          if (events.length > 0) this.deps.logger.info({ events: events.length }, "events dispatched late");
        } while (events.length >= batchSize && failed === 0);
      },
      this.deps.logger,
    );
  }
}
