import type { FastifyRequest } from "fastify";
import { hashApiKey, hashesEqual, isWellFormedKey } from "../auth/api-keys.js";
import { candidatePrefix, type AuthFailureReason } from "../audit.js";
import { ProblemError, storeUnavailable } from "./problems.js";
import type { ServerDeps } from "./server.js";

const UNAUTHORIZED_HEADERS = { "www-authenticate": 'Bearer realm="tessera"' };

/** A live key verified against the store, trusted without asking again until `until`. */
interface VerifiedKey {
  tenantId: string;
  prefix: string;
  expiresAt: number | null;
  until: number;
}

/** Bound on the verified-key cache (the oldest entry goes first). */
const KEY_CACHE_ENTRIES = 10_000;

/**
 * Verified keys by hash, per server (`--auth-cache-ms`): a flood of requests with one valid
 * key (answered 429 by the rate limiter) costs no store query, at the price of a revoked key
 * working on for at most that long. Only live keys are cached; failures always ask the store.
 */
export class KeyCache {
  private readonly entries = new Map<string, VerifiedKey>();
  constructor(private readonly ttlMs: number) {}

  get(hash: string, now: number): VerifiedKey | undefined {
    const entry = this.entries.get(hash);
    if (entry && entry.until <= now) this.entries.delete(hash);
    return entry && entry.until > now ? entry : undefined;
  }

  set(hash: string, key: Omit<VerifiedKey, "until">, now: number): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= KEY_CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(hash, { ...key, until: now + this.ttlMs });
  }
}

/** The prefix of the key each authenticated request used, for its audit lines. */
const KEY_PREFIXES = new WeakMap<FastifyRequest, string>();

/** The first 12 characters of the key that authenticated `request` (null in `--dev`). */
export function authenticatedKeyPrefix(request: FastifyRequest): string | null {
  return KEY_PREFIXES.get(request) ?? null;
}

/** An audit line for a change the authenticated caller made to one of its jobs. */
export function auditJob(
  request: FastifyRequest,
  deps: ServerDeps,
  event: "job.canceled" | "job.deleted",
  jobId: string,
): void {
  deps.audit.record(event, {
    tenant: request.tenantId,
    keyPrefix: authenticatedKeyPrefix(request),
    address: request.ip,
    requestId: request.id,
    job: jobId,
  });
}

function unauthorized(
  request: FastifyRequest,
  deps: ServerDeps,
  reason: AuthFailureReason,
  candidate?: string,
): ProblemError {
  // The reason goes to the audit log only: one answer for every failure (missing, malformed,
  // unknown, revoked, expired), so the answer is no oracle.
  deps.audit.authFailed({
    reason,
    keyPrefix: candidatePrefix(candidate),
    address: request.ip,
    requestId: request.id,
  });
  return new ProblemError(
    "unauthorized",
    "a valid API key is required: Authorization: Bearer <key>",
    {},
    UNAUTHORIZED_HEADERS,
  );
}

/**
 * Resolve the caller's tenant from `Authorization: Bearer <key>`. The scheme is matched
 * case-insensitively (RFC 9110 §11.1); a repeated header is refused; malformed keys (bad
 * checksum included) are refused without a query; the stored hash is compared in constant
 * time; revoked and expired keys are refused like unknown ones. In `--dev`, every request
 * belongs to the one dev tenant.
 */
export async function authenticate(request: FastifyRequest, deps: ServerDeps): Promise<string> {
  if (deps.devTenantId !== null) return deps.devTenantId;
  const raw = request.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === "authorization") count++;
  if (count === 0) throw unauthorized(request, deps, "missing");
  if (count !== 1) throw unauthorized(request, deps, "malformed");
  const header = request.headers.authorization ?? "";
  if (header.trim() === "") throw unauthorized(request, deps, "missing");
  const key = /^bearer +(\S+) *$/i.exec(header)?.[1];
  if (!key) throw unauthorized(request, deps, "malformed");
  if (!isWellFormedKey(key)) throw unauthorized(request, deps, "malformed", key);
  const hash = hashApiKey(key);
  const now = deps.now();
  const cached = deps.keyCache?.get(hash, now);
  if (cached) {
    if (cached.expiresAt !== null && cached.expiresAt <= now)
      throw unauthorized(request, deps, "expired", key);
    KEY_PREFIXES.set(request, cached.prefix);
    return cached.tenantId;
  }
  let record;
  try {
    record = await deps.store.lookupApiKey({ hash, now });
  } catch (error) {
    // The store is unreachable (e.g. the database restarted): a transient 503, not a 500.
    request.log.warn({ err: error }, "API key lookup failed");
    throw storeUnavailable("the job store is not reachable; try again");
  }
  if (!record || !hashesEqual(record.hash, hash)) throw unauthorized(request, deps, "unknown", key);
  if (record.state !== "live") throw unauthorized(request, deps, record.state, key);
  deps.keyCache?.set(
    hash,
    { tenantId: record.tenantId, prefix: record.prefix, expiresAt: record.expiresAt },
    now,
  );
  KEY_PREFIXES.set(request, record.prefix);
  return record.tenantId;
}
