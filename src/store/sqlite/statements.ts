import { CALLBACKS_SQL } from "./callbacks.sql.js";
import { CLAIMS_SQL } from "./claims.sql.js";
import { EVENTS_SQL } from "./events.sql.js";
import { JOBS_SQL } from "./jobs.sql.js";
import { LEASES_SQL } from "./leases.sql.js";
import { OUTBOX_SQL } from "./outbox.sql.js";
import { RELAY_SQL } from "./relay.sql.js";
import { RESULTS_SQL } from "./results.sql.js";
import { RETENTION_SQL } from "./retention.sql.js";
import { SAGAS_SQL } from "./sagas.sql.js";
import { SUBSCRIPTIONS_SQL } from "./subscriptions.sql.js";
import { TENANTS_SQL } from "./tenants.sql.js";

/** Every statement, prepared once. Each header says what it returns and what 0 rows means. */
export const STATEMENTS = {
  ...JOBS_SQL,
  ...RESULTS_SQL,
  ...CLAIMS_SQL,
  ...LEASES_SQL,
  ...RETENTION_SQL,
  ...OUTBOX_SQL,
  ...CALLBACKS_SQL,
  ...TENANTS_SQL,
  ...SAGAS_SQL,
  ...EVENTS_SQL,
  ...RELAY_SQL,
  ...SUBSCRIPTIONS_SQL,
} as const;
