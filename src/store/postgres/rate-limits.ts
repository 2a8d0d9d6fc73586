/** Rate-limit counters on PostgreSQL, shared by every node: the hits of one turn in one statement. */
import type { RateHit } from "../store.js";
import { Batcher } from "./batcher.js";
import type { PgDb } from "./db.js";

export class PgRateLimits {
  constructor(private readonly db: PgDb) {}

  private readonly rateHits = new Batcher<RateHit, number>((hits) => this.rateHitMany(hits));

  private rateCountersPurgedAt = 0;

  hitRateCounter(hit: RateHit): Promise<number> {
    return this.rateHits.add(hit);
  }

  /**
   * The hits of one event-loop turn in one statement (one round trip), on the pool that does
   * not wait for the WAL flush: a lost count merely forgives a request. Each hit gets the
   * counter's value as it was right after that hit (the batch is applied in order).
   */
  private async rateHitMany(hits: RateHit[]): Promise<number[]> {
    const group = new Map<string, { key: string; windowStart: number; n: number; expiresAt: number }>();
    for (const h of hits) {
      const id = `${h.windowStart}|${h.key}`;
      const g = group.get(id);
      if (g) {
        g.n++;
        g.expiresAt = Math.max(g.expiresAt, h.expiresAt);
      } else group.set(id, { key: h.key, windowStart: h.windowStart, n: 1, expiresAt: h.expiresAt });
    }
    const groups = [...group.values()];
    const rows = await this.db.query<{ key: string; window_start: string | number; hits: number }>(
      `INSERT INTO {{s}}.rate_counters AS c (key, window_start, hits, expires_at)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[])
       ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + excluded.hits
       RETURNING key, window_start, hits`,
      [
        groups.map((g) => g.key),
        groups.map((g) => g.windowStart),
        groups.map((g) => g.n),
        groups.map((g) => g.expiresAt),
      ],
      this.db.leasePool,
    );
    // The total after the batch; hand it out backwards so each hit sees its own position.
    const after = new Map(rows.map((r) => [`${Number(r.window_start)}|${r.key}`, r.hits]));
    const out = new Array<number>(hits.length);
    for (let i = hits.length - 1; i >= 0; i--) {
      const id = `${hits[i]!.windowStart}|${hits[i]!.key}`;
      const value = after.get(id) ?? 0;
      out[i] = value;
      after.set(id, value - 1);
    }
    const now = Date.now();
    if (now - this.rateCountersPurgedAt > 60_000) {
      this.rateCountersPurgedAt = now;
      void this.db
        .query(`DELETE FROM {{s}}.rate_counters WHERE expires_at < $1`, [now], this.db.leasePool)
        .catch(() => undefined);
    }
    return out;
  }
}
