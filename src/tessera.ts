import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import { AuditLog } from "./audit.js";
import { defaultConfig, type Config } from "./config.js";
import type { JobDefinition } from "./jobs/define.js";
import { JobRegistry } from "./jobs/registry.js";
import { Metrics } from "./http/metrics.js";
import { RetryAfterEstimator } from "./http/retry-after.js";
import { buildServer } from "./http/server.js";
import { reloadTls } from "./http/tls.js";
import { signingKey, UrlSigner } from "./http/signed-url.js";
import { WaitRegistry } from "./http/wait.js";
import { AddressPolicy } from "./callbacks/address-policy.js";
import { CallbackDeliverer } from "./callbacks/deliverer.js";
import { openStore } from "./store/open.js";
import type { Store } from "./store/store.js";
import { createDeadlineSweeper } from "./worker/maintenance/deadline-sweeper.js";
import { createLeaseSweeper } from "./worker/maintenance/lease-sweeper.js";
import type { PeriodicTask } from "./worker/maintenance/periodic.js";
import { createRetentionPurge } from "./worker/maintenance/retention-purge.js";
import { WorkerRuntime } from "./worker/runtime.js";
import { isCommandJob } from "./worker/command/define-command-job.js";
import { EventDispatcher } from "./events/dispatcher.js";
import { EventBridge } from "./events/bridge/event-bridge.js";
import { triggerRule, withLifecycle, type LifecycleRule } from "./events/lifecycle.js";
import { compensationJob } from "./sagas/compensation-job.js";
import { isSaga } from "./sagas/define-saga.js";
import { findExecutable, openTaskHost } from "./worker/command/task-host.js";

/** The tenant every request belongs to in `--dev` (no authentication). */
export const DEV_TENANT = "dev";

const SWEEP_BATCH = 500;
/** Events the relay publishes per round trip to the store (and to the broker). */
const RELAY_BATCH = 256;
const RETENTION_INTERVAL_MS = 60_000;

