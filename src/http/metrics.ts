import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricValueWithName,
} from "prom-client";

/** Prometheus metrics of one Tessera instance (its own registry: several can share a process). */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: "tessera_http_requests_total",
    help: "HTTP requests answered, by route and status code",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "tessera_http_request_duration_seconds",
    help: "Time to answer HTTP requests (waits included)",
    labelNames: ["method", "route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [this.registry],
  });
  readonly jobsSubmitted = new Counter({
    name: "tessera_jobs_submitted_total",
    help: "Jobs accepted (202 after commit), by type",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  /** Attempts finished by this process's workers: counted in place, see AttemptMetrics. */
  private readonly attempts = new AttemptMetrics(this.registry);
  /** What the running gauge reports; the worker sets it (read at scrape, not per job). */
  countRunning: () => number = () => 0;
  readonly running: Gauge = new Gauge({
    name: "tessera_jobs_running",
    help: "Handlers running in this process",
    registers: [this.registry],
    collect: (): void => this.running.set(this.countRunning()),
  });
  readonly callbackAttempts = new Counter({
    name: "tessera_callback_attempts_total",
    help: "Callback delivery attempts by outcome (delivered, retry, stopped, failed)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly callbackLatency = new Histogram({
    name: "tessera_callback_latency_seconds",
    help: "Time for a receiver to answer a callback",
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: "tessera_rate_limited_total",
    help: "Requests answered 429, by policy (submit, poll) and reason (rate, poll-budget, quota)",
    labelNames: ["policy", "reason"] as const,
    registers: [this.registry],
  });
  readonly waiters = new Gauge({
    name: "tessera_waiters",
    help: "Requests held open by Prefer: wait or onPending=synchronous",
    registers: [this.registry],
  });

  readonly eventsPublished = new Counter({
    name: "tessera_events_published_total",
    help: "Events the outbox relay published to the broker (--events), confirmed by it",
    registers: [this.registry],
  });
  readonly eventsConsumed = new Counter({
    name: "tessera_events_consumed_total",
    help: "Events from the broker, by outcome: kept (and their jobs started), retried, refused (dead-lettered), passed (no trigger here)",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  /** How long the oldest event not yet published has waited (ms), or null; the relay sets it. */
  relayLag: () => Promise<number | null> = () => Promise.resolve(null);
  readonly relayLagSeconds: Gauge = new Gauge({
    name: "tessera_events_relay_lag_seconds",
    help: "Age of the oldest event the outbox relay has not published yet (0: none waits); only with --events",
    registers: [this.registry],
    collect: async (): Promise<void> => {
      const lag = await this.relayLag().catch(() => null);
      this.relayLagSeconds.set(lag === null ? 0 : lag / 1000);
    },
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "tessera_" });
  }

  /** One finished attempt of `type`: its run time and how long it waited past its runAt. */
  observeAttempt(type: string, runMs: number, queueWaitMs: number): void {
    this.attempts.observe(type, runMs, queueWaitMs);
  }
}

const RUN_BUCKETS = [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800];
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300];

/** One job type's attempts: bucket counts (not cumulative), sums in seconds. */
interface TypeTally {
  count: number;
  run: Float64Array;
  runSum: number;
  wait: Float64Array;
  waitSum: number;
}

/**
 * The attempt series (`tessera_job_attempts_total`, `tessera_job_attempt_duration_seconds`,
 * `tessera_job_queue_wait_seconds`, by type), tallied in place and turned into series when the
 * registry is read. prom-client's labelled `observe` builds and hashes a labels object on every
 * call: ~0.6 µs an attempt for the three, a twentieth of a no-op job's worker time, and the
 * garbage with it. Here an attempt costs a map lookup and a few increments.
 */
class AttemptMetrics {
  private readonly tallies = new Map<string, TypeTally>();

  constructor(registry: Registry) {
    const series = (
      name: string,
      help: string,
      type: "counter" | "histogram",
      values: () => MetricValueWithName<string>[],
    ) => ({
      // The registry may rename a counter (OpenMetrics drops `_total`): get() reads it here.
      name,
      help,
      type,
      aggregator: "sum" as const,
      get() {
        return { name: this.name, help, type, aggregator: "sum", values: values() };
      },
      reset: () => this.tallies.clear(),
    });
    const metrics = [
      series(
        "tessera_job_attempts_total",
        "Attempts finished by this process's workers, by type",
        "counter",
        () => [...this.tallies].map(([type, t]) => ({ labels: { type }, value: t.count })),
      ),
      series(
        "tessera_job_attempt_duration_seconds",
        "Run time of attempts in this process, by type",
        "histogram",
        () => this.histogram("tessera_job_attempt_duration_seconds", RUN_BUCKETS, (t) => [t.run, t.runSum]),
      ),
      series("tessera_job_queue_wait_seconds", "Time from runAt to claim, by type", "histogram", () =>
        this.histogram("tessera_job_queue_wait_seconds", WAIT_BUCKETS, (t) => [t.wait, t.waitSum]),
      ),
    ];
    // A registry takes any object that reports its series through get(), as prom-client's own do.
    for (const metric of metrics) registry.registerMetric(metric as unknown as Counter);
  }

  observe(type: string, runMs: number, queueWaitMs: number): void {
    let t = this.tallies.get(type);
    if (!t) {
      t = {
        count: 0,
        run: new Float64Array(RUN_BUCKETS.length + 1),
        runSum: 0,
        wait: new Float64Array(WAIT_BUCKETS.length + 1),
        waitSum: 0,
      };
      this.tallies.set(type, t);
    }
    const run = runMs / 1000;
    const wait = queueWaitMs / 1000;
    t.count++;
    t.run[bucketOf(RUN_BUCKETS, run)]!++;
    t.runSum += run;
    t.wait[bucketOf(WAIT_BUCKETS, wait)]!++;
    t.waitSum += wait;
  }

  /** The series of one histogram, as prom-client's Histogram reports them (cumulative `le`). */
  private histogram(
    name: string,
    bounds: readonly number[],
    pick: (t: TypeTally) => [Float64Array, number],
  ): MetricValueWithName<string>[] {
    const values: MetricValueWithName<string>[] = [];
    for (const [type, tally] of this.tallies) {
      const [counts, sum] = pick(tally);
      let cumulative = 0;
      bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { le, type }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", type }, value: tally.count });
      values.push({ metricName: `${name}_sum`, labels: { type }, value: sum });
      values.push({ metricName: `${name}_count`, labels: { type }, value: tally.count });
    }
    return values;
  }
}

/** The index of the first bound at or above `value`; past the last: the +Inf bucket. */
function bucketOf(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i++;
  return i;
}
