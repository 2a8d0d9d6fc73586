/**
 * Configuration: command-line flags, then `TESSERA_*` environment variables, then defaults,
 * validated once into a frozen object. Nothing else in Tessera reads `process.env`.
 * The table below is the single source of the flags, their variables, defaults and docs
 * (the README's configuration table is checked against it by a test).
 */
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { TesseraError } from "./jobs/errors.js";

type Kind = "string" | "int" | "bool" | "list";

/** A `--db` (or `--db-listen-url`) that names PostgreSQL rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

interface OptionSpec {
  kind: Kind;
  env: string;
  default: string | number | boolean | string[] | undefined;
  min?: number;
  max?: number;
  doc: string;
}

export const OPTIONS = {
  port: { kind: "int", env: "TESSERA_PORT", default: 3000, min: 0, max: 65535, doc: "HTTP port" },
  host: {
    kind: "string",
    env: "TESSERA_HOST",
    default: "127.0.0.1",
    doc: "Address to listen on (0.0.0.0 for all)",
  },
  "tls-cert": {
    kind: "string",
    env: "TESSERA_TLS_CERT",
    default: undefined,
    doc: "PEM certificate (chain) file; with --tls-key, serve HTTPS with HTTP/2 and HTTP/1.1 on the port (reloaded on SIGHUP)",
  },
  "tls-key": {
    kind: "string",
    env: "TESSERA_TLS_KEY",
    default: undefined,
    doc: "PEM private key file of --tls-cert",
  },
  db: {
    kind: "string",
    env: "TESSERA_DB",
    default: "./.tessera/tessera.db",
    doc: "SQLite file, or a postgres:// URL for PostgreSQL (also TESSERA_DATABASE_URL)",
  },
  "db-pool-size": {
    kind: "int",
    env: "TESSERA_DB_POOL_SIZE",
    default: 10,
    min: 1,
    max: 1000,
    doc: "PostgreSQL connections per process (plus one for LISTEN)",
  },
  "db-listen-url": {
    kind: "string",
    env: "TESSERA_DB_LISTEN_URL",
    default: undefined,
    doc: "PostgreSQL URL for the LISTEN connection (default: --db); point it past a pgbouncer in transaction mode",
  },
  "db-no-prepare": {
    kind: "bool",
    env: "TESSERA_DB_NO_PREPARE",
    default: false,
    doc: "PostgreSQL: send no named prepared statements (for pgbouncer in transaction mode without max_prepared_statements)",
  },
  "db-schema": {
    kind: "string",
    env: "TESSERA_DB_SCHEMA",
    default: "tessera",
    doc: "PostgreSQL schema holding Tessera's tables",
  },
  role: {
    kind: "string",
    env: "TESSERA_ROLE",
    default: "all",
    doc: "api (HTTP only), worker (jobs and sweepers only) or all",
  },
  demo: { kind: "bool", env: "TESSERA_DEMO", default: false, doc: "Register the demo.* job types" },
  dev: {
    kind: "bool",
    env: "TESSERA_DEV",
    default: false,
    doc: "Development mode: no authentication, one implicit tenant",
  },
  jobs: {
    kind: "list",
    env: "TESSERA_JOBS",
    default: [],
    doc: "Module or folder of modules exporting defineJob() results (repeatable; comma-separated in the variable)",
  },
  "public-url": {
    kind: "string",
    env: "TESSERA_PUBLIC_URL",
    default: undefined,
    doc: "Base URL for Location headers and links; default: the request's Host",
  },
  secret: {
    kind: "string",
    env: "TESSERA_SECRET",
    default: undefined,
    doc: "Secret (≥ 32 chars) that signs result URLs; required unless --dev",
  },
  "previous-secrets": {
    kind: "list",
    env: "TESSERA_PREVIOUS_SECRETS",
    default: [],
    doc: "Older secrets still accepted for signed URLs during a rotation",
  },
  concurrency: {
    kind: "int",
    env: "TESSERA_CONCURRENCY",
    default: 10,
    min: 0,
    max: 10000,
    doc: "Jobs run at once by this process (0: API only)",
  },
  prefetch: {
    kind: "int",
    env: "TESSERA_PREFETCH",
    default: 0,
    min: 0,
    max: 10000,
    doc: "Jobs claimed ahead of free slots, started without a round trip (shown running while they wait)",
  },
  "lease-ms": {
    kind: "int",
    env: "TESSERA_LEASE_MS",
    default: 30000,
    min: 500,
    max: 3600000,
    doc: "Lease of a running attempt; a crashed worker's job is retried after it",
  },
  "heartbeat-ms": {
    kind: "int",
    env: "TESSERA_HEARTBEAT_MS",
    default: undefined,
    min: 100,
    max: 1200000,
    doc: "Lease heartbeat interval (default: lease / 3)",
  },
  "poll-interval-ms": {
    kind: "int",
    env: "TESSERA_POLL_INTERVAL_MS",
    default: 2000,
    min: 50,
    max: 600000,
    doc: "Fallback poll for work when no wake-up arrives",
  },
  "sweep-interval-ms": {
    kind: "int",
    env: "TESSERA_SWEEP_INTERVAL_MS",
    default: 1000,
    min: 50,
    max: 600000,
    doc: "Lease and deadline sweeper interval",
  },
  "shutdown-grace-ms": {
    kind: "int",
    env: "TESSERA_SHUTDOWN_GRACE_MS",
    default: 10000,
    min: 0,
    max: 3600000,
    doc: "On SIGTERM, how long running jobs may finish before they are released",
  },
  "max-tasks": {
    kind: "int",
    env: "TESSERA_MAX_TASKS",
    default: undefined,
    min: 1,
    max: 10000,
    doc: "Command tasks (processes) alive at once in this process, all types together (default: CPU count)",
  },
  "task-dir": {
    kind: "string",
    env: "TESSERA_TASK_DIR",
    default: undefined,
    doc: "Where command tasks' per-attempt dirs live (default: <tmp>/tessera-tasks)",
  },
  "body-limit": {
    kind: "int",
    env: "TESSERA_BODY_LIMIT",
    default: 1048576,
    min: 1024,
    max: 1073741824,
    doc: "Largest request body in bytes (413 above)",
  },
  "max-json-depth": {
    kind: "int",
    env: "TESSERA_MAX_JSON_DEPTH",
    default: 64,
    min: 2,
    max: 1000,
    doc: "Deepest JSON nesting accepted (400 input-too-deep above)",
  },
  "max-wait-seconds": {
    kind: "int",
    env: "TESSERA_MAX_WAIT_SECONDS",
    default: 60,
    min: 0,
    max: 3600,
    doc: "Cap on Prefer: wait and onPending=synchronous",
  },
  "max-waits-per-tenant": {
    kind: "int",
    env: "TESSERA_MAX_WAITS_PER_TENANT",
    default: 100,
    min: 0,
    max: 1000000,
    doc: "Requests of one tenant held by Prefer: wait or onPending=synchronous at once; more are answered at once, unheld",
  },
  "max-waits": {
    kind: "int",
    env: "TESSERA_MAX_WAITS",
    default: 10000,
    min: 0,
    max: 10000000,
    doc: "Held waits in this process, all tenants together; more are answered at once, unheld",
  },
  "max-header-bytes": {
    kind: "int",
    env: "TESSERA_MAX_HEADER_BYTES",
    default: 16384,
    min: 1024,
    max: 1048576,
    doc: "Largest request head (request line and headers) in bytes (431 above)",
  },
  "headers-timeout": {
    kind: "int",
    env: "TESSERA_HEADERS_TIMEOUT",
    default: 10000,
    min: 100,
    max: 3600000,
    doc: "Milliseconds a client has to send a request's headers; the connection is closed after (slowloris)",
  },
  "request-timeout": {
    kind: "int",
    env: "TESSERA_REQUEST_TIMEOUT",
    default: 30000,
    min: 0,
    max: 3600000,
    doc: "Milliseconds a client has to send a whole request (headers and body; 0: no limit); waits for the answer are not counted",
  },
  "keep-alive-timeout": {
    kind: "int",
    env: "TESSERA_KEEP_ALIVE_TIMEOUT",
    default: 5000,
    min: 100,
    max: 3600000,
    doc: "Milliseconds an idle keep-alive connection (or HTTP/2 session) stays open",
  },
  "max-timeout-seconds": {
    kind: "int",
    env: "TESSERA_MAX_TIMEOUT_SECONDS",
    default: 604800,
    min: 1,
    max: 31536000,
    doc: "Largest timeoutSeconds a job may ask for",
  },
  "retry-after-min": {
    kind: "int",
    env: "TESSERA_RETRY_AFTER_MIN",
    default: 1,
    min: 1,
    max: 3600,
    doc: "Smallest Retry-After the status monitor sends",
  },
  "retry-after-max": {
    kind: "int",
    env: "TESSERA_RETRY_AFTER_MAX",
    default: 60,
    min: 1,
    max: 86400,
    doc: "Largest Retry-After the status monitor sends",
  },
  "signed-url-ttl": {
    kind: "int",
    env: "TESSERA_SIGNED_URL_TTL",
    default: 3600,
    min: 10,
    max: 86400,
    doc: "Lifetime of signed result URLs, seconds",
  },
  "result-retention": {
    kind: "int",
    env: "TESSERA_RESULT_RETENTION",
    default: 86400,
    min: 1,
    max: 31536000,
    doc: "Seconds a finished job's result is kept (then 410)",
  },
  "job-retention": {
    kind: "int",
    env: "TESSERA_JOB_RETENTION",
    default: 604800,
    min: 1,
    max: 31536000,
    doc: "Seconds a finished job's record is kept (then 404)",
  },
  "inline-result-bytes": {
    kind: "int",
    env: "TESSERA_INLINE_RESULT_BYTES",
    default: 65536,
    min: 0,
    max: 16777216,
    doc: "Results up to this size stay in the database; larger go to blob files",
  },
  "max-result-bytes": {
    kind: "int",
    env: "TESSERA_MAX_RESULT_BYTES",
    default: 67108864,
    min: 1,
    max: 4294967296,
    doc: "Largest result a job may store (the job fails above)",
  },
  "callback-allow": {
    kind: "list",
    env: "TESSERA_CALLBACK_ALLOW",
    default: [],
    doc: "Hosts or CIDRs callbacks may reach although private or loopback (repeatable; comma-separated)",
  },
  "callback-verify": {
    kind: "bool",
    env: "TESSERA_CALLBACK_VERIFY",
    default: false,
    doc: "Ping every callback URL (signed webhook.ping) before accepting a job",
  },
  "callback-retry-hours": {
    kind: "int",
    env: "TESSERA_CALLBACK_RETRY_HOURS",
    default: 24,
    min: 0,
    max: 720,
    doc: "How long a callback is retried before it is recorded as failed",
  },
  "callback-retry-base-ms": {
    kind: "int",
    env: "TESSERA_CALLBACK_RETRY_BASE_MS",
    default: 5000,
    min: 10,
    max: 3600000,
    doc: "First callback retry delay; doubles per attempt, with full jitter",
  },
  "callback-timeout-ms": {
    kind: "int",
    env: "TESSERA_CALLBACK_TIMEOUT_MS",
    default: 15000,
    min: 100,
    max: 30000,
    doc: "Connect-to-answer limit of one callback attempt",
  },
  "callback-concurrency": {
    kind: "int",
    env: "TESSERA_CALLBACK_CONCURRENCY",
    default: 16,
    min: 1,
    max: 1000,
    doc: "Callback deliveries in flight per process",
  },
  "callback-per-tenant": {
    kind: "int",
    env: "TESSERA_CALLBACK_PER_TENANT",
    default: 4,
    min: 1,
    max: 1000,
    doc: "Callback deliveries in flight per tenant, so one tenant's slow receivers never starve the others",
  },
  "rate-submit": {
    kind: "int",
    env: "TESSERA_RATE_SUBMIT",
    default: 2000,
    min: 0,
    max: 1000000,
    doc: "Submits per second per tenant (per address when unauthenticated), all nodes together on PostgreSQL; 0: off",
  },
  "rate-poll": {
    kind: "int",
    env: "TESSERA_RATE_POLL",
    default: 5000,
    min: 0,
    max: 1000000,
    doc: "Status, result and list requests per second per tenant (per address when unauthenticated); 0: off",
  },
  "rate-window": {
    kind: "int",
    env: "TESSERA_RATE_WINDOW",
    default: 1,
    min: 1,
    max: 3600,
    doc: "Rate-limit window in seconds: a tenant may spend rate × window requests in each window (the burst)",
  },
  "poll-budget": {
    kind: "bool",
    env: "TESSERA_POLL_BUDGET",
    default: undefined,
    doc: "429 a status poll of a job that comes before the Retry-After this node gave for it (default: on; off with --dev and in createTessera)",
  },
  "max-queued-per-tenant": {
    kind: "int",
    env: "TESSERA_MAX_QUEUED_PER_TENANT",
    default: 100000,
    min: 0,
    max: 1000000000,
    doc: "Queued jobs a tenant may have before submits get 429 quota-exceeded; 0: unlimited",
  },
  "auth-cache-ms": {
    kind: "int",
    env: "TESSERA_AUTH_CACHE_MS",
    default: 1000,
    min: 0,
    max: 60_000,
    doc: "How long a node trusts a verified API key without asking the store (a revoked key stops working within it); 0: ask every time",
  },
  "trust-proxy": {
    kind: "bool",
    env: "TESSERA_TRUST_PROXY",
    default: false,
    doc: "Believe X-Forwarded-* headers",
  },
  "cors-origin": {
    kind: "list",
    env: "TESSERA_CORS_ORIGIN",
    default: [],
    doc: "Browser origin (https://app.example.com) allowed to call the API cross-origin (repeatable; comma-separated)",
  },
  "metrics-auth": {
    kind: "bool",
    env: "TESSERA_METRICS_AUTH",
    default: false,
    doc: "Require an API key for /metrics",
  },
  "log-level": {
    kind: "string",
    env: "TESSERA_LOG_LEVEL",
    default: "info",
    doc: "pino log level (fatal, error, warn, info, debug, trace, silent)",
  },
} satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

export interface Config {
  port: number;
  host: string;
  /** PEM files; both or neither. */
  tlsCert: string | null;
  tlsKey: string | null;
  db: string;
  dbPoolSize: number;
  dbNoPrepare: boolean;
  dbListenUrl: string | null;
  /** Command tasks alive at once, all types together. */
  maxTasks: number;
  /** Parent of each server's own dir of command-task attempts. */
  taskDir: string;
  dbSchema: string;
  role: "api" | "worker" | "all";
  demo: boolean;
  dev: boolean;
  jobs: readonly string[];
  publicUrl: string | null;
  secrets: readonly string[];
  concurrency: number;
  prefetch: number;
  leaseMs: number;
  heartbeatMs: number;
  pollIntervalMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  bodyLimit: number;
  maxJsonDepth: number;
  maxWaitSeconds: number;
  /** Concurrent held waits; beyond them a wait preference is not applied. */
  maxWaitsPerTenant: number;
  maxWaits: number;
  maxHeaderBytes: number;
  /** Milliseconds; see the OPTIONS table. */
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  maxTimeoutSeconds: number;
  retryAfterMin: number;
  retryAfterMax: number;
  signedUrlTtl: number;
  resultRetention: number;
  jobRetention: number;
  inlineResultBytes: number;
  maxResultBytes: number;
  callbackAllow: readonly string[];
  callbackVerify: boolean;
  callbackRetryHours: number;
  callbackRetryBaseMs: number;
  callbackTimeoutMs: number;
  callbackConcurrency: number;
  callbackPerTenant: number;
  /** Per tenant and second; 0: off. Tenants may have their own (`tessera tenants limits`). */
  rateSubmit: number;
  ratePoll: number;
  rateWindow: number;
  /** Per-job early-poll 429s (`tessera serve`: on unless `--dev`; embedded: off unless set). */
  pollBudget: boolean;
  /** 0: unlimited. */
  maxQueuedPerTenant: number;
  trustProxy: boolean;
  authCacheMs: number;
  /** Origins answered with CORS headers (exact match); empty: no CORS. */
  corsOrigins: readonly string[];
  metricsAuth: boolean;
  logLevel: string;
}

