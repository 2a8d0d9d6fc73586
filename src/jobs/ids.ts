import { createHash, randomFillSync } from "node:crypto";

/**
 * Job ids: `job_`, the tenant's code (8 base32 digits of a hash of its id), the creation time
 * (10 digits of unix milliseconds), then 130 random bits (26 digits), 48 characters in all.
 *
 * The random part alone is more than the contract's 122 bits, so an id is as unguessable as a
 * UUIDv4. The tenant's code goes first, so that a tenant's jobs are one range of the primary
 * key, newest last: PostgreSQL lists them from there, without an index of its own that every
 * claim and every completion would write a new entry into (docs/benchmarks.md). The time goes
 * next, so that ids made together sort together: a job's primary-key entry, written again at
 * each status change, lands in the few index pages of the jobs submitted around it rather than
 * in a random page of the whole index (~15% less database CPU per job than random UUIDv4 keys,
 * and no random reads once the index outgrows memory). UUIDv7 sorts by time too but keeps only
 * 74 random bits; ULID 80.
 */
const PREFIX = "job_";
/** Crockford's base32 in lower case: the digits sort in the order of the values they encode. */
const DIGITS = "0123456789abcdefghjkmnpqrstvwxyz";
const TENANT_DIGITS = 8;
const TIME_DIGITS = 10;
const RANDOM_DIGITS = 26;
const RANDOM_BYTES = 17; // 136 bits, of which 130 are used

const ID = /^job_[0-9a-hjkmnp-tv-z]{44}$/;
/** Ids of jobs created before this format: lower-case UUIDv4s, as `randomUUID()` made them. */
const LEGACY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Random bytes drawn from the system in blocks, as randomUUID() does: one call per 240 ids.
// Its own memory (not a slice of Node's shared pool), so that no other buffer's view reaches it.
const pool = Buffer.allocUnsafeSlow(RANDOM_BYTES * 240);
let offset = pool.length;

/** The latest creation time an id can carry: 10 base32 digits, 50 bits of milliseconds. */
const MAX_TIME = 2 ** 50 - 1;

// Most servers make ids for one tenant, or a few: the last code is kept, not hashed again.
let lastTenant: string | null = null;
let lastPrefix = "";

/** `job_` and the tenant's code: the prefix every id of the tenant's jobs starts with. */
export function tenantIdPrefix(tenantId: string): string {
  if (tenantId !== lastTenant) {
    // 40 bits of SHA-256: two tenants share a code with odds of one in a trillion. If they do,
    // nothing is shared but a range of the index (every read also matches the tenant).
    const hash = createHash("sha256").update(tenantId).digest();
    let value = hash.readUIntBE(0, 5);
    let code = "";
    for (let i = 0; i < TENANT_DIGITS; i++, value = Math.floor(value / 32)) code = DIGITS[value % 32]! + code;
    lastTenant = tenantId;
    lastPrefix = PREFIX + code;
  }
  return lastPrefix;
}

/**
 * The first and the last id a tenant's jobs can have: its range of the primary key, in byte
 * order (the digits' ASCII order is the order of their values).
 */
export function tenantIdRange(tenantId: string): { first: string; last: string } {
  const prefix = tenantIdPrefix(tenantId);
  const rest = TIME_DIGITS + RANDOM_DIGITS;
  return { first: prefix + DIGITS[0]!.repeat(rest), last: prefix + DIGITS[31]!.repeat(rest) };
}

/**
 * A new id for a job of `tenantId` created at `now` (unix ms, 0 to 2^50 − 1: until the year
 * 37,648).
 */
export function newJobId(now: number, tenantId: string): string {
  // Out of range, the time digits would be garbage or wrap, and ids would no longer sort by time.
  if (!(now >= 0 && now <= MAX_TIME)) throw new RangeError(`a job id cannot carry the time ${now}`);
  let id = tenantIdPrefix(tenantId) + timeDigits(now);
  if (offset + RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  let bits = 0;
  let value = 0;
  let written = 0;
  for (let i = offset; written < RANDOM_DIGITS; i++) {
    value = (value << 8) | pool[i]!;
    bits += 8;
    while (bits >= 5 && written < RANDOM_DIGITS) {
      bits -= 5;
      id += DIGITS[(value >> bits) & 31];
      written++;
    }
    value &= (1 << bits) - 1;
  }
  offset += RANDOM_BYTES;
  return id;
}

/** The 10 digits of a creation time (unix ms, 0 to 2^50 − 1) as ids carry them. */
function timeDigits(now: number): string {
  let time = Math.floor(now);
  let digits = "";
  for (let i = 0; i < TIME_DIGITS; i++, time = Math.floor(time / 32)) digits = DIGITS[time % 32]! + digits;
  return digits;
}

/** The length of `job_` and a tenant's code: the part of an id that names its tenant. */
export const TENANT_PREFIX_LENGTH = PREFIX.length + TENANT_DIGITS;

/**
 * What follows a tenant's prefix in the ids of jobs created before `time`: within a tenant's
 * range of the primary key, exactly the ids below prefix + this were made before `time`.
 */
export function idTimeBound(time: number): string {
  return timeDigits(Math.min(MAX_TIME, Math.max(0, time)));
}

/** Whether `id` can be a job id (one this server makes, or an earlier UUIDv4 one). */
export function isJobId(id: string): boolean {
  return ID.test(id) || LEGACY_ID.test(id);
}

/** Whether `id` is an id `newJobId` makes for `tenantId`'s jobs. */
export function isJobIdOf(id: string, tenantId: string): boolean {
  return ID.test(id) && id.startsWith(tenantIdPrefix(tenantId));
}

/** The creation time an id carries (unix ms), or null for a legacy UUIDv4. Used by tests. */
export function jobIdTime(id: string): number | null {
  if (!ID.test(id)) return null;
  let time = 0;
  const start = PREFIX.length + TENANT_DIGITS;
  for (const digit of id.slice(start, start + TIME_DIGITS)) time = time * 32 + DIGITS.indexOf(digit);
  return time;
}
