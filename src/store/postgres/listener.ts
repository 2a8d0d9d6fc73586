import pg from "pg";
import type { Logger } from "pino";
import { isJobStatus } from "../../jobs/states.js";
import type { StoreEvent } from "../store.js";

const MAX_BACKOFF_MS = 5000;

/**
 * One dedicated connection per process that LISTENs for other nodes' notifications and turns
 * them into store events. Notifications sent while it is disconnected are lost, so after every
 * reconnect it announces `resync`: workers claim, waits re-check (and the fallback polls cover
 * the rest). It never lets a connection error escape: the process must survive the database.
 */
export class PgListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private backoffMs = 100;
  private timer: NodeJS.Timeout | null = null;
  private connectedOnce = false;

  constructor(
    private readonly options: {
      connectionString: string;
      channel: string;
      types: pg.CustomTypesConfig;
      logger?: Logger;
      /** This node's id: its own notifications are dropped unparsed (it knew before sending). */
      self: string;
      onEvent: (event: StoreEvent) => void;
      onReconnect: () => void;
    },
  ) {}

  get connected(): boolean {
    return this.client !== null;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: "tessera-listener",
      types: this.options.types,
    });
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    // Every line of a payload comes from one statement, so one node: its first line says whose.
    const ownQueued = `q|${this.options.self}|`;
    const ownTerminal = `t|${this.options.self}|`;
    const ownProgress = `p|${this.options.self}|`;
    client.on("notification", (message) => {
      const payload = message.payload;
      if (message.channel !== this.options.channel || !payload) return;
      if ([ownQueued, ownTerminal, ownProgress].some((own) => payload.startsWith(own))) return;
      for (const line of payload.split("\n")) {
        const parsed = parsePayload(line);
        if (parsed) this.options.onEvent(parsed.event);
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.options.channel}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      this.retry(error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = 100;
    if (this.connectedOnce) this.options.onReconnect();
    this.connectedOnce = true;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client) return;
    this.client = null;
    client.end().catch(() => undefined);
    this.retry(error);
  }

  private retry(error: unknown): void {
    if (this.stopped) return;
    this.options.logger?.warn(
      { err: error, retryInMs: this.backoffMs },
      "LISTEN connection lost; reconnecting",
    );
    this.timer = setTimeout(() => void this.connect(), this.backoffMs);
    this.timer.unref();
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
  }
}

/** `q|node|type|runAt`, `t|node|jobId|status|type` or `p|node|jobId`. */
export function parsePayload(payload: string): { nodeId: string; event: StoreEvent } | null {
  const parts = payload.split("|");
  if (parts[0] === "q" && parts.length === 4) {
    const runAt = Number(parts[3]);
    if (!Number.isFinite(runAt)) return null;
    return { nodeId: parts[1]!, event: { kind: "queued", type: parts[2]!, runAt } };
  }
  if (parts[0] === "t" && parts.length === 5 && isJobStatus(parts[3])) {
    return {
      nodeId: parts[1]!,
      event: { kind: "terminal", jobId: parts[2]!, status: parts[3], type: parts[4]! },
    };
  }
  if (parts[0] === "p" && parts.length === 3)
    return { nodeId: parts[1]!, event: { kind: "progress", jobId: parts[2]! } };
  return null;
}