export class ConfigError extends TesseraError {
  override name = "ConfigError";
}

type Raw = Partial<Record<OptionName, string | boolean | string[]>>;

function convert(name: OptionName, spec: OptionSpec, value: string | boolean | string[]): unknown {
  const label = `--${name}`;
  switch (spec.kind) {
    case "bool":
      if (typeof value === "boolean") return value;
      if (/^(1|true|yes|on)$/i.test(String(value))) return true;
      if (/^(0|false|no|off|)$/i.test(String(value))) return false;
      throw new ConfigError(`${label} must be true or false, got "${String(value)}"`);
    case "int": {
      const text = String(value);
      if (!/^-?\d+$/.test(text)) throw new ConfigError(`${label} must be an integer, got "${text}"`);
      const n = Number(text);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`${label} must be between ${spec.min} and ${spec.max}, got ${n}`);
      }
      return n;
    }
    case "list":
      return (Array.isArray(value) ? value : String(value).split(","))
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case "string":
      return String(value);
  }
}

/** Flags win over the environment, which wins over defaults. */
export function loadConfig(flags: Raw, env: Record<string, string | undefined>): Config {
  const v = {} as Record<OptionName, unknown>;
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    const given = flags[name] ?? env[spec.env] ?? (name === "db" ? env.TESSERA_DATABASE_URL : undefined);
    v[name] = given === undefined ? spec.default : convert(name, spec, given);
  }
  const leaseMs = v["lease-ms"] as number;
  const heartbeatMs = (v["heartbeat-ms"] as number | undefined) ?? Math.max(100, Math.floor(leaseMs / 3));
  if (heartbeatMs >= leaseMs) throw new ConfigError("--heartbeat-ms must be shorter than --lease-ms");
  if ((v["retry-after-min"] as number) > (v["retry-after-max"] as number)) {
    throw new ConfigError("--retry-after-min must not exceed --retry-after-max");
  }
  const publicUrl = v["public-url"] as string | undefined;
  if (publicUrl !== undefined && !/^https?:\/\/[^/?#]+$/.test(publicUrl.replace(/\/$/, ""))) {
    throw new ConfigError(
      `--public-url must be an http(s) origin such as https://jobs.example.com, got "${publicUrl}"`,
    );
  }
  const corsOrigins = (v["cors-origin"] as string[]).map((o) => o.replace(/\/$/, ""));
  for (const o of corsOrigins) {
    if (!/^https?:\/\/[^/?#\s]+$/.test(o))
      throw new ConfigError(`--cors-origin must be an origin such as https://app.example.com, got "${o}"`);
  }
  const tlsCert = v["tls-cert"] as string | undefined;
  const tlsKey = v["tls-key"] as string | undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(
      `--tls-cert and --tls-key go together: ${tlsCert === undefined ? "--tls-key" : "--tls-cert"} was given alone`,
    );
  }
  const requestTimeout = v["request-timeout"] as number;
  const headersTimeout = v["headers-timeout"] as number;
  if (requestTimeout > 0 && headersTimeout > requestTimeout)
    throw new ConfigError("--headers-timeout must not exceed --request-timeout");
  const dbListenUrl = v["db-listen-url"] as string | undefined;
  if (dbListenUrl !== undefined) {
    if (!isPostgresUrl(dbListenUrl))
      throw new ConfigError(`--db-listen-url must be a postgres:// URL, got "${dbListenUrl}"`);
    if (!isPostgresUrl(v.db as string))
      throw new ConfigError("--db-listen-url applies to PostgreSQL only: --db is not a postgres:// URL");
  }
  const role = v.role as string;
  if (role !== "api" && role !== "worker" && role !== "all")
    throw new ConfigError(`--role must be api, worker or all, got "${role}"`);
  const dev = v.dev as boolean;
  const secret = v.secret as string | undefined;
  if (secret !== undefined && secret.length < 32)
    throw new ConfigError("--secret must be at least 32 characters");
  if (secret === undefined && !dev) {
    throw new ConfigError(
      "a signing secret is required: set TESSERA_SECRET (32+ random characters), or run with --dev for local use",
    );
  }
  return Object.freeze({
    port: v.port as number,
    host: v.host as string,
    tlsCert: tlsCert ?? null,
    tlsKey: tlsKey ?? null,
    db: v.db as string,
    dbPoolSize: v["db-pool-size"] as number,
    dbNoPrepare: v["db-no-prepare"] as boolean,
    dbListenUrl: dbListenUrl ?? null,
    dbSchema: v["db-schema"] as string,
    role,
    demo: v.demo as boolean,
    dev,
    jobs: Object.freeze(v.jobs as string[]),
    publicUrl: publicUrl === undefined ? null : publicUrl.replace(/\/$/, ""),
    secrets: Object.freeze([
      ...(secret === undefined ? [] : [secret]),
      ...(v["previous-secrets"] as string[]),
    ]),
    concurrency: v.concurrency as number,
    maxTasks: (v["max-tasks"] as number | undefined) ?? availableParallelism(),
    taskDir: (v["task-dir"] as string | undefined) ?? join(tmpdir(), "tessera-tasks"),
    prefetch: v.prefetch as number,
    leaseMs,
    heartbeatMs,
    pollIntervalMs: v["poll-interval-ms"] as number,
    sweepIntervalMs: v["sweep-interval-ms"] as number,
    shutdownGraceMs: v["shutdown-grace-ms"] as number,
    bodyLimit: v["body-limit"] as number,
    maxJsonDepth: v["max-json-depth"] as number,
    maxWaitSeconds: v["max-wait-seconds"] as number,
    maxWaitsPerTenant: v["max-waits-per-tenant"] as number,
    maxWaits: v["max-waits"] as number,
    maxHeaderBytes: v["max-header-bytes"] as number,
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: v["keep-alive-timeout"] as number,
    maxTimeoutSeconds: v["max-timeout-seconds"] as number,
    retryAfterMin: v["retry-after-min"] as number,
    retryAfterMax: v["retry-after-max"] as number,
    signedUrlTtl: v["signed-url-ttl"] as number,
    resultRetention: v["result-retention"] as number,
    jobRetention: v["job-retention"] as number,
    inlineResultBytes: v["inline-result-bytes"] as number,
    maxResultBytes: v["max-result-bytes"] as number,
    callbackAllow: Object.freeze(v["callback-allow"] as string[]),
    callbackVerify: v["callback-verify"] as boolean,
    callbackRetryHours: v["callback-retry-hours"] as number,
    callbackRetryBaseMs: v["callback-retry-base-ms"] as number,
    callbackTimeoutMs: v["callback-timeout-ms"] as number,
    callbackConcurrency: v["callback-concurrency"] as number,
    callbackPerTenant: v["callback-per-tenant"] as number,
    rateSubmit: v["rate-submit"] as number,
    ratePoll: v["rate-poll"] as number,
    rateWindow: v["rate-window"] as number,
    pollBudget: (v["poll-budget"] as boolean | undefined) ?? !dev,
    maxQueuedPerTenant: v["max-queued-per-tenant"] as number,
    trustProxy: v["trust-proxy"] as boolean,
    authCacheMs: v["auth-cache-ms"] as number,
    corsOrigins: Object.freeze(corsOrigins),
    metricsAuth: v["metrics-auth"] as boolean,
    logLevel: v["log-level"] as string,
  });
}

/** Defaults for embedding (`createTessera`) and tests: the table's defaults plus overrides. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  const base = loadConfig({ dev: true }, {});
  return Object.freeze({ ...base, ...overrides });
}
