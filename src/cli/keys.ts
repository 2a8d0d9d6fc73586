import { parseArgs } from "node:util";
import { generateApiKey } from "../auth/api-keys.js";
import { openStore } from "../store/open.js";
import { dbPath, schemaName } from "./store-args.js";

/** `tessera keys create|list|revoke`: API keys of tenants. The key is printed once, never stored. */
export async function keys(
  args: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream,
): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      tenant: { type: "string" },
      db: { type: "string" },
      "db-schema": { type: "string" },
      json: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  const store = await openStore({
    db: dbPath(values.db, env),
    schema: schemaName(values["db-schema"], env),
    listen: false,
  });
  try {
    const now = Date.now();
    switch (action) {
      case "create": {
        const tenant = values.tenant;
        if (!tenant || !/^[A-Za-z0-9._-]{1,64}$/.test(tenant)) {
          out.write("usage: tessera keys create --tenant NAME (letters, digits, . _ -; at most 64)\n");
          return 2;
        }
        const key = generateApiKey();
        const record = await store.createApiKey({
          tenantName: tenant,
          keyId: key.keyId,
          prefix: key.prefix,
          hash: key.hash,
          now,
        });
        if (values.json)
          out.write(`${JSON.stringify({ key: key.key, id: record.id, prefix: record.prefix, tenant })}\n`);
        else
          out.write(
            `${key.key}\n\nKey ${record.id} (${record.prefix}…) for tenant "${tenant}". It is shown only this once.\n`,
          );
        return 0;
      }
      case "list": {
        const list = await store.listApiKeys();
        if (values.json) out.write(`${JSON.stringify(list)}\n`);
        else {
          for (const k of list) {
            const state = k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : "active";
            const used = k.lastUsedAt ? new Date(k.lastUsedAt).toISOString() : "never";
            out.write(`${k.id}  ${k.prefix}…  tenant=${k.tenantName}  ${state}  last used ${used}\n`);
          }
          if (list.length === 0) out.write("no keys\n");
        }
        return 0;
      }
      case "revoke": {
        const target = positionals[0];
        if (!target) {
          out.write("usage: tessera keys revoke ID|PREFIX\n");
          return 2;
        }
        const revoked = await store.revokeApiKey({ idOrPrefix: target, now });
        out.write(revoked ? `revoked ${target}\n` : `no active key ${target}\n`);
        return revoked ? 0 : 1;
      }
      default:
        out.write(
          "usage: tessera keys create --tenant NAME | list | revoke ID|PREFIX   [--db FILE] [--json]\n",
        );
        return 2;
    }
  } finally {
    await store.close();
  }
}
