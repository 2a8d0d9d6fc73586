/** Tenants on SQLite: their rows, API keys and limits. */
import { randomUUID } from "node:crypto";
import type { Statement } from "better-sqlite3";
import { lookedUpKey, toKey, type KeyRow, type KeyRowWithHash } from "../shared/rows.js";
import { limitsOf, limitUpdates, TENANT_COLUMNS, toTenant, type TenantRow } from "../shared/tenant-limits.js";
import type { ApiKeyRecord, StoredApiKey, Store, TenantLimits, TenantRecord } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteTenants {
  constructor(private readonly db: SqliteDb) {}

  async ensureTenant({ name, now }: { name: string; now: number }): Promise<string> {
    return this.db.writes.run(() => {
      const existing = this.db.sql.getTenant.get(name) as { id: string } | undefined;
      if (existing) return existing.id;
      const id = randomUUID();
      this.db.sql.insertTenant.run(id, name, now);
      return id;
    });
  }

  async createApiKey(params: Parameters<Store["createApiKey"]>[0]): Promise<ApiKeyRecord> {
    const tenantId = await this.ensureTenant({ name: params.tenantName, now: params.now });
    return this.db.writes.run(() => {
      this.db.sql.insertKey.run(
        params.keyId,
        tenantId,
        params.prefix,
        params.hash,
        params.now,
        params.expiresAt ?? null,
      );
      return toKey(this.db.sql.getKeyById.get(params.keyId) as KeyRow);
    });
  }

  async lookupApiKey({ hash, now }: { hash: string; now: number }): Promise<StoredApiKey | null> {
    const row = this.db.sql.getKeyByHash.get(hash) as KeyRowWithHash | undefined;
    if (!row) return null;
    const { key, touch } = lookedUpKey(row, now);
    if (touch) {
      void this.db.writes.run(() => this.db.sql.touchKey.run(now, row.id)).catch(() => undefined);
    }
    return key;
  }

  async rotateApiKey(
    params: Parameters<Store["rotateApiKey"]>[0],
  ): Promise<{ previous: ApiKeyRecord; key: ApiKeyRecord } | null> {
    return this.db.writes.run(() => {
      const old = this.db.sql.getLiveKey.get({ key: params.idOrPrefix, now: params.now }) as
        KeyRow | undefined;
      if (!old) return null;
      this.db.sql.insertKey.run(
        params.keyId,
        old.tenant_id,
        params.prefix,
        params.hash,
        params.now,
        params.expiresAt,
      );
      this.db.sql.shortenKey.run({ id: old.id, until: params.overlapUntil });
      return {
        previous: toKey(this.db.sql.getKeyById.get(old.id) as KeyRow),
        key: toKey(this.db.sql.getKeyById.get(params.keyId) as KeyRow),
      };
    });
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (this.db.sql.listKeys.all() as KeyRow[]).map(toKey);
  }

  async revokeApiKey({ idOrPrefix, now }: { idOrPrefix: string; now: number }): Promise<boolean> {
    return this.db.writes.run(() => this.db.sql.revokeKey.run(now, idOrPrefix, idOrPrefix).changes > 0);
  }

  private limitSql?: { list: Statement; limits: Statement; byName: Statement; queued: Statement };

  private get limitStatements() {
    this.limitSql ??= {
      list: this.db.handle.prepare(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY name`),
      limits: this.db.handle.prepare(`SELECT submit_rate, poll_rate, max_queued FROM tenants WHERE id = ?`),
      byName: this.db.handle.prepare(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE name = ?`),
      queued: this.db.handle.prepare(
        `SELECT count(*) AS n FROM jobs WHERE tenant_id = ? AND status = 'queued'`,
      ),
    };
    return this.limitSql;
  }

  async listTenants(): Promise<TenantRecord[]> {
    return (this.limitStatements.list.all() as TenantRow[]).map(toTenant);
  }

  async tenantLimits({ tenantId }: { tenantId: string }): Promise<TenantLimits> {
    const row = this.limitStatements.limits.get(tenantId) as TenantRow | undefined;
    return limitsOf(row);
  }

  async setTenantLimits(params: Parameters<Store["setTenantLimits"]>[0]): Promise<TenantRecord> {
    const id = await this.ensureTenant({ name: params.tenantName, now: params.now });
    const { columns, values } = limitUpdates(params.limits);
    if (columns.length > 0) {
      const set = columns.map((c) => `${c} = ?`).join(", ");
      await this.db.writes.run(() =>
        this.db.handle.prepare(`UPDATE tenants SET ${set} WHERE id = ?`).run(...values, id),
      );
    }
    return toTenant(this.limitStatements.byName.get(params.tenantName) as TenantRow);
  }

  async countQueued({ tenantId }: { tenantId: string }): Promise<number> {
    return (this.limitStatements.queued.get(tenantId) as { n: number }).n;
  }
}
