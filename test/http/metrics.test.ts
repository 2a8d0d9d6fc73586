import { Counter, Histogram, Registry, type OpenMetricsContentType } from "prom-client";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/http/metrics.js";

/** The series of `text` whose names start with `prefix`, one per line. */
const seriesOf = (text: string, prefix: string) =>
  text
    .split("\n")
    .filter(
      (line) =>
        line.startsWith(prefix) || line.startsWith(`# HELP ${prefix}`) || line.startsWith(`# TYPE ${prefix}`),
    );

describe("attempt metrics", () => {
  it("are exposed exactly as prom-client's own counter and histograms would expose them", async () => {
    const samples: [string, number, number][] = [
      ["a", 0, 0],
      ["a", 3, 1],
      ["b", 250, 4],
      ["a", 2_000_000, 700_000],
      ["b", 10, 1000],
      ["a", 1, 5],
    ];
    const metrics = new Metrics(false);
    for (const [type, runMs, waitMs] of samples) metrics.observeAttempt(type, runMs, waitMs);

    // The reference: prom-client's metrics, given every sample.
    const registry = new Registry();
    const count = new Counter({
      name: "tessera_job_attempts_total",
      help: "Attempts finished by this process's workers, by type",
      labelNames: ["type"],
      registers: [registry],
    });
    const duration = new Histogram({
      name: "tessera_job_attempt_duration_seconds",
      help: "Run time of attempts in this process, by type",
      labelNames: ["type"],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
      registers: [registry],
    });
    const wait = new Histogram({
      name: "tessera_job_queue_wait_seconds",
      help: "Time from runAt to claim, by type",
      labelNames: ["type"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300],
      registers: [registry],
    });
    for (const [type, runMs, waitMs] of samples) {
      count.inc({ type });
      duration.observe({ type }, runMs / 1000);
      wait.observe({ type }, waitMs / 1000);
    }

    const expectSameSeries = async (counter: string) => {
      const ours = await metrics.registry.metrics();
      const theirs = await registry.metrics();
      for (const prefix of [
        counter,
        "tessera_job_attempt_duration_seconds",
        "tessera_job_queue_wait_seconds",
      ]) {
        const series = seriesOf(ours, prefix);
        expect(series.length).toBeGreaterThan(2);
        expect(series).toEqual(seriesOf(theirs, prefix));
      }
    };
    await expectSameSeries("tessera_job_attempts_total");
    // In OpenMetrics too, where the registry renames counters.
    const open = (r: Registry) => r as unknown as Registry<OpenMetricsContentType>;
    open(metrics.registry).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    open(registry).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    await expectSameSeries("tessera_job_attempts");
    // As JSON too (what a cluster aggregator reads), and reset clears them.
    const json = (await metrics.registry.getMetricsAsJSON()).find(
      (m) => m.name === "tessera_job_attempts", // renamed by OpenMetrics, as prom-client does
    );
    expect(json).toMatchObject({
      type: "counter",
      values: [
        { labels: { type: "a" }, value: 4 },
        { labels: { type: "b" }, value: 2 },
      ],
    });
    metrics.registry.resetMetrics();
    expect(seriesOf(await metrics.registry.metrics(), "tessera_job_attempts_total{")).toEqual([]);
    expect(seriesOf(await metrics.registry.metrics(), "tessera_job_attempt_duration_seconds_count{")).toEqual(
      [],
    );
  });
});
