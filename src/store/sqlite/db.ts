import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import type { Database as Handle, Statement } from "better-sqlite3";
import type { JobStatus } from "../../jobs/states.js";
import { EventHub } from "../shared/event-hub.js";
import type { JobRow } from "../shared/rows.js";
import type { CallbackSpec } from "../store.js";
import { GroupCommit } from "./group-commit.js";
import { STATEMENTS } from "./statements.js";

export interface SqliteStoreOptions {
  /** Database file. @default "./.tessera/tessera.db" */
  path: string;
  /** Where results larger than `inlineResultBytes` are written. @default "<db dir>/blobs" */
  blobDir?: string;
  /** Results up to this size stay in the database. @default 65536 */
  inlineResultBytes?: number;
  /** Apply pending migrations on open. @default true */
  migrate?: boolean;
}

export type Statements = Record<keyof typeof STATEMENTS, Statement>;

/**
 * What every part of the SQLite driver shares: the connection, the group commit every write
 * goes through, the prepared statements, the blob folder and the events of this process.
 */
export class SqliteDb {
  readonly handle: Handle;
  readonly writes: GroupCommit;
  readonly events = new EventHub();
  readonly blobDir: string;
  readonly inlineResultBytes: number;
  /** Every statement of STATEMENTS, prepared on this connection (again after a migration). */
  sql!: Statements;

  constructor(options: SqliteStoreOptions) {
    mkdirSync(dirname(options.path), { recursive: true });
    this.blobDir = options.blobDir ?? join(dirname(options.path), "blobs");
    mkdirSync(this.blobDir, { recursive: true });
    this.inlineResultBytes = options.inlineResultBytes ?? 65_536;
    this.handle = new Database(options.path);
    this.handle.pragma("journal_mode = WAL");
    // FULL: a commit in WAL mode is fsync'd, so a 202 survives an OS crash or power loss (P1).
    this.handle.pragma("synchronous = FULL");
    // Several processes may share the file (a crashed worker's replacement, the CLI).
    this.handle.pragma("busy_timeout = 5000");
    this.handle.pragma("foreign_keys = ON");
    this.writes = new GroupCommit(this.handle);
  }

  prepare(): void {
    const entries = Object.entries(STATEMENTS).map(([name, sql]) => [name, this.handle.prepare(sql)]);
    this.sql = Object.fromEntries(entries) as Statements;
  }

  /** Every queued type once: workers of those types claim again. */
  queued(types: Iterable<string>, runAt: number): void {
    for (const type of new Set(types)) this.events.emit({ kind: "queued", type, runAt });
  }

  /**
   * After the commit: wake whoever waits on this job, the deliverer if a callback is owed, and
   * the dispatcher if a lifecycle event was kept (`lifecycle`).
   */
  afterTerminal(
    jobId: string,
    type: string,
    status: JobStatus,
    callback: CallbackSpec | null,
    now: number,
    lifecycle: boolean,
  ): void {
    this.events.emit({ kind: "terminal", jobId, type, status });
    if (callback) this.events.emit({ kind: "outbox", at: now });
    if (lifecycle) this.events.emit({ kind: "events" });
  }

  /**
   * `afterTerminal` for a moved row. A completion's lifecycle event is not announced: the worker
   * that completed the job dispatches it with the events its attempt emitted.
   */
  afterTerminalRow(row: JobRow, now: number, { completion = false } = {}): void {
    const callback = row.callback === null ? null : (JSON.parse(row.callback) as CallbackSpec);
    const lifecycle = !completion && (row.lifecycle_events === 1 || row.lifecycle_events === true);
    this.afterTerminal(row.id, row.type, row.status, callback, now, lifecycle);
  }
}
