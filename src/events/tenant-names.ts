/**
 * Tenants' names, the identity a broker's subjects carry: a tenant's id is its own database's,
 * its name is what two services (two databases) agree on. Read from the store and kept; looked
 * up again, at most once a second, when a name or id is not known yet.
 */
import type { Store } from "../store/store.js";

const REFRESH_MS = 1_000;

export class TenantNames {
  private names = new Map<string, string>();
  private ids = new Map<string, string>();
  private refreshedAt = -Infinity;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** The tenant's name (its id when it has none this store knows of). */
  async nameOf(tenantId: string): Promise<string> {
    if (!this.names.has(tenantId)) await this.refresh();
    return this.names.get(tenantId) ?? tenantId;
  }

  /** The id of the tenant of that name in this store; null: none. */
  async idOf(name: string): Promise<string | null> {
    if (!this.ids.has(name)) await this.refresh();
    return this.ids.get(name) ?? null;
  }

  private refresh(): Promise<void> {
    if (this.now() - this.refreshedAt < REFRESH_MS) return Promise.resolve();
    this.refreshing ??= this.store
      .listTenants()
      .then((tenants) => {
        this.names = new Map(tenants.map((t) => [t.id, t.name]));
        this.ids = new Map(tenants.map((t) => [t.name, t.id]));
        this.refreshedAt = this.now();
      })
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }
}
