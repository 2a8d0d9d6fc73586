import { setTimeout as sleep } from "node:timers/promises";
import { defineJob, type JobDefinition } from "../jobs/define.js";
import { JobError } from "../jobs/errors.js";

// Demo types retry after about a second, so a failing demo job ends within seconds.
const RETRY_DELAY_MS = 1000;

/** `demo.echo`: the result is the input. */
export const echo = defineJob({
  type: "demo.echo",
  description: "Returns its input as the result",
  input: {},
  timeoutSeconds: 60,
  maxAttempts: 1,
  retryDelayMs: RETRY_DELAY_MS,
  run: (input: unknown) => input,
});

/** `demo.sleep { ms, result? }`: sleeps abortably, reporting progress. */
export const sleepJob = defineJob({
  type: "demo.sleep",
  description: "Sleeps `ms` milliseconds (abortably) reporting progress; returns `result` or { sleptMs }",
  input: {
    type: "object",
    properties: { ms: { type: "integer", minimum: 0, maximum: 86_400_000 }, result: {} },
    required: ["ms"],
    additionalProperties: false,
  },
  timeoutSeconds: 3600,
  maxAttempts: 3,
  retryDelayMs: RETRY_DELAY_MS,
  async run(input: { ms: number; result?: unknown }, ctx) {
    const steps = Math.max(1, Math.min(10, Math.floor(input.ms / 100)));
    for (let step = 1; step <= steps; step++) {
      await sleep(input.ms / steps, undefined, { signal: ctx.signal });
      ctx.progress((step / steps) * 100, `slept ${Math.round((input.ms * step) / steps)} of ${input.ms} ms`);
    }
    return input.result !== undefined ? input.result : { sleptMs: input.ms };
  },
});

/** `demo.fail { message, status?, ms? }`: fails after `ms`; a 4xx status is a client error. */
export const fail = defineJob({
  type: "demo.fail",
  description:
    "Fails after `ms` ms with `message`; with a 4xx `status` at once (no retry), else retried up to maxAttempts",
  input: {
    type: "object",
    properties: {
      message: { type: "string", maxLength: 1000 },
      status: { type: "integer", minimum: 400, maximum: 599 },
      ms: { type: "integer", minimum: 0, maximum: 3_600_000 },
    },
    required: ["message"],
    additionalProperties: false,
  },
  timeoutSeconds: 300,
  maxAttempts: 3,
  retryDelayMs: RETRY_DELAY_MS,
  async run(input: { message: string; status?: number; ms?: number }, ctx) {
    if (input.ms) await sleep(input.ms, undefined, { signal: ctx.signal });
    if (input.status !== undefined && input.status < 500) throw new JobError(input.status, input.message);
    throw new Error(input.message);
  },
});

/** `demo.flaky { failTimes }`: fails the first failTimes attempts, then succeeds. */
export const flaky = defineJob({
  type: "demo.flaky",
  description: "Fails the first `failTimes` attempts, then succeeds with { attempts }",
  input: {
    type: "object",
    properties: { failTimes: { type: "integer", minimum: 0, maximum: 99 } },
    required: ["failTimes"],
    additionalProperties: false,
  },
  timeoutSeconds: 300,
  maxAttempts: 5,
  retryDelayMs: RETRY_DELAY_MS,
  run(input: { failTimes: number }, ctx) {
    if (ctx.attempt <= input.failTimes)
      throw new Error(`planned failure ${ctx.attempt} of ${input.failTimes}`);
    return { attempts: ctx.attempt };
  },
});

export const demoJobs: readonly JobDefinition[] = [echo, sleepJob, fail, flaky] as JobDefinition[];
