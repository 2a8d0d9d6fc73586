/**
 * Runs the triggers of kept events: for each job type whose `on` matches, a job with the event
 * as its input, submitted with an idempotency key of the (job type, event id), so however often
 * an event is dispatched (after a crash, on two nodes) it starts one job per trigger; and for
 * each matching subscription, one webhook in the callback outbox (unique per subscription and
 * event id). The event is dispatched right after it is kept: by its sender's request, by the
 * worker whose completion kept it, or, for events kept by other writes (a job's lifecycle event
 * from a cancel, a failure, a sweep), on the store's `events` notification. One whose dispatch
 * never finished (a crash, the store down) is dispatched again by the sweep.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { submitOwnJob } from "../http/envelope.js";
import { ProblemError } from "../http/problems.js";
import type { JobDefinition } from "../jobs/define.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { EventRecord, NewEvent, Store, TriggeredJob } from "../store/store.js";
import { PeriodicTask } from "../worker/maintenance/periodic.js";
import { enqueueSubscriptionDeliveries } from "../subscriptions/fan-out.js";
import { toCloudEvent } from "./cloud-event.js";
import { LIFECYCLE_TYPE_PREFIX } from "./lifecycle.js";
import { matches } from "./triggers.js";

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
  ) {
    this.triggered = deps.registry.definitions().filter((d) => d.on && d.on.length > 0);
  }

  /** The job types with triggers (the registry does not change once made). */
  private readonly triggered: readonly JobDefinition[];
  private readonly listeners: (() => void)[] = [];

  /** The event types some trigger listens to. */
  triggerTypes(): ReadonlySet<string> {
    return (this.types ??= new Set(this.triggered.flatMap((d) => d.on!.map((trigger) => trigger.type))));
  }
  private types: ReadonlySet<string> | null = null;

  /** Call `listener` whenever an event is kept here (the relay publishes it). */
  onKept(listener: () => void): void {
    this.listeners.push(listener);
  }
  /** A pass over the undispatched events asked for by a notification: one at a time. */
  private pass: Promise<void> | null = null;
  /** A notification came during the pass: one more after it, for all that came meanwhile. */
  private again = false;

  /**
   * Start the event's jobs, enqueue its deliveries to the subscriptions it matches, and record
   * the jobs with it; what it started (or why not), per trigger. Both are idempotent, so a
   * dispatch that fails before its record is simply done again by the sweep.
   */
  async dispatch(event: NewEvent): Promise<TriggeredJob[]> {
    for (const listener of this.listeners) listener();
    const triggered: TriggeredJob[] = [];
    // A type is never started by its own jobs' lifecycle: its job's success would start the
    // next, without end.
    const own = event.type.startsWith(LIFECYCLE_TYPE_PREFIX) ? event.source : null;
    for (const definition of this.triggered) {
      if (own === `/jobs/${definition.type}`) continue;
      if (definition.on!.some((trigger) => matches(trigger, event)))
        triggered.push(await this.start(definition.type, event));
    }
    await enqueueSubscriptionDeliveries(this.deps.store, event, this.deps.now());
    await this.deps.store.markDispatched({
      tenantId: event.tenantId,
      id: event.id,
      triggered,
      now: this.deps.now(),
    });
    return triggered;
  }

  private async start(type: string, event: NewEvent): Promise<TriggeredJob> {
    const digest = createHash("sha256").update(`${type}\n${event.id}`).digest("base64url");
    let outcome;
    try {
      outcome = await submitOwnJob(this.deps, {
        tenantId: event.tenantId,
        envelope: { type, input: toCloudEvent(event) },
        key: `trigger:${digest}`,
        work: event.hash,
      });
    } catch (error) {
      // The job type's input schema refuses this event: nothing to retry, say so with it.
      if (error instanceof ProblemError) return { type, error: error.detail };
      throw error;
    }
    if (outcome.kind === "key-mismatch") return { type, error: "another event holds this trigger's key" };
    return { type, jobId: outcome.job.id };
  }

  /**
   * Dispatch `events` in turn; one that cannot be dispatched now is logged and left to the
   * sweep, and does not hold up the others. Resolves to how many failed.
   */
  private async dispatchAll(events: readonly NewEvent[]): Promise<number> {
    let failed = 0;
    for (const event of events)
      await this.dispatch(event).catch((error: unknown) => {
        failed++;
        this.deps.logger.warn({ err: error, event: event.id }, "an event's triggers could not be run yet");
      });
    return failed;
  }

  /** Events committed with a job's completion (`ctx.emit`): dispatched in turn, failures left to the sweep. */
  dispatchCommitted(events: readonly NewEvent[]): void {
    void this.dispatchAll(events);
  }

  /**
   * Dispatch promptly what other writes keep (the store's `events` notifications: lifecycle
   * events of cancels, failures and sweeps), rather than after the sweep's grace. Passes are
   * coalesced: one at a time, and one more after it for all the notifications that came
   * meanwhile, each of at most `batchSize` events; what one leaves is the sweep's. Returns the
   * unsubscribe, which settles once a pass under way has ended.
   */
  listen(batchSize: number): () => Promise<void> {
    const stop = this.deps.store.subscribe((event) => {
      if (event.kind === "events") this.schedulePass(batchSize);
    });
    return async () => {
      stop();
      this.again = false;
      await this.pass;
    };
  }

  private schedulePass(batchSize: number): void {
    if (this.pass) {
      this.again = true;
      return;
    }
    this.pass = (async () => {
      do {
        this.again = false;
        try {
          const events = await this.deps.store.undispatchedEvents({
            receivedBefore: this.deps.now() + 1,
            limit: batchSize,
          });
          await this.dispatchAll(events);
        } catch (error) {
          this.deps.logger.warn({ err: error }, "undispatched events could not be read; the sweep will");
        }
      } while (this.again);
      this.pass = null;
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
          // What fails now waits for the next pass, rather than the rest of the backlog.
          failed += await this.dispatchAll(events);
          if (events.length > 0) this.deps.logger.info({ events: events.length }, "events dispatched late");
        } while (events.length >= batchSize && failed === 0);
      },
      this.deps.logger,
    );
  }
}
