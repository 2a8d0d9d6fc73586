import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../src/client/index.js";
import { parseAppliedWait } from "../../src/client/retry-after.js";
import { retryPolicy, withRetries } from "../../src/client/retry.js";

describe("Retry-After parsing", () => {
  it("reads delay-seconds", () => {
    expect(parseRetryAfter("0")).toBe(0);
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter("120")).toBe(120_000);
  });

  it("reads an IMF-fixdate relative to now, a past date as 0", () => {
    const now = Date.UTC(2015, 9, 21, 7, 27, 58);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now)).toBe(2000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now + 60_000)).toBe(0);
  });

  it("ignores anything malformed instead of guessing", () => {
    for (const bad of [
      "",
      " 3",
      "3 ",
      "-1",
      "+3",
      "1.5",
      "1e3",
      "3s",
      "soon",
      "Wednesday, 21-Oct-15 07:28:00 GMT",
      "Thu, 21 Oct 2015 07:28:00 GMT",
      "Sat, 31 Feb 2015 07:28:00 GMT",
      "Wed, 21 Oct 2015 07:28:00 UTC",
      "99999999999",
    ]) {
      expect(parseRetryAfter(bad), JSON.stringify(bad)).toBeUndefined();
    }
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it("reads Preference-Applied: wait=N", () => {
    expect(parseAppliedWait("wait=20")).toBe(20);
    expect(parseAppliedWait("respond-async, wait=5")).toBe(5);
    expect(parseAppliedWait("wait=0")).toBe(0);
    expect(parseAppliedWait(null)).toBeUndefined();
    expect(parseAppliedWait("wait=x")).toBeUndefined();
  });
});

describe("backoff", () => {
  const policy = { baseDelayMs: 1000, maxDelayMs: 30_000 };

  it("doubles the bound per retry (1 s, 2 s, 4 s, …) up to the cap, with full jitter below it", () => {
    const bounds = [1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelay(n, policy, () => 0.999_999));
    expect(bounds).toEqual([999, 1999, 3999, 7999, 15_999, 29_999, 29_999, 29_999]);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(2000);
  });

  it("gives up after the attempts, saying what happened, how often and how long", async () => {
    let tries = 0;
    const error = await withRetries(
      { method: "GET", url: "http://x/v1/jobs" },
      retryPolicy({ attempts: 3, baseDelayMs: 1 }),
      undefined,
      async () => {
        tries++;
        return { fault: "HTTP 503 (Service unavailable)", status: 503 };
      },
    ).catch((e: unknown) => e);
    expect(tries).toBe(3);
    expect(error).toMatchObject({
      name: "RetryExhaustedError",
      attempts: 3,
      lastStatus: 503,
      reason: "attempts",
    });
    expect(String(error)).toMatch(
      /GET http:\/\/x\/v1\/jobs: gave up after 3 attempts in \d+\.\d s .*HTTP 503/,
    );
  });

  it("gives up early when a wait would pass the deadline, and honours Retry-After over the backoff", async () => {
    const waits: number[] = [];
    let t = 0;
    const clock = { now: () => t, random: () => 0.5 };
    const error = await withRetries(
      { method: "POST", url: "u" },
      retryPolicy({ attempts: 10, deadlineMs: 10_000, baseDelayMs: 0 }),
      undefined,
      async (n) => {
        if (n > 1) waits.push(t);
        t += 4000; // each attempt "takes" 4 s
        return { fault: "HTTP 429", status: 429, retryAfterMs: 0 };
      },
      clock,
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "deadline", attempts: 3 });
    expect(waits).toHaveLength(2);
  });

  it("rejects a bad policy when the client is built", () => {
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
    expect(() => retryPolicy({ deadlineMs: -1 })).toThrow(RangeError);
  });
});
