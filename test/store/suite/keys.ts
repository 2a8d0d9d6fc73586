import { describe, expect, it, vi } from "vitest";
import { T0, type SuiteContext } from "./context.js";

/** Tenants and API keys: the store only ever sees a key's id, prefix and hash. */
export function describeKeys(ctx: SuiteContext): void {
  const create = (n: number, tenantName = "acme", now = T0) =>
    ctx.store.createApiKey({ tenantName, keyId: `key-${n}`, prefix: `tsk_p${n}`, hash: `hash-${n}`, now });

  describe("API keys", () => {
    it("creates a key for a tenant, creating the tenant when missing", async () => {
      const key = await create(1);
      expect(key).toEqual({
        id: "key-1",
        tenantId: await ctx.store.ensureTenant({ name: "acme", now: T0 + 1 }),
        tenantName: "acme",
        prefix: "tsk_p1",
        createdAt: T0,
        revokedAt: null,
        lastUsedAt: null,
      });
      const second = await create(2);
      expect(second.tenantId).toBe(key.tenantId);
      const other = await create(3, "globex");
      expect(other.tenantId).not.toBe(key.tenantId);
    });

    it("finds a live key by its hash and touches its last-used time", async () => {
      const key = await create(1);
      expect(await ctx.store.findApiKey({ hash: "hash-unknown", now: T0 })).toBeNull();
      const found = await ctx.store.findApiKey({ hash: "hash-1", now: T0 + 5000 });
      expect(found).toMatchObject({
        id: key.id,
        tenantId: key.tenantId,
        tenantName: "acme",
        prefix: "tsk_p1",
      });
      // Touching last-used is advisory and may happen after the answer.
      await vi.waitFor(async () => {
        const [listed] = await ctx.store.listApiKeys();
        expect(listed?.lastUsedAt).toBe(T0 + 5000);
      });
    });

    it("lists every key, revoked ones included", async () => {
      await create(1);
      await create(2, "globex");
      await ctx.store.revokeApiKey({ idOrPrefix: "key-2", now: T0 + 1 });
      const keys = await ctx.store.listApiKeys();
      expect(keys.map((k) => [k.id, k.tenantName, k.revokedAt]).sort()).toEqual([
        ["key-1", "acme", null],
        ["key-2", "globex", T0 + 1],
      ]);
    });

    it("revokes by id or by prefix; a revoked key is not found", async () => {
      await create(1);
      await create(2);
      expect(await ctx.store.revokeApiKey({ idOrPrefix: "key-1", now: T0 + 1 })).toBe(true);
      expect(await ctx.store.revokeApiKey({ idOrPrefix: "tsk_p2", now: T0 + 2 })).toBe(true);
      expect(await ctx.store.findApiKey({ hash: "hash-1", now: T0 + 3 })).toBeNull();
      expect(await ctx.store.findApiKey({ hash: "hash-2", now: T0 + 3 })).toBeNull();

      expect(await ctx.store.revokeApiKey({ idOrPrefix: "key-1", now: T0 + 4 })).toBe(false);
      expect(await ctx.store.revokeApiKey({ idOrPrefix: "no-such-key", now: T0 + 4 })).toBe(false);
      const revokedAt = (await ctx.store.listApiKeys()).map((k) => k.revokedAt).sort();
      expect(revokedAt).toEqual([T0 + 1, T0 + 2]);
    });

    it("revoking one key leaves the tenant's other keys working", async () => {
      await create(1);
      await create(2);
      await ctx.store.revokeApiKey({ idOrPrefix: "key-1", now: T0 + 1 });
      expect(await ctx.store.findApiKey({ hash: "hash-2", now: T0 + 2 })).toMatchObject({ id: "key-2" });
    });
  });

  describe("ensureTenant", () => {
    it("returns the same id for the same name, even when called concurrently", async () => {
      const ids = await Promise.all(
        [1, 2, 3].map((i) => ctx.store.ensureTenant({ name: "acme", now: T0 + i })),
      );
      expect(new Set(ids).size).toBe(1);
      expect(await ctx.store.ensureTenant({ name: "acme", now: T0 + 10 })).toBe(ids[0]);
      expect(await ctx.store.ensureTenant({ name: "globex", now: T0 })).not.toBe(ids[0]);
    });
  });
}
