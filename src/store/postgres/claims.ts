/** Work on PostgreSQL: claims, progress, completions (batched, fenced) and failures. */
import { randomUUID } from "node:crypto";
import { PROGRESS_EVENT_INTERVAL_MS } from "../shared/outbox.js";
import { claimOrder, claimedJob, type ClaimRow } from "../shared/rows.js";
import { eventValues } from "../shared/events.js";
import type { CompleteParams, ClaimedJob, Lease, NewEvent, Store } from "../store.js";
import { Batcher } from "./batcher.js";
import { CLAIMS_SQL as SQL } from "./claims.sql.js";
import type { PgDb } from "./db.js";
import type { PgLeases } from "./leases.js";
import { arrayParam, byLeaseId } from "./params.js";
import type { PgResults, StoredColumns } from "./results.js";
import { isConnectionError, retryTransient } from "./transient.js";

/** Completions written by one statement at most (its arrays stay well below a megabyte). */
const MAX_BATCH = 1000;

export class PgClaims {
  private readonly progressWrites: Batcher<
    { lease: Lease; percent: number | null; message: string | null; now: number },
    boolean
  >;

  constructor(
    private readonly db: PgDb,
    private readonly results: PgResults,
    private readonly leases: PgLeases,
  ) {
    this.progressWrites = new Batcher((items) => this.progressMany(items));
  }

  async claim({
    types: jobTypes,
    limit,
    leaseMs,
    now,
  }: Parameters<Store["claim"]>[0]): Promise<ClaimedJob[]> {
    if (limit <= 0 || jobTypes.length === 0) return [];
    const token = randomUUID();
    let rows: ClaimRow[];
    try {
      rows = await this.db.query<ClaimRow>(
        SQL.claim,
        [token, now + leaseMs, now, jobTypes, limit],
        this.db.leasePool,
      );
    } catch (error) {
      // The claim may have committed with its answer lost: hand back whatever it took, so
      // those jobs run now rather than after their lease expires.
      if (isConnectionError(error)) void this.leases.releaseToken(token);
      throw error;
    }
    return rows.map((row) => claimedJob(row, token, now + leaseMs, now)).sort(claimOrder);
  }

  async nextRunAt({ types: jobTypes }: { types: string[] }): Promise<number | null> {
    const [row] = await this.db.query<{ run_at: number | null }>(
      `SELECT min(run_at) AS run_at FROM {{s}}.jobs WHERE waiting AND run_at > created_at AND type = ANY($1)`,
      [jobTypes],
    );
    return row?.run_at ?? null;
  }

  async progress(params: Parameters<Store["progress"]>[0]): Promise<boolean> {
    return this.progressWrites.add(params);
  }

  private async progressMany(
    items: { lease: Lease; percent: number | null; message: string | null; now: number }[],
  ): Promise<boolean[]> {
    const sorted = byLeaseId(items);
    const rows = await this.db.query<{ id: string; lease_token: string; wants_event: boolean }>(
      SQL.progress,
      [
        sorted.map((i) => i.lease.id),
        sorted.map((i) => i.lease.leaseToken),
        sorted.map((i) => i.percent),
        sorted.map((i) => i.message),
        this.db.channel,
        this.db.nodeId,
      ],
      this.db.leasePool,
    );
    for (const row of rows) this.db.events.emit({ kind: "progress", jobId: row.id });
    const applied = new Set(rows.map((r) => `${r.id}|${r.lease_token}`));
    const withEvents = rows.filter((r) => r.wants_event).map((r) => r.id);
    if (withEvents.length > 0) {
      const now = Math.max(...items.map((i) => i.now));
      await this.db.query(SQL.progressEvents, [withEvents, now, PROGRESS_EVENT_INTERVAL_MS]);
      this.db.events.emit({ kind: "outbox", at: now });
    }
    return items.map((i) => applied.has(`${i.lease.id}|${i.lease.leaseToken}`));
  }

  complete(params: CompleteParams): Promise<boolean> {
    return this.completeMany([params]).then((applied) => applied[0]!);
  }

  async completeMany(items: readonly CompleteParams[]): Promise<boolean[]> {
    // Most results are stored inline, in the completion's own row: no write of their own first.
    const columns = items.map((item) => this.results.inlineColumns(item.result));
    if (columns.includes(null)) {
      await Promise.all(
        items.map(async (item, i) => {
          columns[i] ??= await this.results.placeChunks(item.lease, item.result);
        }),
      );
    }
    const writes = items.map((item, i) => ({
      lease: item.lease,
      result: columns[i]!,
      now: item.now,
      outbox: item.hasCallback !== false,
      events: item.events,
      lifecycle: item.lifecycleEvents !== false,
    }));
    const applied: boolean[] = [];
    for (let i = 0; i < writes.length; i += MAX_BATCH) {
      // Each statement's jobs are announced as soon as it commits, whatever the next one does.
      const part = writes.slice(i, i + MAX_BATCH);
      const done = await this.completeBatch(part);
      const fenced: Lease[] = [];
      part.forEach(({ lease, result }, k) => {
        const completed = done[k];
        if (completed) this.db.notifyTerminal(lease.id, completed.type, "succeeded", completed.hasCallback);
        else if (result.chunked) fenced.push(lease);
        applied.push(Boolean(completed));
      });
      // Fenced: those attempts lost their leases; their chunks must not survive (retention
      // removes any this misses, with their job).
      for (const lease of fenced) await this.results.discardChunks(lease);
    }
    return applied;
  }

