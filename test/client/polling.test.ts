/**
 * Polling honours the server: count the polls for jobs of known duration (never time them).
 * The server is configured to say a fixed Retry-After, so the expected count is exact.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createClient, type FetchLike } from "../../src/client/index.js";
import { setTimeout as sleep } from "node:timers/promises";
import { defineJob, type JobDefinition } from "../../src/jobs/define.js";
import { demoJobs, sleepJob } from "../../src/demo/jobs.js";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A fetch that records every status poll (GET of the status monitor) and its Prefer header. */
function countingFetch(): { fetch: FetchLike; polls: { prefer: string | null; at: number }[] } {
  const polls: { prefer: string | null; at: number }[] = [];
  return {
    polls,
    fetch: (url, init) => {
      if (init.method === "GET" && /\/v1\/jobs\/[^/?]+(\?|$)/.test(url)) {
        polls.push({ prefer: new Headers(init.headers).get("prefer"), at: Date.now() });
      }
      return fetch(url, init);
    },
  };
}

/** Sleeps without reporting progress: only its end answers a held poll. */
const quietJob = defineJob({
  type: "test.quiet",
  input: { type: "object", properties: { ms: { type: "integer" }, result: {} }, required: ["ms"] },
  async run(input: { ms: number; result?: unknown }, ctx) {
    await sleep(input.ms, undefined, { signal: ctx.signal });
    return input.result;
  },
});

describe("polling", () => {
  it("waits what Retry-After says between polls (2 s for a 5 s job: 3 polls, not 5 or 50)", async () => {
    server = await startServer({ dev: true, config: { retryAfterMin: 2, retryAfterMax: 2 } });
    const { fetch, polls } = countingFetch();
    const client = createClient({ baseUrl: server.url, fetch, poll: { longPoll: false } });
    const job = await client.submit(sleepJob, { ms: 5000, result: "done" });
    expect(await job.result()).toBe("done");
    // Submit at t=0 says 2 s; polls at about 2, 4 and 6 s; the third is the 303 to the result.
    expect(polls.length).toBeGreaterThanOrEqual(3);
    expect(polls.length).toBeLessThanOrEqual(4);
    expect(polls.every((p) => p.prefer === null)).toBe(true);
  });

  it("bounds Retry-After by maxDelayMs", async () => {
    server = await startServer({ dev: true, config: { retryAfterMin: 30, retryAfterMax: 30 } });
    const { fetch, polls } = countingFetch();
    const client = createClient({ baseUrl: server.url, fetch, poll: { longPoll: false, maxDelayMs: 1000 } });
    const job = await client.submit(sleepJob, { ms: 2500 });
    await job.result();
    // 30 s asked, 1 s allowed: the job is seen done within a couple of polls of its end.
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.length).toBeLessThanOrEqual(5);
  });

  it("long-polls with Prefer: wait when the server allows it: one held poll for a 3 s job", async () => {
    server = await startServer({
      dev: true,
      jobs: [quietJob as JobDefinition],
      config: { retryAfterMin: 10, retryAfterMax: 10 },
    });
    const { fetch, polls } = countingFetch();
    const client = createClient({ baseUrl: server.url, fetch });
    const started = Date.now();
    const job = await client.submit(quietJob, { ms: 3000, result: "held" });
    expect(await job.result()).toBe("held");
    expect(polls).toHaveLength(1);
    expect(polls[0]!.prefer).toBe("wait=10");
    // Sleeping Retry-After would have taken 10 s; the held poll answers when the job ends.
    expect(Date.now() - started).toBeLessThan(9000);
  });

  it("a held poll also answers when progress changes, at most about once a second: onProgress sees it", async () => {
    server = await startServer({
      dev: true,
      jobs: demoJobs,
      config: { retryAfterMin: 10, retryAfterMax: 10 },
    });
    const { fetch, polls } = countingFetch();
    const client = createClient({ baseUrl: server.url, fetch });
    // Progress every 400 ms for 4 s.
    const job = await client.submit(sleepJob, { ms: 4000, result: "done" });
    const seen: (number | null)[] = [];
    expect(await job.result({ onProgress: (j) => seen.push(j.progress?.percent ?? null) })).toBe("done");
    const percents = [...new Set(seen.filter((p): p is number => p !== null))];
    // Without early answers one poll of 10 s would show none of the steps between.
    expect(percents.length).toBeGreaterThanOrEqual(2);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    // Each held poll lasted a second at least (the last ends with the job): 4 to 5, not 10.
    expect(polls.length).toBeGreaterThanOrEqual(3);
    expect(polls.length).toBeLessThanOrEqual(6);
    for (let i = 1; i < polls.length; i++)
      expect(polls[i]!.at - polls[i - 1]!.at).toBeGreaterThanOrEqual(950);
  });

  it("falls back to sleeping when the server does not hold polls", async () => {
    server = await startServer({
      dev: true,
      config: { retryAfterMin: 2, retryAfterMax: 2, maxWaitSeconds: 0 },
    });
    const { fetch, polls } = countingFetch();
    const client = createClient({ baseUrl: server.url, fetch });
    const job = await client.submit(sleepJob, { ms: 5000 });
    await job.result();
    // One early poll learns that waits are not applied; then every 2 s as told.
    expect(polls[0]!.prefer).toBe("wait=2");
    expect(polls.slice(1).every((p) => p.prefer === null)).toBe(true);
    expect(polls.length).toBeGreaterThanOrEqual(3);
    expect(polls.length).toBeLessThanOrEqual(5);
  });

  it("wait() ends with the final representation, without fetching the result", async () => {
    server = await startServer({ dev: true });
    const calls: string[] = [];
    const client = createClient({
      baseUrl: server.url,
      fetch: (url, init) => (calls.push(url), fetch(url, init)),
    });
    const job = await client.submit(sleepJob, { ms: 500 });
    const final = await job.wait();
    expect(final.status).toBe("succeeded");
    expect(final.links.result).toMatch(/\/result\?/);
    expect(calls.every((u) => !u.includes("/result"))).toBe(true);
  });
});
