import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isJobId, jobIdTime, newJobId } from "../../src/jobs/ids.js";
import { BASE32 } from "../helpers/ids.js";

describe("job ids", () => {
  it("are job_, 10 time digits and 26 random ones, and carry their creation time", () => {
    const now = Date.parse("2026-11-24T09:30:00.123Z");
    const id = newJobId(now);
    expect(id).toMatch(/^job_[0-9a-hjkmnp-tv-z]{36}$/);
    expect(jobIdTime(id)).toBe(now);
    expect(jobIdTime(newJobId(0))).toBe(0);
    // 50 bits of milliseconds: good for the next 35,000 years.
    expect(jobIdTime(newJobId(2 ** 50 - 1))).toBe(2 ** 50 - 1);
    // A time it cannot carry is refused, not written as a broken or wrapped id.
    for (const bad of [-1, 2 ** 50, Number.NaN, Infinity]) expect(() => newJobId(bad)).toThrow(RangeError);
  });

  it("sort by creation time, whatever their random part", () => {
    const times = Array.from({ length: 2000 }, (_, i) => 1_700_000_000_000 + i * 37 + (i % 3));
    const ids = times.map((t) => newJobId(t));
    // Byte order (PostgreSQL's "C" collation, SQLite's BINARY) and the locale's order agree.
    expect([...ids].sort()).toEqual(ids);
    expect([...ids].sort((a, b) => a.localeCompare(b))).toEqual(ids);
  });

  it("made in the same millisecond differ in 130 random bits", () => {
    const ids = Array.from({ length: 10_000 }, () => newJobId(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    // Every bit of the random part takes both values about equally often (no fixed bits).
    const ones = new Array<number>(130).fill(0);
    for (const id of ids) {
      const random = id.slice(14);
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
    expect(isJobId(newJobId(Date.now()))).toBe(true);
    expect(isJobId(randomUUID())).toBe(true);
    for (const bad of [
      "",
      "job_",
      `${newJobId(Date.now())}x`,
      newJobId(Date.now()).toUpperCase(),
      newJobId(Date.now()).replace(/.$/, "u"), // not a Crockford digit
      newJobId(Date.now()).replace("job_", "jab_"),
      randomUUID().toUpperCase(),
      randomUUID().replace(/^(.{14})4/, "$17"), // a UUIDv7 is not an id this server made
      "../../etc/passwd",
      `job_${"0".repeat(35)}\n`,
    ])
      expect(isJobId(bad), bad).toBe(false);
  });
});
