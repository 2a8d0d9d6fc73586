/**
 * A service's bridge to its broker (`--events`): the outbox relay out, the consumer in. Opened
 * at start; with the broker down, tried again in the background (the API and the workers run
 * meanwhile and events wait in the store), so it opens once the broker is back.
 */
import type { Logger } from "pino";
import type { Metrics } from "../../http/metrics.js";
import type { Store } from "../../store/store.js";
import { EventConsumer } from "../consumer.js";
import type { EventDispatcher } from "../dispatcher.js";
import { EventRelay, type RelayOptions } from "../relay.js";
import { TenantNames } from "../tenant-names.js";
import type { Broker } from "./broker.js";
import { openBroker } from "./open.js";

const MAX_RETRY_MS = 10_000;

interface Opened {
  broker: Broker;
  relay: EventRelay;
}

export class EventBridge {
  private opened: Opened | null = null;
  private closing = false;

  constructor(
    private readonly deps: {
      url: string;
      /** This service's consumer group on the broker. */
      group: string;
      store: Store;
      dispatcher: EventDispatcher;
      logger: Logger;
      metrics: Metrics;
      now: () => number;
      relay: RelayOptions;
    },
  ) {
    // The store's lag, whichever node publishes, and while the broker is down too.
    deps.metrics.relayLag = async () => {
      const oldest = await deps.store.oldestUnpublished();
      return oldest === null ? null : Math.max(0, deps.now() - oldest);
    };
    // A kept event wakes the relay (once open).
    deps.dispatcher.onKept(() => this.opened?.relay.wake());
  }

  /** Open now, or (the broker down) go on trying in the background. */
  async start(delay = 500): Promise<void> {
    if (this.closing) return;
    try {
      const opened = await this.open();
      if (!this.closing) this.opened = opened;
      else await close(opened);
    } catch (error) {
      this.deps.logger.warn(
        { err: error, retryInMs: delay },
        "the event broker cannot be reached yet; events wait in the store",
      );
      setTimeout(() => void this.start(Math.min(delay * 2, MAX_RETRY_MS)), delay).unref();
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.opened) await close(this.opened);
    this.opened = null;
  }

  private async open(): Promise<Opened> {
    const { store, dispatcher, logger, metrics, now } = this.deps;
    const broker = await openBroker(this.deps.url, logger);
    const tenants = new TenantNames(store, now);
    const relay = new EventRelay({
      store,
      broker,
      tenants,
      logger: logger.child({ component: "event-relay" }),
      metrics,
      now,
      options: this.deps.relay,
    });
    relay.start();
    const consumer = new EventConsumer({
      store,
      broker,
      dispatcher,
      tenants,
      group: this.deps.group,
      logger: logger.child({ component: "event-consumer" }),
      metrics,
      now,
    });
    try {
      await consumer.start();
    } catch (error) {
      await close({ broker, relay });
      throw error;
    }
    return { broker, relay };
  }
}

async function close(opened: Opened): Promise<void> {
  await opened.relay.stop();
  await opened.broker.close();
}
