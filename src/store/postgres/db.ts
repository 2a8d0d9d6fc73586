import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Logger } from "pino";
import { EventHub } from "../shared/event-hub.js";
import type { JobRecord } from "../store.js";
import { PREPARED, SQL } from "./statements.js";

export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  connectionString: string;
  /** Schema holding Tessera's tables. @default "tessera" */
  schema?: string;
  /** Connections in the pool. @default 10 */
  poolSize?: number;
  /** Results larger than this are stored in 1 MiB chunks and streamed. @default 65536 */
  inlineResultBytes?: number;
  /** Apply pending migrations on `migrate()` / open. @default true */
  migrate?: boolean;
  /** LISTEN for other nodes' events. @default true */
  listen?: boolean;
  /**
   * Where the LISTEN connection goes. A LISTEN does not survive pgbouncer in transaction mode
   * (the next transaction may run on another server connection): give PostgreSQL's own address.
   * @default connectionString
   */
  listenConnectionString?: string;
  /**
   * Send the per-job statements as named prepared statements. Turn off behind pgbouncer in
   * transaction mode without `max_prepared_statements` (before 1.21, or that setting at 0).
   * @default true
   */
  preparedStatements?: boolean;
  logger?: Logger;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// bigint (int8) columns hold epoch milliseconds, well inside Number's safe range.
export const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * What every part of the PostgreSQL driver shares: the two pools, the schema, the notification
 * channel and this node's id in it, the events of this process, and `query`.
 */
export class PgDb {
  /** This node in notifications: its own are dropped by its listener. */
  readonly nodeId = randomUUID().slice(0, 8);
  readonly pool: pg.Pool;
  /**
   * Claims, heartbeats, progress and the rate counters have a small pool of their own, so a
   * burst of them never queues behind submits and completions (or the other way round).
   * Claims, heartbeats and progress commit without waiting for the WAL flush (ASYNC_COMMIT in
   * sql.ts); submits, completions and failures wait for it (P1, P4).
   */
  readonly leasePool: pg.Pool;
  readonly events = new EventHub();
  readonly schema: string;
  readonly channel: string;
  readonly inlineResultBytes: number;
  readonly logger: Logger | undefined;
  /** SQL with the schema filled in. */
  readonly t: (sql: string) => string;
  /**
   * The per-job statements (PREPARED) with the schema filled in once, and their prepared
   * statement's name unless prepared statements are off.
   */
  private readonly perJob = new Map<string, { text: string; name?: string }>();

  constructor(options: PostgresStoreOptions) {
    this.schema = options.schema ?? "tessera";
    if (!SCHEMA_NAME.test(this.schema)) throw new Error(`invalid schema name "${this.schema}"`);
    this.channel = `tessera_${this.schema}`;
    this.inlineResultBytes = options.inlineResultBytes ?? 65_536;
    this.logger = options.logger;
    this.t = (sql) => sql.replaceAll("{{s}}", this.schema);
    const prepare = options.preparedStatements ?? true;
    for (const key of PREPARED) {
      const text = this.t(SQL[key]);
      this.perJob.set(SQL[key], prepare ? { text, name: `tessera_${key}` } : { text });
    }
    const pool = (max: number) =>
      new pg.Pool({
        connectionString: options.connectionString,
        max,
        application_name: "tessera",
        types,
        connectionTimeoutMillis: 5000,
      });
    this.pool = pool(options.poolSize ?? 10);
    this.leasePool = pool(3);
    // An idle client's error (the server restarted) must not kill the process (pg-boss #365).
    for (const p of [this.pool, this.leasePool]) {
      p.on("error", (error) => options.logger?.warn({ err: error }, "idle PostgreSQL connection failed"));
    }
  }

  async query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    pool: pg.Pool = this.pool,
  ): Promise<R[]> {
    const perJob = this.perJob.get(sql);
    return (
      await pool.query<R>(perJob ? { ...perJob, values: params } : { text: this.t(sql), values: params })
    ).rows;
  }

  /**
   * After a commit: wake whoever waits on the job, the deliverer when a callback is owed, and
   * this node's dispatcher when a lifecycle event was kept (`lifecycle`; a completion's is
   * dispatched by its worker instead).
   */
  notifyTerminal(
    jobId: string,
    type: string,
    status: JobRecord["status"],
    hasCallback: boolean,
    lifecycle = false,
  ): void {
    this.events.emit({ kind: "terminal", jobId, type, status });
    if (hasCallback) this.events.emit({ kind: "outbox", at: Date.now() });
    if (lifecycle) this.events.emit({ kind: "events" });
  }

  /** Every queued type once: workers of those types claim again. */
  queued(types: Iterable<string>, runAt: number): void {
    for (const type of new Set(types)) this.events.emit({ kind: "queued", type, runAt });
  }
}
