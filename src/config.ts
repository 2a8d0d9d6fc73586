/**
 * Configuration: command-line flags, then `TESSERA_*` environment variables, then defaults,
 * validated once into a frozen object. Nothing else in Tessera reads `process.env`.
 * The flags, their variables, defaults and docs come from one table (`config/options.ts`).
 */
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { TesseraError } from "./jobs/errors.js";
import { OPTIONS, type OptionName, type OptionSpec } from "./config/options.js";

export { OPTIONS, type OptionName } from "./config/options.js";

/** A `--db` (or `--db-listen-url`) that names PostgreSQL rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

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
  /** The broker events are relayed to and consumed from (`nats://…`, `amqp://…`); null: none. */
  events: string | null;
  /** The consumer group (durable consumer, queue) of this service's nodes on the broker. */
  eventsGroup: string;
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
  /**
   * Every job gets the lifecycle events `tessera.job.<status>`; without it, only jobs whose end
   * a trigger listens to.
   */
  lifecycleEvents: boolean;
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
  const events = v.events as string | undefined;
  if (events !== undefined && !/^(nats|amqps?):\/\/[^/?#]+/.test(events))
    throw new ConfigError(`--events must be a nats:// or amqp:// URL, got "${events}"`);
  const eventsGroup = v["events-group"] as string;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(eventsGroup))
    throw new ConfigError("--events-group must be 1-64 of A-Z, a-z, 0-9, _ and -");
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
    events: events ?? null,
    eventsGroup,
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
    lifecycleEvents: v["lifecycle-events"] as boolean,
    logLevel: v["log-level"] as string,
  });
}

/** Defaults for embedding (`createTessera`) and tests: the table's defaults plus overrides. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  const base = loadConfig({ dev: true }, {});
  return Object.freeze({ ...base, ...overrides });
}
