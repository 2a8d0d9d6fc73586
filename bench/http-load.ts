/**
 * Closed-loop HTTP load with autocannon: a warm-up run, then the measured run, with the
 * server process's CPU time over the measured run (the client shares this machine's cores, so
 * requests/s can be bounded by the client; CPU per request is not).
 */
import autocannon from "autocannon";
import type { Child } from "./children.js";

export interface LoadTarget {
  url: string;
  method: "GET" | "POST";
  body?: string;
}

export interface LoadSettings {
  connections: number;
  warmupSeconds: number;
  seconds: number;
}

export interface LoadResult {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Responses per status code. */
  statusCodes: Record<string, number>;
  seconds: number;
  /** Server CPU time (user + system) per response over the measured run, in microseconds. */
  serverCpuUsPerRequest: number;
  /** Server CPU time over the measured run as a share of one core (1 = one core busy). */
  serverCpuShare: number;
}

function fire(target: LoadTarget, connections: number, seconds: number): PromiseLike<autocannon.Result> {
  return autocannon({
    url: target.url,
    method: target.method,
    connections,
    duration: seconds,
    timeout: 10,
    ...(target.body === undefined
      ? {}
      : { body: target.body, headers: { "content-type": "application/json" } }),
  });
}

export async function measureLoad(
  server: Child,
  target: LoadTarget,
  settings: LoadSettings,
): Promise<LoadResult> {
  await fire(target, settings.connections, settings.warmupSeconds);
  const cpuBefore = await server.cpuMicros();
  const result = await fire(target, settings.connections, settings.seconds);
  const cpu = (await server.cpuMicros()) - cpuBefore;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
  return {
    requestsPerSec: result.requests.total / result.duration,
    requests: result.requests.total,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.mean,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    seconds: result.duration,
    serverCpuUsPerRequest: cpu / result.requests.total,
    serverCpuShare: cpu / 1e6 / result.duration,
  };
}
