/** The outbox rows a move owes on SQLite, written inside the move's own transaction. */
import { lifecycleEvent, type TerminalStatus } from "../../events/lifecycle.js";
import { eventValues } from "../shared/events.js";
import { EVENT_OF_STATUS, newEventId, PROGRESS_EVENT_INTERVAL_MS, wantsEvent } from "../shared/outbox.js";
import { toJob, type JobRow } from "../shared/rows.js";
import type { CallbackSpec } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteOutbox {
  constructor(private readonly db: SqliteDb) {}

  /**
   * Inside a write: what a terminal move owes, in the same transaction: its callback event, and
   * its lifecycle event if the job was submitted with `lifecycleEvents`.
   */
  write(row: JobRow, now: number): void {
    if ((row.lifecycle_events === 1 || row.lifecycle_events === true) && EVENT_OF_STATUS[row.status]) {
      // One per job (its id names the status): a second terminal move would be a bug, kept out.
      const event = lifecycleEvent(toJob(row), row.status as TerminalStatus, row.finished_at ?? now);
      this.db.sql.appendEvent.get(...eventValues(event, now));
    }
    if (row.callback === null) return;
    const callback = JSON.parse(row.callback) as CallbackSpec;
    const event = EVENT_OF_STATUS[row.status];
    this.db.sql.dropPendingProgress.run(row.id); // no progress event may follow the terminal one
    if (!event || !wantsEvent(callback, event)) return;
    this.db.sql.insertOutbox.run(
      newEventId(),
      row.id,
      row.tenant_id,
      event,
      callback.url,
      now,
      JSON.stringify(row),
      now,
    );
  }

  /** Inside a write: a coalesced progress event, at most one a second per job (latest state wins). */
  writeProgress(row: JobRow, now: number): void {
    if (row.callback === null) return;
    const callback = JSON.parse(row.callback) as CallbackSpec;
    if (!(callback.events ?? []).includes("job.progress")) return;
    const pending = this.db.sql.pendingProgress.get(row.id) as { id: string } | undefined;
    if (pending) {
      this.db.sql.refreshProgress.run(JSON.stringify(row), now, pending.id);
      return;
    }
    const last = (this.db.sql.lastProgress.get(row.id) as { at: number | null }).at;
    const due = last === null ? now : Math.max(now, last + PROGRESS_EVENT_INTERVAL_MS);
    this.db.sql.insertOutbox.run(
      newEventId(),
      row.id,
      row.tenant_id,
      "job.progress",
      callback.url,
      now,
      JSON.stringify(row),
      due,
    );
  }
}
