import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  checksumOf,
  generateApiKey,
  hashApiKey,
  hashesEqual,
  hasValidChecksum,
  isWellFormedKey,
  KEY_PATTERN,
  LEGACY_KEY_PATTERN,
  parseDuration,
} from "../../src/auth/api-keys.js";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A scanner's independent check: CRC32 of `tsk_` + body, base62, 6 characters, left-padded. */
function scannerChecksum(head: string): string {
  let n = crc32(head);
  let s = "";
  for (let i = 0; i < 6; i++) {
    s = BASE62[n % 62]! + s;
    n = Math.floor(n / 62);
  }
  return s;
}

describe("API key format", () => {
  it("is tsk_ + 43 base62 characters + a 6-character checksum, 53 in all", () => {
    const { key, prefix, hash, keyId } = generateApiKey();
    expect(key).toMatch(KEY_PATTERN);
    expect(key).toHaveLength(53);
    expect(key.startsWith("tsk_")).toBe(true);
    expect(prefix).toBe(key.slice(0, 12));
    expect(hash).toBe(hashApiKey(key));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(keyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(key.slice(-6)).toBe(scannerChecksum(key.slice(0, -6)));
  });

  it("every key is new and its characters cover the base62 alphabet", () => {
    const keys = Array.from({ length: 500 }, () => generateApiKey().key);
    expect(new Set(keys).size).toBe(keys.length);
    const seen = new Set(keys.flatMap((k) => [...k.slice(4, 47)]));
    expect(seen.size).toBe(62);
  });

  it("validates offline: a correct checksum passes, any one-character typo fails", () => {
    const { key } = generateApiKey();
    expect(hasValidChecksum(key)).toBe(true);
    expect(isWellFormedKey(key)).toBe(true);
    for (let i = 4; i < key.length; i++) {
      const replacement = key[i] === "a" ? "b" : "a";
      const typo = key.slice(0, i) + replacement + key.slice(i + 1);
      expect(hasValidChecksum(typo), `typo at ${i}`).toBe(false);
      expect(isWellFormedKey(typo), `typo at ${i}`).toBe(false);
    }
    // Two adjacent characters swapped.
    const swapAt = [...key.slice(4)].findIndex((c, i, a) => c !== a[i + 1]) + 4;
    const swapped = key.slice(0, swapAt) + key[swapAt + 1] + key[swapAt] + key.slice(swapAt + 2);
    expect(hasValidChecksum(swapped)).toBe(false);
  });

  it("checksums are left-padded base62 of CRC32", () => {
    expect(checksumOf("")).toBe("000000");
    expect(checksumOf("tsk_x")).toBe(scannerChecksum("tsk_x"));
    expect(checksumOf("tsk_x")).toMatch(/^[0-9A-Za-z]{6}$/);
  });

  it("still accepts the legacy format (tsk_ + 43 base64url), which has no checksum", () => {
    const legacy = "tsk_" + "A-_z".repeat(10) + "abc";
    expect(legacy).toMatch(LEGACY_KEY_PATTERN);
    expect(hasValidChecksum(legacy)).toBe(false);
    expect(isWellFormedKey(legacy)).toBe(true);
  });

  it("refuses anything else", () => {
    const { key } = generateApiKey();
    for (const bad of [
      "",
      "tsk_",
      key.slice(0, -1),
      `${key}x`,
      key.replace("tsk_", "tsx_"),
      key.replace("tsk_", "TSK_"),
      `${key.slice(0, 20)}-${key.slice(21)}`, // base64url character in a current key
      "tsk_" + "A".repeat(42),
      " " + key,
    ]) {
      expect(isWellFormedKey(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it("compares hashes in constant time, refusing length mismatches and empties", () => {
    const a = hashApiKey("tsk_a");
    expect(hashesEqual(a, a)).toBe(true);
    expect(hashesEqual(a, hashApiKey("tsk_b"))).toBe(false);
    expect(hashesEqual(a, a.slice(0, 62))).toBe(false);
    expect(hashesEqual("", "")).toBe(false);
  });
});

describe("parseDuration", () => {
  it("reads s, m, h and d, and 0", () => {
    expect(parseDuration("45s")).toBe(45_000);
    expect(parseDuration("30m")).toBe(1_800_000);
    expect(parseDuration("12h")).toBe(43_200_000);
    expect(parseDuration("90d")).toBe(90 * 86_400_000);
    expect(parseDuration("0")).toBe(0);
  });

  it("refuses anything else", () => {
    for (const bad of ["", "90", "1w", "-1d", "1.5h", "h", "1 h", "9999999d"]) {
      expect(parseDuration(bad), bad).toBeNull();
    }
  });
});
