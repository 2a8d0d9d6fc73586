import { createHmac, randomBytes } from "node:crypto";

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the key is the base64-decoded
 * bytes after `whsec_`; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`;
 * `webhook-signature` is `v1,<base64 HMAC-SHA256>`, one per valid secret, space-separated
 * (two during a rotation).
 */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

export function isWebhookSecret(secret: string): boolean {
  if (!secret.startsWith("whsec_")) return false;
  const bytes = Buffer.from(secret.slice(6), "base64");
  return bytes.length >= 24 && bytes.toString("base64") === secret.slice(6);
}

export function signWebhook(secrets: readonly string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.slice("whsec_".length), "base64");
      return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
    })
    .join(" ");
}
