import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { AuditLog } from "../audit.js";
import { generateApiKey, parseDuration } from "../auth/api-keys.js";
import { keyState } from "../store/shared/rows.js";
import type { ApiKeyRecord } from "../store/store.js";
import { isTenantName, openCommandStore } from "./store-args.js";

const USAGE = `usage: tessera keys create --tenant NAME [--expires-in 90d|12h|30m]
       tessera keys rotate ID|PREFIX [--overlap 24h] [--expires-in DURATION]
       tessera keys list
       tessera keys revoke ID|PREFIX
  all take [--db FILE|URL] [--db-schema NAME] [--json]
`;
const DEFAULT_OVERLAP_MS = 24 * 3_600_000;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Who ran the command, for the audit line (best effort). */
function actor(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/**
 * `tessera keys create|rotate|list|revoke`: API keys of tenants. A key is printed once, never
 * stored. Key changes write an audit line (JSON) to `err`.
 */
export async function keys(
  args: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream = process.stderr,
  now: () => number = Date.now,
): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      tenant: { type: "string" },
      "expires-in": { type: "string" },
      overlap: { type: "string" },
      db: { type: "string" },
      "db-schema": { type: "string" },
      json: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (!["create", "rotate", "list", "revoke"].includes(action ?? "")) {
    out.write(USAGE);
    return 2;
  }
  const lifetime = values["expires-in"] === undefined ? null : parseDuration(values["expires-in"]);
  if (values["expires-in"] !== undefined && !lifetime) {
    out.write(`--expires-in must be a duration such as 90d, 12h or 30m\n${USAGE}`);
    return 2;
  }
  const overlap = values.overlap === undefined ? DEFAULT_OVERLAP_MS : parseDuration(values.overlap);
  if (overlap === null) {
    out.write(`--overlap must be a duration such as 24h, 30m or 0\n${USAGE}`);
    return 2;
  }
  const audit = new AuditLog(pino({ name: "tessera" }, err));
  const by = actor();
  const store = await openCommandStore(values, env);
  try {
    const at = now();
    const expiresAt = lifetime === null ? null : at + lifetime;
    switch (action) {
      case "create": {
        const tenant = values.tenant;
        if (!isTenantName(tenant)) {
          out.write("usage: tessera keys create --tenant NAME (letters, digits, . _ -; at most 64)\n");
          return 2;
        }
        const key = generateApiKey();
        const record = await store.createApiKey({
          tenantName: tenant,
          keyId: key.keyId,
          prefix: key.prefix,
          hash: key.hash,
          now: at,
          expiresAt,
        });
        audit.record("key.created", {
          tenant,
          keyId: record.id,
          keyPrefix: record.prefix,
          expiresAt: iso(record.expiresAt),
          actor: by,
        });
        if (values.json)
          out.write(
            `${JSON.stringify({ key: key.key, id: record.id, prefix: record.prefix, tenant, expiresAt: iso(record.expiresAt) })}\n`,
          );
        else {
          // Only the key on stdout, so that K=$(tessera keys create …) holds just the key.
          out.write(`${key.key}\n`);
          err.write(
            `Key ${record.id} (${record.prefix}…) for tenant "${tenant}"${expiry(record)}. It is shown only this once.\n`,
          );
        }
        return 0;
      }
      case "rotate": {
        const target = positionals[0];
        if (!target) {
          out.write(USAGE);
          return 2;
        }
        const key = generateApiKey();
        const rotated = await store.rotateApiKey({
          idOrPrefix: target,
          keyId: key.keyId,
          prefix: key.prefix,
          hash: key.hash,
          expiresAt,
          overlapUntil: at + overlap,
          now: at,
        });
        if (!rotated) {
          out.write(`no live key ${target}\n`);
          return 1;
        }
        const { previous, key: record } = rotated;
        audit.record("key.rotated", {
          tenant: record.tenantName,
          keyId: previous.id,
          keyPrefix: previous.prefix,
          newKeyPrefix: record.prefix,
          expiresAt: iso(previous.expiresAt),
          actor: by,
        });
        if (values.json)
          out.write(
            `${JSON.stringify({
              key: key.key,
              id: record.id,
              prefix: record.prefix,
              tenant: record.tenantName,
              expiresAt: iso(record.expiresAt),
              previous: { id: previous.id, prefix: previous.prefix, expiresAt: iso(previous.expiresAt) },
            })}\n`,
          );
        else {
          out.write(`${key.key}\n`);
          err.write(
            `Key ${record.id} (${record.prefix}…) for tenant "${record.tenantName}"${expiry(record)}. It is shown only this once.\n` +
              `The old key ${previous.id} (${previous.prefix}…) stays valid until ${iso(previous.expiresAt)}.\n`,
          );
        }
        return 0;
      }
      case "list": {
        const list = (await store.listApiKeys()).map((k) => ({ ...k, state: keyState(k, at) }));
        if (values.json) out.write(`${JSON.stringify(list)}\n`);
        else if (list.length === 0) out.write("no keys\n");
        else
          out.write(
            table(
              ["ID", "PREFIX", "TENANT", "STATE", "CREATED", "LAST USED", "EXPIRES", "REVOKED"],
              list.map((k) => [
                k.id,
                `${k.prefix}…`,
                k.tenantName,
                k.state,
                iso(k.createdAt)!,
                iso(k.lastUsedAt) ?? "never",
                iso(k.expiresAt) ?? "never",
                iso(k.revokedAt) ?? "no",
              ]),
            ),
          );
        return 0;
      }
      default: {
        const target = positionals[0];
        if (!target) {
          out.write("usage: tessera keys revoke ID|PREFIX\n");
          return 2;
        }
        const before = (await store.listApiKeys()).find(
          (k) => (k.id === target || k.prefix === target) && k.revokedAt === null,
        );
        const revoked = await store.revokeApiKey({ idOrPrefix: target, now: at });
        if (revoked)
          audit.record("key.revoked", {
            tenant: before?.tenantName ?? null,
            keyId: before?.id,
            keyPrefix: before?.prefix ?? target,
            actor: by,
          });
        out.write(revoked ? `revoked ${target}\n` : `no active key ${target}\n`);
        return revoked ? 0 : 1;
      }
    }
  } finally {
    await store.close();
  }
}

function expiry(key: ApiKeyRecord): string {
  return key.expiresAt === null ? "" : `, expiring ${iso(key.expiresAt)}`;
}

/** Rows under a header, each column as wide as its widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [header, ...rows].map(line).join("\n") + "\n";
}