export interface TesseraOptions {
  /**
   * Job types this instance accepts and runs, as `defineJob`/`defineCommandJob` return them: a
   * typed `run(input: { … })` needs no cast (every input is checked against the type's `input`
   * schema before `run` sees it).
   */
  jobs: readonly JobDefinition<never, unknown>[];
  /** Settings; anything not given takes the documented default (`--dev` unless a secret is set). */
  config?: Partial<Config>;
  /** The job store. @default the store `config.db` names: a SQLite file or a postgres:// URL */
  store?: Store;
  logger?: Logger;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

export interface Tessera {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly config: Config;
  readonly registry: JobRegistry;
  readonly worker: WorkerRuntime;
  readonly metrics: Metrics;
  /** Start workers and background services, then listen. Returns the address. */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /** Start workers and background services without listening (embedding in another server). */
  start(): Promise<void>;
  /** Graceful stop: stop claiming, let jobs finish within the grace period, release the rest. */
  close(): Promise<void>;
  /**
   * Re-read `tlsCert`/`tlsKey` for new connections (`tessera serve` does on SIGHUP); open ones
   * are kept. False, with the old pair still in use, when the files are bad or TLS is off.
   */
  reloadTls(): boolean;
}

/**
 * Build a Tessera instance: the HTTP API, the workers and the background services over one store.
 *
 * @example
 * const tessera = await createTessera({ jobs: [resize], config: { secret: process.env.SECRET } });
 * await tessera.listen({ port: 3000 });
 */
export async function createTessera(options: TesseraOptions): Promise<Tessera> {
  const config = defaultConfig({
    ...(options.config?.secrets && options.config.secrets.length > 0 ? { dev: false } : {}),
    ...options.config,
  });
  if (!config.dev && config.secrets.length === 0)
    throw new Error("a signing secret is required unless dev is on");
  const logger = options.logger ?? pino({ level: config.logLevel, name: "tessera" });
  const now = options.now ?? Date.now;
  const store =
    options.store ??
    (await openStore({
      db: config.db,
      inlineResultBytes: config.inlineResultBytes,
      poolSize: config.dbPoolSize,
      preparedStatements: !config.dbNoPrepare,
      ...(config.dbListenUrl !== null ? { listenUrl: config.dbListenUrl } : {}),
      schema: config.dbSchema,
      logger,
    }));
  // Command jobs run their processes under this server's task host: its dir, its cap, its stop.
  // Widened for the registry: it hands each `run` only inputs its own schema accepted.
  const jobs = options.jobs as readonly JobDefinition[];
  const commandJobs = jobs.filter(isCommandJob);
  const runsJobs = config.role !== "api" && config.concurrency > 0;
  const taskHost =
    commandJobs.length > 0 && runsJobs ? await openTaskHost(config.taskDir, process.env) : null;
  // Command jobs run under the task host; sagas keep their journal in this store.
  const bound = jobs.map((d) =>
    taskHost && isCommandJob(d) ? d.withHost(taskHost) : isSaga(d) ? d.withStore(store) : d,
  );
  const sagas = new Map(bound.filter(isSaga).map((d) => [d.type, d]));
  const registry = new JobRegistry(
    // With sagas comes the job that compensates them (when canceled, or when an operator asks).
    sagas.size > 0 ? [...bound, compensationJob(store, sagas) as JobDefinition] : bound,
  );
  const metrics = new Metrics();
  const estimator = new RetryAfterEstimator(config.retryAfterMin, config.retryAfterMax);
  const waits = new WaitRegistry(store, config.pollIntervalMs, (n) => metrics.waiters.set(n), {
    perTenant: config.maxWaitsPerTenant,
    total: config.maxWaits,
  });
  // In dev mode URLs are signed with a per-process secret: they die with the process.
  const secrets = config.secrets.length > 0 ? config.secrets : [crypto.randomUUID() + crypto.randomUUID()];
  const signer = new UrlSigner(secrets.map(signingKey), config.signedUrlTtl);
  const devTenantId = config.dev ? await store.ensureTenant({ name: DEV_TENANT, now: now() }) : null;

  // Jobs get lifecycle events (tessera.job.*) only when someone listens: the configuration says
  // so, or a trigger waits for them. A later listener (a webhook subscription, a bridge) is one
  // more rule here.
  const lifecycleRules: LifecycleRule[] = [
    () => config.lifecycleEvents,
    triggerRule(registry.definitions().flatMap((d) => d.on ?? [])),
  ];
  const submit: Store["submit"] = (params) =>
    worker.submit(withLifecycle(params, (job) => lifecycleRules.some((rule) => rule(job))));

  const worker = new WorkerRuntime({
    store,
    registry,
    logger,
    now,
    options: {
      concurrency: config.concurrency,
      prefetch: config.prefetch,
      leaseMs: config.leaseMs,
      heartbeatMs: config.heartbeatMs,
      pollIntervalMs: config.pollIntervalMs,
      maxResultBytes: config.maxResultBytes,
      ...(commandJobs.length > 0
        ? { sharedLimit: { types: new Set(commandJobs.map((d) => d.type)), limit: config.maxTasks } }
        : {}),
    },
    ...(taskHost ? { beforeRelease: () => taskHost.tasks.stopAll() } : {}),
    // Made below: called only once jobs run, after it exists.
    onEvents: (events) => dispatcher.dispatchCommitted(events),
    onAttemptFinished: (timing) => {
      estimator.observe(timing);
      metrics.observeAttempt(timing.type, timing.runMs, timing.queueWaitMs);
    },
  });
  metrics.countRunning = () => worker.runningCount;
  const dispatcher = new EventDispatcher({
    store,
    registry,
    config,
    submit,
    logger,
    now,
  });
  // With `--events`: kept events go out through the relay, triggers' events come in.
  const bridge = config.events
    ? new EventBridge({
        url: config.events,
        group: config.eventsGroup,
        store,
        dispatcher,
        logger,
        metrics,
        now,
        relay: {
          leaseMs: Math.min(config.leaseMs, 10_000),
          batchSize: RELAY_BATCH,
          pollMs: Math.min(1000, config.pollIntervalMs),
        },
      })
    : null;
  const minRetryDelay = Math.min(...registry.definitions().map((d) => d.retryDelayMs), 1000);
  const services: PeriodicTask[] = [
    createLeaseSweeper({
      store,
      logger,
      now,
      intervalMs: config.sweepIntervalMs,
      retryDelayMs: minRetryDelay,
      batchSize: SWEEP_BATCH,
    }),
    createDeadlineSweeper({ store, logger, now, intervalMs: config.sweepIntervalMs, batchSize: SWEEP_BATCH }),
    dispatcher.sweeper(config.sweepIntervalMs, SWEEP_BATCH),
    createRetentionPurge({
      store,
      logger,
      now,
      intervalMs: Math.min(RETENTION_INTERVAL_MS, config.resultRetention * 1000),
      resultRetentionMs: config.resultRetention * 1000,
      jobRetentionMs: config.jobRetention * 1000,
      batchSize: SWEEP_BATCH,
    }),
  ];

  const policy = new AddressPolicy(config.callbackAllow);
  const deliverer = new CallbackDeliverer({
    store,
    policy,
    signer,
    fallbackOrigin:
      config.publicUrl ?? `${config.tlsCert ? "https" : "http"}://${config.host}:${config.port}`,
    logger,
    metrics,
    now,
    options: {
      concurrency: config.callbackConcurrency,
      perTenant: config.callbackPerTenant,
      retryWindowMs: config.callbackRetryHours * 3_600_000,
      baseDelayMs: config.callbackRetryBaseMs,
      maxDelayMs: 6 * 3_600_000,
      pollIntervalMs: Math.min(1000, config.pollIntervalMs),
      limits: { timeoutMs: config.callbackTimeoutMs, maxResponseBytes: 65_536 },
    },
  });
  const callbacks = { policy, deliverer };
  const app = buildServer({
    config,
    store,
    submit,
    dispatcher,
    registry,
    signer,
    waits,
    estimator,
    metrics,
    logger,
    audit: new AuditLog(logger, { now }),
    devTenantId,
    now,
    callbacks,
  });
  let started = false;
  let stopDispatching: (() => Promise<void>) | null = null;

  const tessera: Tessera = {
    app,
    store,
    config,
    registry,
    worker,
    metrics,
    async start() {
      if (started) return;
      started = true;
      if (config.dev)
        logger.warn("DEVELOPMENT MODE: authentication is OFF; every request acts as tenant 'dev'");
      // API nodes only answer HTTP; worker nodes run jobs and the sweepers (safe on many nodes).
      for (const job of taskHost ? commandJobs : []) {
        const executable = job.command[0]!;
        if (findExecutable(executable, job.env.PATH ?? process.env.PATH) === null)
          logger.warn(
            { type: job.type, executable },
            "command job: its executable is not on the task's PATH; its jobs will fail with command-not-found",
          );
      }
      // Every role: an API node's cancels keep lifecycle events too, and it dispatches them.
      stopDispatching = dispatcher.listen(SWEEP_BATCH);
      if (config.role !== "api") {
        for (const service of services) service.start();
        worker.start();
        deliverer.start();
      }
      // Up when start returns, unless the broker is down (then it opens once it is back).
      await bridge?.start();
      await app.ready();
    },
    async listen(listenOptions = {}) {
      await tessera.start();
      return app.listen({ port: listenOptions.port ?? config.port, host: listenOptions.host ?? config.host });
    },
    reloadTls() {
      return reloadTls(app.server, config, logger);
    },
    async close() {
      await bridge?.close();
      await worker.stop(config.shutdownGraceMs);
      await taskHost?.close();
      await deliverer.stop();
      await Promise.all(services.map((s) => s.stop()));
      await stopDispatching?.();
      waits.close();
      await app.close();
      await store.close();
    },
  };
  return tessera;
}
