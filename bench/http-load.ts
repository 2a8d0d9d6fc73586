/** Closed-loop HTTP load with autocannon: a warm-up run, then the measured run. */
import autocannon from "autocannon";

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

export async function measureLoad(target: LoadTarget, settings: LoadSettings): Promise<LoadResult> {
  await fire(target, settings.connections, settings.warmupSeconds);
  const result = await fire(target, settings.connections, settings.seconds);
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
  };
}
