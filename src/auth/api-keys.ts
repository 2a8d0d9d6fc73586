import { createHash, randomBytes, randomUUID } from "node:crypto";

/**
 * API keys: `tsk_` + 32 random bytes in base64url (256 bits). The readable prefix lets secret
 * scanners find leaked keys. Only the SHA-256 of the key is stored (a fast hash suffices for
 * 256-bit random secrets: there is nothing to brute-force), plus the first 12 characters to
 * tell keys apart in listings.
 */
export const KEY_PATTERN = /^tsk_[A-Za-z0-9_-]{43}$/;
const PREFIX_LENGTH = 12;

export interface NewApiKey {
  key: string;
  keyId: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(): NewApiKey {
  const key = `tsk_${randomBytes(32).toString("base64url")}`;
  return { key, keyId: randomUUID(), prefix: key.slice(0, PREFIX_LENGTH), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}
