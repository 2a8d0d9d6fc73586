import { CLAIMS_SQL } from "./claims.sql.js";
import { JOBS_SQL } from "./jobs.sql.js";
import { LEASES_SQL } from "./leases.sql.js";
import { RETENTION_SQL } from "./retention.sql.js";

/**
 * Every statement, once. Each header says what it returns and what 0 rows means.
 *
 * A lease token is set exactly while a job is running (a CHECK constraint holds it), so the
 * writes fenced by a lease match on (id, token) alone, which only the primary key can serve.
 * (Before migration 010, with `status = 'running'` in them, a plan made while the statistics
 * counted few running jobs walked a partial index of running jobs instead, through a dead entry
 * for every job run since the last vacuum: 94 µs a completion instead of 26, and growing.)
 *
 * The sweeps lock the jobs of the lease rows they take in id order and wait for them, as the
 * batched writes lock theirs in id order: no deadlock with a completion. They do not skip a
 * locked job: a lease row they remove must leave no job running behind it.
 */
export const SQL = { ...JOBS_SQL, ...CLAIMS_SQL, ...LEASES_SQL, ...RETENTION_SQL };

/**
 * The statements run once or more per job, sent as named prepared statements (parsed and
 * planned once per connection, not on every call) unless the store is told not to. Each has one
 * good plan whatever its parameters, so the generic plan PostgreSQL may settle on after five
 * runs is a good one: an insert, or lookups by primary key (the claim's rows come from
 * claimable(), which plans its own query on every call, by their addresses).
 */
export const PREPARED: ReadonlySet<keyof typeof SQL> = new Set([
  "insertJob",
  "insertJobs",
  "insertJobWithKey",
  "getJob",
  "claim",
  "heartbeat",
  "progress",
  "completeMany",
  "completeManyLean",
  "completeManyWithLifecycle",
  "failFinal",
  "failRetry",
  "release",
] as const);
