import type { Database } from "better-sqlite3";

interface Pending {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for SQLite: every write enqueued during one turn of the event loop runs in a
 * single `BEGIN IMMEDIATE` transaction, and every caller is answered after that one commit.
 * With `synchronous=FULL` this turns N fsyncs into one. Each operation runs in its own
 * SAVEPOINT (better-sqlite3 nests transactions that way), so one failing operation rolls back
 * alone and rejects only its own caller.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly db: Database,
    /** Upper bound on operations per transaction, so one commit never stalls the loop long. */
    private readonly maxBatch = 1000,
  ) {}

  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    const batch = this.queue.splice(0, this.maxBatch);
    this.scheduled = this.queue.length > 0;
    if (this.scheduled) setImmediate(this.flush);

    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.db
        .transaction(() => {
          for (const item of batch) {
            try {
              outcomes.push({ ok: true, value: this.db.transaction(item.op)() });
            } catch (error) {
              outcomes.push({ ok: false, value: error });
            }
          }
        })
        .immediate();
    } catch (error) {
      // The commit itself failed (disk full, busy beyond the timeout): nothing was written.
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.value);
    });
  };
}
