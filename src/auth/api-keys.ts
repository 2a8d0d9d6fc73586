import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";

/**
 * API keys: `tsk_` + 43 random base62 characters (256 bits) + a 6-character base62 CRC32 of
 * everything before it, 53 characters in all, like GitHub's tokens. The readable prefix lets
 * secret scanners find leaked keys and the checksum lets them (and the server) tell a real
 * candidate from a typo offline, without a database query. Only the SHA-256 of the key is stored
 * (a fast hash suffices for 256-bit random secrets: there is nothing to brute-force), plus the
 * first 12 characters to tell keys apart in listings and audit lines.
 *
 * Keys issued before the checksum (`tsk_` + 43 base64url characters, 47 in all) stay valid:
 * they cannot be told from a typo offline, but the two formats never collide (the lengths
 * differ), so accepting them weakens nothing. Rotate them to get the checksum.
 */
export const KEY_PATTERN = /^tsk_[A-Za-z0-9]{49}$/;
/** The format issued before checksums; still accepted, never issued. */
export const LEGACY_KEY_PATTERN = /^tsk_[A-Za-z0-9_-]{43}$/;
export const KEY_PREFIX_LENGTH = 12;

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LENGTH = 43; // 43 × log2(62) ≈ 256 bits
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32

export interface NewApiKey {
  key: string;
  keyId: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(): NewApiKey {
  const head = `tsk_${randomBase62(BODY_LENGTH)}`;
  const key = head + checksumOf(head);
  return { key, keyId: randomUUID(), prefix: keyPrefix(key), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Compare two hex digests in constant time (a length mismatch is simply false). */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** The part of a key that may be shown and logged: its first 12 characters. */
export function keyPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX_LENGTH);
}

/** The 6-character base62 CRC32 of `head` (`tsk_` + body). */
export function checksumOf(head: string): string {
  let n = crc32(head);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** A current-format key whose checksum matches: what a secret scanner can check offline. */
export function hasValidChecksum(candidate: string): boolean {
  if (!KEY_PATTERN.test(candidate)) return false;
  const cut = candidate.length - CHECKSUM_LENGTH;
  return checksumOf(candidate.slice(0, cut)) === candidate.slice(cut);
}

/** Worth a database lookup: a current key with a valid checksum, or a legacy key. */
export function isWellFormedKey(candidate: string): boolean {
  return hasValidChecksum(candidate) || LEGACY_KEY_PATTERN.test(candidate);
}

/** Uniform base62 characters (rejection sampling: no modulo bias). */
function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte >= 248) continue; // 248 = 4 × 62
      out += BASE62[byte % 62]!;
      if (out.length === length) break;
    }
  }
  return out;
}

const DURATION = /^(\d{1,6})([smhd])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90d`, `12h`, `30m`, `45s` (or `0`) in milliseconds, or null when it is not such a duration. */
export function parseDuration(text: string): number | null {
  if (text === "0") return 0;
  const match = DURATION.exec(text);
  if (!match) return null;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
