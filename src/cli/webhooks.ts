import { parseArgs } from "node:util";
import { generateWebhookSecret } from "../callbacks/signature.js";
import { openCommandStore } from "./store-args.js";

/** `tessera webhooks secret --tenant NAME [--rotate]`: show or rotate the tenant's `whsec_` secret. */
export async function webhooks(
  args: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream,
): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      tenant: { type: "string" },
      rotate: { type: "boolean" },
      "overlap-hours": { type: "string" },
      db: { type: "string" },
      "db-schema": { type: "string" },
      json: { type: "boolean" },
    },
    strict: true,
  });
  const overlap = Number(values["overlap-hours"] ?? "24");
  if (action !== "secret" || !values.tenant || !Number.isFinite(overlap) || overlap < 0) {
    out.write(
      "usage: tessera webhooks secret --tenant NAME [--rotate [--overlap-hours 24]] [--db FILE] [--json]\n",
    );
    return 2;
  }
  const store = await openCommandStore(values, env);
  try {
    const now = Date.now();
    const secrets = values.rotate
      ? await store.rotateWebhookSecret({
          tenantName: values.tenant,
          secret: generateWebhookSecret(),
          previousUntil: now + overlap * 3_600_000,
          now,
        })
      : await store.webhookSecrets({ tenantId: await store.ensureTenant({ name: values.tenant, now }), now });
    if (values.json) out.write(`${JSON.stringify({ tenant: values.tenant, secrets })}\n`);
    else {
      out.write(`${secrets[0]}\n`);
      if (secrets[1])
        out.write(`(the previous secret ${secrets[1].slice(0, 12)}… also signs for ${overlap} h)\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