  /** One statement for the batch; tried again while the connection fails. */
  private async completeBatch(writes: CompletionWrite[]): Promise<(Completed | null)[]> {
    try {
      return await this.writeCompletions(writes);
    } catch (error) {
      // The lease fences the write, so trying again is safe; giving up would leave the jobs
      // running until their leases expire, and then run them again.
      return retryTransient(
        async () => {
          const done = await this.writeCompletions(writes);
          // Nothing to update: did an earlier try commit before its answer was lost?
          return Promise.all(done.map((d, i) => d ?? this.completedBy(writes[i]!)));
        },
        { error },
      );
    }
  }

  /** After a lost answer: the job as this attempt completed it, or null if it did not. */
  private async completedBy({ lease, result: columns, events }: CompletionWrite): Promise<Completed | null> {
    const [row] = await this.db.query<{
      type: string;
      status: string;
      result_location: string | null;
      has_callback: boolean;
    }>(
      `SELECT type, status, result_location, callback IS NOT NULL AS has_callback FROM {{s}}.jobs WHERE id = $1`,
      [lease.id],
    );
    if (row?.status !== "succeeded") return null;
    // Chunked results name their attempt; inline ones cannot tell, and another attempt can only
    // have won if this one's lease was lost, in which case its result was discarded either way.
    if (columns.chunked && row.result_location !== lease.leaseToken) return null;
    // An attempt that emitted can tell: its events (their ids name it) went in the same commit.
    const first = events?.[0];
    if (first) {
      const kept = await this.db.query(`SELECT 1 FROM {{s}}.events WHERE tenant_id = $1 AND id = $2`, [
        first.tenantId,
        first.id,
      ]);
      if (kept.length === 0) return null;
    }
    return { type: row.type, hasCallback: row.has_callback };
  }

  private async writeCompletions(writes: CompletionWrite[]): Promise<(Completed | null)[]> {
    // A batch of jobs without callbacks skips the outbox CTEs (a fifth of the database's work).
    const sorted = byLeaseId(writes);
    // The batch's distinct lease tokens (most often one: a claim's), each job naming its own.
    const tokens: string[] = [];
    const tokenIndex = new Map<string, number>();
    const indexes = sorted.map(({ lease }) => {
      let index = tokenIndex.get(lease.leaseToken);
      if (index === undefined) {
        index = tokens.push(lease.leaseToken);
        tokenIndex.set(lease.leaseToken, index);
      }
      return index;
    });
    const emitted: { jobId: string; event: NewEvent; now: number }[] = [];
    for (const w of sorted)
      if (w.events) for (const event of w.events) emitted.push({ jobId: w.lease.id, event, now: w.now });
    // Jobs submitted without lifecycle events (the worker says so) keep the statements without them.
    const lifecycle = writes.some((w) => w.lifecycle);
    const rows = await this.db.query<{ id: string; type: string; t: number; has_callback: boolean }>(
      lifecycle
        ? SQL.completeManyWithLifecycle
        : emitted.length > 0
          ? SQL.completeManyWithEvents
          : writes.some((w) => w.outbox)
            ? SQL.completeMany
            : SQL.completeManyLean,
      [
        arrayParam(sorted.map((w) => w.lease.id)),
        arrayParam(indexes),
        arrayParam(sorted.map((w) => (w.result.kind === "none" ? null : w.result.kind))),
        arrayParam(sorted.map((w) => w.result.contentType)),
        arrayParam(sorted.map((w) => w.result.data)),
        arrayParam(sorted.map((w) => w.result.location)),
        arrayParam(sorted.map((w) => w.result.size)),
        arrayParam(sorted.map((w) => w.now)),
        this.db.channel,
        this.db.nodeId,
        arrayParam(tokens),
        ...(emitted.length > 0 || lifecycle ? eventColumns(emitted) : []),
      ],
    );
    const done = new Map(rows.map((r) => [r.id, r]));
    return writes.map(({ lease }) => {
      const row = done.get(lease.id);
      return row && tokens[row.t - 1] === lease.leaseToken
        ? { type: row.type, hasCallback: row.has_callback }
        : null;
    });
  }

  async fail({ lease, error, retryAt, now }: Parameters<Store["fail"]>[0]): Promise<boolean> {
    const params = [
      lease.id,
      lease.leaseToken,
      retryAt === null ? now : retryAt,
      JSON.stringify(error),
      this.db.channel,
      this.db.nodeId,
    ];
    // As in complete: fenced by the lease (a retry after a lost answer finds nothing to update
    // and reports false).
    const [row] = await retryTransient(() =>
      this.db.query<{ type: string; callback?: string | null; lifecycle_events?: boolean }>(
        retryAt === null ? SQL.failFinal : SQL.failRetry,
        params,
      ),
    );
    if (!row) return false;
    if (retryAt === null)
      this.db.notifyTerminal(
        lease.id,
        row.type,
        "failed",
        (row.callback ?? null) !== null,
        row.lifecycle_events === true,
      );
    else this.db.events.emit({ kind: "queued", type: row.type, runAt: retryAt });
    return true;
  }
}

/** A completion on its way to the statement. */
interface CompletionWrite {
  lease: Lease;
  result: StoredColumns;
  now: number;
  /** The job may have a callback: write the outbox event its terminal move owes. */
  outbox: boolean;
  /** Events its attempt emitted, kept in the same statement. */
  events: readonly NewEvent[] | undefined;
  /** The job may have asked for lifecycle events: the statement that appends them. */
  lifecycle: boolean;
}

/** What a completion's statement reports of a completed job. */
interface Completed {
  type: string;
  hasCallback: boolean;
}

/** The emitted events of a batch as the columns of completeManyWithEvents ($12-$24). */
function eventColumns(emitted: { jobId: string; event: NewEvent; now: number }[]): unknown[] {
  const values = emitted.map(({ event, now }) => eventValues(event, now));
  return [emitted.map((e) => e.jobId), ...Array.from({ length: 12 }, (_, k) => values.map((v) => v[k]))];
}
