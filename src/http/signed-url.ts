import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Valet-key URLs for results: `…/result?tenant=…&expires=…&kid=…&sig=…`. The signature is
 * HMAC-SHA256 over `METHOD \n path \n tenant \n expires \n kid`, base64url. `kid` names the
 * secret, so secrets can rotate: the newest signs, every configured one verifies.
 */
export interface SigningKey {
  kid: string;
  secret: Buffer;
}

export function signingKey(secret: string): SigningKey {
  const bytes = Buffer.from(secret, "utf8");
  return { kid: createHash("sha256").update(bytes).digest("hex").slice(0, 8), secret: bytes };
}

function mac(key: SigningKey, method: string, path: string, tenant: string, expires: number): Buffer {
  return createHmac("sha256", key.secret)
    .update(`${method}\n${path}\n${tenant}\n${expires}\n${key.kid}`)
    .digest();
}

export class UrlSigner {
  constructor(
    /** The first key signs; all verify. */
    private readonly keys: readonly SigningKey[],
    private readonly ttlSeconds: number,
  ) {
    if (keys.length === 0) throw new Error("UrlSigner needs at least one key");
  }

  /** Query string (without `?`) that makes `path` readable without credentials until expiry. */
  sign(path: string, tenant: string, nowMs: number, method = "GET"): string {
    const key = this.keys[0]!;
    const expires = Math.floor(nowMs / 1000) + this.ttlSeconds;
    const sig = mac(key, method, path, tenant, expires).toString("base64url");
    const params = new URLSearchParams({ tenant, expires: String(expires), kid: key.kid, sig });
    return params.toString();
  }

  /** The tenant the URL was signed for, or null when anything is missing, tampered or expired. */
  verify(params: { method: string; path: string; query: URLSearchParams; nowMs: number }): string | null {
    const { query } = params;
    // Repeated parameters are ambiguous: refuse rather than pick one.
    for (const name of ["tenant", "expires", "kid", "sig"]) if (query.getAll(name).length !== 1) return null;
    const tenant = query.get("tenant")!;
    const expiresText = query.get("expires")!;
    const sigText = query.get("sig")!;
    if (!/^\d{1,12}$/.test(expiresText) || !/^[A-Za-z0-9_-]{43}$/.test(sigText)) return null;
    const expires = Number(expiresText);
    if (expires * 1000 <= params.nowMs) return null;
    const key = this.keys.find((k) => k.kid === query.get("kid"));
    if (!key) return null;
    // Compare the text, not the decoded bytes: the 43rd character carries 2 unused bits, so
    // several spellings decode to the same MAC; only the canonical one is the signature.
    const given = Buffer.from(sigText, "ascii");
    const expected = Buffer.from(
      mac(key, params.method, params.path, tenant, expires).toString("base64url"),
      "ascii",
    );
    // Lengths are equal by the regex above; checked again so timingSafeEqual can never throw.
    return given.length === expected.length && timingSafeEqual(given, expected) ? tenant : null;
  }
}
