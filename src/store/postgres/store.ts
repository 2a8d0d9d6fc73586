import { ComposedStore } from "../shared/composed-store.js";
import type { RateHit, StoreEvent } from "../store.js";
import { PgCallbacks } from "./callbacks.js";
import { PgClaims } from "./claims.js";
import { PgJobs } from "./jobs.js";
import { PgLeases } from "./leases.js";
import { PgRateLimits } from "./rate-limits.js";
import { PgResults } from "./results.js";
import { PgRetention } from "./retention.js";
import { PgTenants } from "./tenants.js";
import { PgDb, types, type PostgresStoreOptions } from "./db.js";
import { PgListener } from "./listener.js";
import { PgEvents } from "./events.js";
import { PgRelay } from "./relay.js";
import { PgSagas } from "./sagas.js";
import { PgSubscriptions } from "./subscriptions.js";
import { migratePostgres } from "./migrate.js";

export type { PostgresStoreOptions } from "./db.js";

/**
 * The PostgreSQL store: many API and worker nodes around one database. Claims use
 * `FOR UPDATE SKIP LOCKED`; a worker's completions of one turn (`completeMany`), and the
 * progress reports and heartbeats of one turn, share one statement (`… FROM unnest(…)`);
 * every committed change that another node may wait for is announced with `pg_notify` in the
 * same statement (a success only if a request waits for it: see `watch`), and relayed to this
 * process's listeners by `PgListener`. Each concern lives in a file of its own beside its SQL
 * (see ComposedStore); this class puts them together and owns the connections.
 */
export class PostgresStore extends ComposedStore {
  private readonly db: PgDb;
  private readonly listener: PgListener | null;
  private readonly rates: PgRateLimits;

  constructor(private readonly options: PostgresStoreOptions) {
    const db = new PgDb(options);
    const leases = new PgLeases(db);
    const results = new PgResults(db);
    const tenants = new PgTenants(db);
    super({
      jobs: new PgJobs(db, leases),
      results,
      claims: new PgClaims(db, results, leases),
      leases,
      retention: new PgRetention(db),
      callbacks: new PgCallbacks(db, tenants),
      tenants,
      sagas: new PgSagas(db),
      events: new PgEvents(db),
      relay: new PgRelay(db),
      subscriptions: new PgSubscriptions(db),
    });
    this.db = db;
    this.rates = new PgRateLimits(db);
    this.listener =
      options.listen === false
        ? null
        : new PgListener({
            connectionString: options.listenConnectionString ?? options.connectionString,
            channel: db.channel,
            types,
            ...(options.logger ? { logger: options.logger } : {}),
            self: db.nodeId,
            onEvent: (event) => db.events.emit(event),
            onReconnect: () => db.events.emit({ kind: "resync" }),
          });
  }

  /** This node's id in notifications. */
  get nodeId(): string {
    return this.db.nodeId;
  }

  // The pools, for tests that watch or break them.
  private get pool() {
    return this.db.pool;
  }

  private get leasePool() {
    return this.db.leasePool;
  }

  /** Migrate (unless disabled) and start listening. */
  async open(): Promise<this> {
    if (this.options.migrate ?? true) await this.migrate();
    await this.listener?.start();
    return this;
  }

  async migrate(): Promise<void> {
    await migratePostgres(this.pool, this.db.schema);
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.listener?.stop();
    await Promise.all([this.pool.end(), this.leasePool.end()]);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.db.events.subscribe(listener);
  }

  /** Drop the schema and everything in it (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.db.schema} CASCADE`);
  }

  hitRateCounter(hit: RateHit): Promise<number> {
    return this.rates.hitRateCounter(hit);
  }
}
