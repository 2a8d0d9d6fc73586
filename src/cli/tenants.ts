import { parseArgs } from "node:util";
import type { TenantLimits, TenantRecord } from "../store/store.js";
import { isTenantName, openCommandStore } from "./store-args.js";

const USAGE = `usage: tessera tenants list
       tessera tenants limits --tenant NAME [--submit-rate N] [--poll-rate N] [--max-queued N]
  N: per second (rates) or jobs (max-queued); 0 turns the limit off for the tenant, "default"
  returns to the server's --rate-submit, --rate-poll or --max-queued-per-tenant.
  Running servers apply a change within 5 seconds.
  all take [--db FILE|URL] [--db-schema NAME] [--json]
`;

const FLAGS: [string, keyof TenantLimits][] = [
  ["submit-rate", "submitRate"],
  ["poll-rate", "pollRate"],
  ["max-queued", "maxQueued"],
];

function show(limit: number | null): string {
  return limit === null ? "default" : limit === 0 ? "off" : String(limit);
}

function line(t: TenantRecord): string {
  const l = t.limits;
  return `${t.name}  submit-rate=${show(l.submitRate)}  poll-rate=${show(l.pollRate)}  max-queued=${show(l.maxQueued)}\n`;
}

/** `tessera tenants list|limits`: tenants and their own rate limits and queued-jobs quota. */
export async function tenants(
  args: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream,
  now: () => number = Date.now,
): Promise<number> {
  const [action, ...rest] = args;
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        tenant: { type: "string" },
        "submit-rate": { type: "string" },
        "poll-rate": { type: "string" },
        "max-queued": { type: "string" },
        db: { type: "string" },
        "db-schema": { type: "string" },
        json: { type: "boolean" },
      },
      strict: true,
    }));
  } catch (error) {
    out.write(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (action !== "list" && action !== "limits") {
    out.write(USAGE);
    return 2;
  }
  const limits: Partial<TenantLimits> = {};
  for (const [flag, member] of FLAGS) {
    const text = values[flag as "submit-rate"];
    if (text === undefined) continue;
    if (text === "default") limits[member] = null;
    else if (/^\d{1,9}$/.test(text)) limits[member] = Number(text);
    else {
      out.write(`--${flag} must be an integer >= 0 or "default", got "${text}"\n${USAGE}`);
      return 2;
    }
  }
  if (action === "limits" && !isTenantName(values.tenant)) {
    out.write(`--tenant NAME is required (letters, digits, . _ -; at most 64)\n${USAGE}`);
    return 2;
  }
  const store = await openCommandStore(values, env);
  try {
    if (action === "list") {
      const list = await store.listTenants();
      if (values.json) out.write(`${JSON.stringify(list)}\n`);
      else {
        for (const t of list) out.write(line(t));
        if (list.length === 0) out.write("no tenants\n");
      }
      return 0;
    }
    const tenant = await store.setTenantLimits({ tenantName: values.tenant!, limits, now: now() });
    out.write(values.json ? `${JSON.stringify(tenant)}\n` : line(tenant));
    return 0;
  } finally {
    await store.close();
  }
}
