import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isJobId, isJobIdOf, jobIdTime, newJobId, tenantIdRange } from "../../src/jobs/ids.js";
import { BASE32 } from "../helpers/ids.js";

const TENANT = "3f1c9a2e-5b7d-4e80-9a61-0c2b4d6f8e13";

describe("job ids", () => {
  it("are job_, the tenant's 8 digits, 10 time digits and 26 random ones, and carry their creation time", () => {
    const now = Date.parse("2026-11-24T09:30:00.123Z");
    const id = newJobId(now, TENANT);
    expect(id).toMatch(/^job_[0-9a-hjkmnp-tv-z]{44}$/);
    expect(jobIdTime(id)).toBe(now);
    expect(jobIdTime(newJobId(0, TENANT))).toBe(0);
    // 50 bits of milliseconds: good for the next 35,000 years.
    expect(jobIdTime(newJobId(2 ** 50 - 1, TENANT))).toBe(2 ** 50 - 1);
    // A time it cannot carry is refused, not written as a broken or wrapped id.
    for (const bad of [-1, 2 ** 50, Number.NaN, Infinity])
      expect(() => newJobId(bad, TENANT)).toThrow(RangeError);
  });

  it("of one tenant share its code, and fall in its range of ids and no other's", () => {
    const tenants = [TENANT, "tenant-b", "", "ü", ...Array.from({ length: 200 }, (_, i) => `t${i}`)];
    const codes = new Set(tenants.map((t) => newJobId(1, t).slice(4, 12)));
    expect(codes.size).toBe(tenants.length); // no two of these tenants share a code
    for (const tenant of tenants) {
      const id = newJobId(Date.now(), tenant);
      expect(id.slice(0, 12)).toBe(newJobId(0, tenant).slice(0, 12)); // the code does not depend on the time
      expect(isJobIdOf(id, tenant)).toBe(true);
      const { first, last } = tenantIdRange(tenant);
      expect(first < id && id < last).toBe(true);
      expect(first <= newJobId(0, tenant) && newJobId(2 ** 50 - 1, tenant) <= last).toBe(true);
    }
    // Made for another tenant, or of another form: not this tenant's.
    const other = newJobId(Date.now(), "tenant-b");
    expect(isJobIdOf(other, TENANT)).toBe(false);
    const { first, last } = tenantIdRange(TENANT);
    expect(first <= other && other <= last).toBe(false);
    expect(isJobIdOf(randomUUID(), TENANT)).toBe(false);
    expect(isJobIdOf(`${newJobId(Date.now(), TENANT)}0`, TENANT)).toBe(false);
  });

  it("sort by creation time within a tenant, whatever their random part", () => {
    const times = Array.from({ length: 2000 }, (_, i) => 1_700_000_000_000 + i * 37 + (i % 3));
    const ids = times.map((t) => newJobId(t, TENANT));
    // Byte order (PostgreSQL's "C" collation, SQLite's BINARY) and the locale's order agree.
    expect([...ids].sort()).toEqual(ids);
    expect([...ids].sort((a, b) => a.localeCompare(b))).toEqual(ids);
  });

  it("made in the same millisecond differ in 130 random bits", () => {
    const ids = Array.from({ length: 10_000 }, () => newJobId(1_700_000_000_000, TENANT));
    expect(new Set(ids).size).toBe(ids.length);
    // Every bit of the random part takes both values about equally often (no fixed bits).
    const ones = new Array<number>(130).fill(0);
    for (const id of ids) {
      const random = id.slice(-26);
      for (let d = 0; d < 26; d++) {
        const value = BASE32.indexOf(random[d]!);
        for (let b = 0; b < 5; b++) if ((value >> (4 - b)) & 1) ones[d * 5 + b]!++;
      }
    }
    for (const n of ones) {
      expect(n).toBeGreaterThan(5000 - 7 * 50);
      expect(n).toBeLessThan(5000 + 7 * 50);
    }
  });

  it("are recognised, as are the UUIDv4s of jobs created before; nothing else is", () => {
    expect(isJobId(newJobId(Date.now(), TENANT))).toBe(true);
    expect(isJobId(randomUUID())).toBe(true);
    for (const bad of [
      "",
      "job_",
      `${newJobId(Date.now(), TENANT)}x`,
      newJobId(Date.now(), TENANT).slice(0, -1),
      newJobId(Date.now(), TENANT).toUpperCase(),
      newJobId(Date.now(), TENANT).replace(/.$/, "u"), // not a Crockford digit
      newJobId(Date.now(), TENANT).replace("job_", "jab_"),
      `job_${"0".repeat(36)}`, // the form of an unreleased build, without a tenant code
      randomUUID().toUpperCase(),
      randomUUID().replace(/^(.{14})4/, "$17"), // a UUIDv7 is not an id this server made
      "../../etc/passwd",
      `job_${"0".repeat(43)}\n`,
    ])
      expect(isJobId(bad), bad).toBe(false);
  });
});
