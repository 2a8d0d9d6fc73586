import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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
  readonly attempts = new Counter({
    name: "tessera_job_attempts_total",
    help: "Attempts finished by this process's workers, by type",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly attemptDuration = new Histogram({
    name: "tessera_job_attempt_duration_seconds",
    help: "Run time of attempts in this process, by type",
    labelNames: ["type"] as const,
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: "tessera_job_queue_wait_seconds",
    help: "Time from runAt to claim, by type",
    labelNames: ["type"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300],
    registers: [this.registry],
  });
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

  /** The attempt metrics' labelled children, kept per job type (not looked up on every attempt). */
  private readonly attemptsByType = new Map<
    string,
    { count: Counter.Internal; duration: Histogram.Internal<"type">; wait: Histogram.Internal<"type"> }
  >();

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "tessera_" });
  }

  /** One finished attempt of `type`: its run time and how long it waited past its runAt. */
  observeAttempt(type: string, runMs: number, queueWaitMs: number): void {
    let children = this.attemptsByType.get(type);
    if (!children) {
      children = {
        count: this.attempts.labels({ type }),
        duration: this.attemptDuration.labels({ type }),
        wait: this.queueWait.labels({ type }),
      };
      this.attemptsByType.set(type, children);
    }
    children.count.inc();
    children.duration.observe(runMs / 1000);
    children.wait.observe(queueWaitMs / 1000);
  }
}
