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
        expiresAt: null,
      });
      const second = await create(2);
      expect(second.tenantId).toBe(key.tenantId);
      const other = await create(3, "globex");
      expect(other.tenantId).not.toBe(key.tenantId);
    });

    it("finds a live key by its hash and touches its last-used time", async () => {
      const key = await create(1);
      expect(await ctx.store.lookupApiKey({ hash: "hash-unknown", now: T0 })).toBeNull();
      const found = await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 5000 });
      expect(found).toMatchObject({
        id: key.id,
        tenantId: key.tenantId,
        tenantName: "acme",
        prefix: "tsk_p1",
        hash: "hash-1",
        state: "live",
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
      expect((await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 3 }))?.state).toBe("revoked");
      expect((await ctx.store.lookupApiKey({ hash: "hash-2", now: T0 + 3 }))?.state).toBe("revoked");

      expect(await ctx.store.revokeApiKey({ idOrPrefix: "key-1", now: T0 + 4 })).toBe(false);
      expect(await ctx.store.revokeApiKey({ idOrPrefix: "no-such-key", now: T0 + 4 })).toBe(false);
      const revokedAt = (await ctx.store.listApiKeys()).map((k) => k.revokedAt).sort();
      expect(revokedAt).toEqual([T0 + 1, T0 + 2]);
    });

    it("revoking one key leaves the tenant's other keys working", async () => {
      await create(1);
      await create(2);
      await ctx.store.revokeApiKey({ idOrPrefix: "key-1", now: T0 + 1 });
      expect(await ctx.store.lookupApiKey({ hash: "hash-2", now: T0 + 2 })).toMatchObject({
        id: "key-2",
        state: "live",
      });
    });

    it("a key with an expiry is live until then and expired from then on, untouched", async () => {
      const key = await ctx.store.createApiKey({
        tenantName: "acme",
        keyId: "key-1",
        prefix: "tsk_p1",
        hash: "hash-1",
        now: T0,
        expiresAt: T0 + 60_000,
      });
      expect(key.expiresAt).toBe(T0 + 60_000);
      expect((await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 59_999 }))?.state).toBe("live");
      await vi.waitFor(async () => {
        expect((await ctx.store.listApiKeys())[0]?.lastUsedAt).toBe(T0 + 59_999);
      });
      expect((await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 3 * 60_000 }))?.state).toBe("expired");
      // A refused key's last-used time is not moved.
      await new Promise((r) => setTimeout(r, 50));
      expect((await ctx.store.listApiKeys())[0]?.lastUsedAt).toBe(T0 + 59_999);
      // Revoked wins over expired.
      await ctx.store.revokeApiKey({ idOrPrefix: "key-1", now: T0 + 4 * 60_000 });
      expect((await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 5 * 60_000 }))?.state).toBe("revoked");
    });

    it("touches last-used at most once a minute", async () => {
      await create(1);
      await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 1000 });
      await vi.waitFor(async () => expect((await ctx.store.listApiKeys())[0]?.lastUsedAt).toBe(T0 + 1000));
      await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 30_000 });
      await new Promise((r) => setTimeout(r, 50));
      expect((await ctx.store.listApiKeys())[0]?.lastUsedAt).toBe(T0 + 1000);
      await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 62_000 });
      await vi.waitFor(async () => expect((await ctx.store.listApiKeys())[0]?.lastUsedAt).toBe(T0 + 62_000));
    });

    describe("rotation", () => {
      const rotate = (
        idOrPrefix: string,
        now: number,
        overlapUntil: number,
        expiresAt: number | null = null,
      ) =>
        ctx.store.rotateApiKey({
          idOrPrefix,
          keyId: "key-new",
          prefix: "tsk_pnew",
          hash: "hash-new",
          expiresAt,
          overlapUntil,
          now,
        });

      it("issues a key for the same tenant and sets the old key's expiry to the overlap's end", async () => {
        const old = await create(1);
        const rotated = await rotate("tsk_p1", T0 + 10, T0 + 1000, T0 + 99_000);
        expect(rotated?.previous).toMatchObject({ id: "key-1", expiresAt: T0 + 1000, revokedAt: null });
        expect(rotated?.key).toMatchObject({
          id: "key-new",
          tenantId: old.tenantId,
          tenantName: "acme",
          prefix: "tsk_pnew",
          createdAt: T0 + 10,
          expiresAt: T0 + 99_000,
        });
        // Both authenticate during the overlap; only the new one after it.
        expect((await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 999 }))?.state).toBe("live");
        expect((await ctx.store.lookupApiKey({ hash: "hash-new", now: T0 + 999 }))?.state).toBe("live");
        expect((await ctx.store.lookupApiKey({ hash: "hash-1", now: T0 + 1000 }))?.state).toBe("expired");
        expect((await ctx.store.lookupApiKey({ hash: "hash-new", now: T0 + 1000 }))?.state).toBe("live");
      });

      it("keeps an earlier expiry of the old key", async () => {
        await ctx.store.createApiKey({
          tenantName: "acme",
          keyId: "key-1",
          prefix: "tsk_p1",
          hash: "hash-1",
          now: T0,
          expiresAt: T0 + 500,
        });
        expect((await rotate("key-1", T0 + 10, T0 + 1000))?.previous.expiresAt).toBe(T0 + 500);
      });

      it("refuses an unknown, revoked or expired key and changes nothing", async () => {
        await create(1);
        await create(2);
        await ctx.store.revokeApiKey({ idOrPrefix: "key-2", now: T0 + 1 });
        await ctx.store.createApiKey({
          tenantName: "acme",
          keyId: "key-3",
          prefix: "tsk_p3",
          hash: "hash-3",
          now: T0,
          expiresAt: T0 + 5,
        });
        expect(await rotate("no-such-key", T0 + 10, T0 + 1000)).toBeNull();
        expect(await rotate("key-2", T0 + 10, T0 + 1000)).toBeNull();
        expect(await rotate("tsk_p3", T0 + 10, T0 + 1000)).toBeNull();
        const keys = await ctx.store.listApiKeys();
        expect(keys.map((k) => k.id).sort()).toEqual(["key-1", "key-2", "key-3"]);
        expect(keys.find((k) => k.id === "key-1")?.expiresAt).toBeNull();
      });
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
