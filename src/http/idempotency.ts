import { createHash } from "node:crypto";

/** Idempotency keys of Tessera's own (a saga's compensation, a trigger's job): refused from clients. */
export const RESERVED_KEY_PREFIX = "tessera:";

/** 1–255 visible ASCII characters (RFC 9110 token-ish, no spaces or controls). */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function isValidIdempotencyKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** JSON with object keys sorted at every level: "the same request" ignores key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function requestHash(tenantId: string, method: string, path: string, body: unknown): string {
  return createHash("sha256")
    .update(`${tenantId}\n${method}\n${path}\n${canonicalJson(body)}`)
    .digest("hex");
}

/**
 * Keys whose first request is still being validated or committed in this process. A second
 * request with the same key meanwhile is `409`; once committed, the store answers replays.
 */
export class InFlightKeys {
  private readonly keys = new Set<string>();

  tryAcquire(tenantId: string, key: string): (() => void) | null {
    const id = `${tenantId}\u0000${key}`;
    if (this.keys.has(id)) return null;
    this.keys.add(id);
    return () => this.keys.delete(id);
  }
}
