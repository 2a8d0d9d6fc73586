/** Tenants on PostgreSQL: their rows, API keys and limits. */
import { randomUUID } from "node:crypto";
import { KEY_COLUMNS, lookedUpKey, toKey, type KeyRow, type KeyRowWithHash } from "../shared/rows.js";
import { limitsOf, limitUpdates, TENANT_COLUMNS, toTenant, type TenantRow } from "../shared/tenant-limits.js";
import type { ApiKeyRecord, Store, StoredApiKey, TenantLimits, TenantRecord } from "../store.js";
import type { PgDb } from "./db.js";

export class PgTenants {
  constructor(private readonly db: PgDb) {}

  async ensureTenant({ name, now }: { name: string; now: number }): Promise<string> {
    // When another transaction inserts the same name concurrently, ON CONFLICT waits for it and
    // does nothing, but this statement's snapshot predates that row: the SELECT finds nothing.
    // The next statement's snapshot sees it (READ COMMITTED).
    for (let attempt = 1; ; attempt++) {
      const [row] = await this.db.query<{ id: string }>(
        `WITH ins AS (INSERT INTO {{s}}.tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id)
         SELECT id FROM ins UNION ALL SELECT id FROM {{s}}.tenants WHERE name = $2`,
        [randomUUID(), name, now],
      );
      if (row) return row.id;
      if (attempt === 3) throw new Error(`tenant ${name} could be neither created nor read`);
    }
  }

  async createApiKey(params: Parameters<Store["createApiKey"]>[0]): Promise<ApiKeyRecord> {
    const tenantId = await this.ensureTenant({ name: params.tenantName, now: params.now });
    await this.db.query(
      `INSERT INTO {{s}}.api_keys (id, tenant_id, prefix, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [params.keyId, tenantId, params.prefix, params.hash, params.now, params.expiresAt ?? null],
    );
    const [row] = await this.db.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id WHERE k.id = $1`,
      [params.keyId],
    );
    return toKey(row!);
  }

  async lookupApiKey({ hash, now }: { hash: string; now: number }): Promise<StoredApiKey | null> {
    // Any state: authentication tells live, revoked and expired apart (for the audit log only).
    const [row] = await this.db.query<KeyRowWithHash>(
      `SELECT ${KEY_COLUMNS}, k.hash FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id WHERE k.hash = $1`,
      [hash],
    );
    if (!row) return null;
    const { key, touch } = lookedUpKey(row, now);
    if (touch) {
      void this.db
        .query(`UPDATE {{s}}.api_keys SET last_used_at = $1 WHERE id = $2`, [now, row.id])
        .catch(() => undefined);
    }
    return key;
  }

  async rotateApiKey(
    params: Parameters<Store["rotateApiKey"]>[0],
  ): Promise<{ previous: ApiKeyRecord; key: ApiKeyRecord } | null> {
    // One statement, so one transaction: shorten the live old key and insert the new one for
    // its tenant; neither happens when no live key matched.
    const [ids] = await this.db.query<{ previous: string; key: string }>(
      `WITH old AS (
         UPDATE {{s}}.api_keys
            SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $6::bigint THEN $6::bigint ELSE expires_at END
          WHERE id = (SELECT id FROM {{s}}.api_keys
                       WHERE (id = $1 OR prefix = $1) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $7::bigint)
                       LIMIT 1)
          RETURNING id, tenant_id
       ), ins AS (
         INSERT INTO {{s}}.api_keys (id, tenant_id, prefix, hash, created_at, expires_at)
         SELECT $2::text, tenant_id, $3::text, $4::text, $7::bigint, $5::bigint FROM old
         RETURNING id
       )
       SELECT old.id AS previous, ins.id AS key FROM old, ins`,
      [
        params.idOrPrefix,
        params.keyId,
        params.prefix,
        params.hash,
        params.expiresAt,
        params.overlapUntil,
        params.now,
      ],
    );
    if (!ids) return null;
    const rows = await this.db.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id WHERE k.id = ANY($1)`,
      [[ids.previous, ids.key]],
    );
    const byId = new Map(rows.map((row) => [row.id, toKey(row)]));
    return { previous: byId.get(ids.previous)!, key: byId.get(ids.key)! };
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.db.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM {{s}}.api_keys k JOIN {{s}}.tenants t ON t.id = k.tenant_id ORDER BY k.created_at`,
    );
    return rows.map(toKey);
  }

  async revokeApiKey({ idOrPrefix, now }: { idOrPrefix: string; now: number }): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE {{s}}.api_keys SET revoked_at = $1 WHERE (id = $2 OR prefix = $2) AND revoked_at IS NULL RETURNING id`,
      [now, idOrPrefix],
    );
    return rows.length > 0;
  }

  async listTenants(): Promise<TenantRecord[]> {
    const rows = await this.db.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM {{s}}.tenants ORDER BY name`);
    return rows.map(toTenant);
  }

  async tenantLimits({ tenantId }: { tenantId: string }): Promise<TenantLimits> {
    const [row] = await this.db.query<TenantRow>(
      `SELECT submit_rate, poll_rate, max_queued FROM {{s}}.tenants WHERE id = $1`,
      [tenantId],
    );
    return limitsOf(row);
  }

  async setTenantLimits(params: Parameters<Store["setTenantLimits"]>[0]): Promise<TenantRecord> {
    const id = await this.ensureTenant({ name: params.tenantName, now: params.now });
    const { columns, values } = limitUpdates(params.limits);
    const set = columns.map((c, i) => `${c} = $${i + 2}`).join(", ");
    const [row] = await this.db.query<TenantRow>(
      columns.length === 0
        ? `SELECT ${TENANT_COLUMNS} FROM {{s}}.tenants WHERE id = $1`
        : `UPDATE {{s}}.tenants SET ${set} WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
      [id, ...values],
    );
    return toTenant(row!);
  }

  async countQueued({ tenantId }: { tenantId: string }): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM {{s}}.jobs WHERE tenant_id = $1 AND waiting`,
      [tenantId],
    );
    return row!.n;
  }
}
