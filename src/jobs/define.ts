import { triggersOf, type EventTrigger, type TriggerSpec } from "../events/triggers.js";
import type { JobStatus } from "./states.js";

/** A JSON Schema object (draft 2020-12 subset understood by Ajv). */
export type JsonSchema = Record<string, unknown>;

/** Minimal structured logger handed to handlers (pino-compatible). */
export interface JobLogger {
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
  error(msg: string, data?: Record<string, unknown>): void;
}

/**
 * What a handler gets besides its input.
 *
 * `signal` fires (and `signal.reason` says which) when:
 * - the job is canceled (`POST …/cancel` or `DELETE`),
 * - the job passes its `deadlineAt` (it becomes `timed_out`),
 * - this worker lost the job's lease (heartbeats failed; another worker may run it),
 * - the worker shuts down and the grace period ran out (the job is released to the queue).
 * Whatever the handler returns after the signal fired is discarded.
 */
export interface JobContext {
  readonly jobId: string;
  readonly type: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly signal: AbortSignal;
  readonly deadlineAt: Date;
  readonly metadata: Readonly<Record<string, string>>;
  /** Report progress (0–100) and a short message; writes are coalesced, latest wins. */
  progress(percent: number, message?: string): void;
  /**
   * Emit an event (a CloudEvent of `type` with `data`, its subject this job's id unless given):
   * kept in the same commit as this attempt's success, never before it, and not at all if the
   * attempt fails; the jobs whose triggers match it start then. At most 100 per attempt.
   */
  emit(type: string, data?: unknown, options?: EmitOptions): void;
  readonly log: JobLogger;
}

export interface EmitOptions {
  /** @default the job's id */
  subject?: string;
}

export interface JobDefinition<I = unknown, O = unknown> {
  readonly type: string;
  readonly description: string;
  /** JSON Schema of the input; checked before the job is queued. */
  readonly input: JsonSchema;
  /** Default `timeoutSeconds` for jobs of this type (deadline counted from submission). */
  readonly timeoutSeconds: number;
  readonly maxAttempts: number;
  /** At most this many jobs of this type run at once in one process. */
  readonly concurrency: number | undefined;
  /** Base delay of the exponential retry backoff, in milliseconds. */
  readonly retryDelayMs: number;
  /** Largest input accepted at submit, as compact UTF-8 JSON (413 above); undefined: only `--body-limit`. */
  readonly maxInputBytes?: number | undefined;
  /** The events that start a job of this type (its input: the event); none when absent. */
  readonly on?: readonly EventTrigger[];
  readonly run: (input: I, ctx: JobContext) => Promise<O> | O;
}

export interface DefineJobOptions<I, O> {
  type: string;
  description?: string;
  input: JsonSchema;
  /** @default 300 */
  timeoutSeconds?: number;
  /** @default 3 */
  maxAttempts?: number;
  /** Per-process concurrency limit for this type. @default unlimited (the process limit) */
  concurrency?: number;
  /** @default 1000 */
  retryDelayMs?: number;
  /**
   * Largest `input` accepted at submit, measured as compact JSON in UTF-8 bytes; larger is
   * `413 payload-too-large`. @default no limit of its own (the request's `--body-limit`)
   */
  maxInputBytes?: number;
  /**
   * Start a job of this type for each event of that type (`POST /v1/events`), once per event
   * id, with the event (a CloudEvent) as its input: `"orders.created"`, or `{ type, filter }`
   * to match attributes too (`{ subject: { prefix: "eu-" } }`), or a list of them.
   */
  on?: TriggerSpec;
  run: (input: I, ctx: JobContext) => Promise<O> | O;
}

const TYPE_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/**
 * Define a job type. The returned object is plain data plus `run`; register it with
 * `createTessera({ jobs: [...] })` or export it from a module given to `--jobs`.
 *
 * @example
 * export const resize = defineJob({
 *   type: "image.resize",
 *   input: { type: "object", properties: { url: { type: "string" } }, required: ["url"] },
 *   async run(input: { url: string }, ctx) { ctx.progress(50, "resizing"); return { ok: true }; },
 * });
 */
export function defineJob<I, O>(options: DefineJobOptions<I, O>): JobDefinition<I, O> {
  if (!TYPE_NAME.test(options.type)) {
    throw new TypeError(
      `job type "${options.type}" must match ${TYPE_NAME} (lower case letters, digits, . _ -)`,
    );
  }
  const timeoutSeconds = options.timeoutSeconds ?? 300;
  const maxAttempts = options.maxAttempts ?? 3;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
    throw new TypeError(`job type "${options.type}": timeoutSeconds must be an integer >= 1`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
    throw new TypeError(`job type "${options.type}": maxAttempts must be an integer 1-100`);
  }
  if (
    options.concurrency !== undefined &&
    (!Number.isInteger(options.concurrency) || options.concurrency < 1)
  ) {
    throw new TypeError(`job type "${options.type}": concurrency must be an integer >= 1`);
  }
  if (
    options.maxInputBytes !== undefined &&
    (!Number.isSafeInteger(options.maxInputBytes) || options.maxInputBytes < 1)
  ) {
    throw new TypeError(`job type "${options.type}": maxInputBytes must be an integer >= 1`);
  }
  return Object.freeze({
    type: options.type,
    description: options.description ?? "",
    input: options.input,
    timeoutSeconds,
    maxAttempts,
    concurrency: options.concurrency,
    retryDelayMs: options.retryDelayMs ?? 1000,
    maxInputBytes: options.maxInputBytes,
    ...(options.on !== undefined ? { on: triggersOf(options.type, options.on) } : {}),
    run: options.run,
  });
}

/** A job as the public API shows it (the contract's representation, minus links). */
export interface JobSummary {
  id: string;
  type: string;
  status: JobStatus;
}

/** Type helpers for sharing definitions with the client by `import type`. */
export type JobInput<D> = D extends JobDefinition<infer I, unknown> ? I : never;
// Read from `run`'s return type: `JobDefinition<unknown, infer O>` matches nothing (`run` takes
// its input contravariantly), and inferring O through `Promise<O> | O` widens `unknown` to `{} | null`.
export type JobOutput<D> = D extends JobDefinition<never, unknown> ? Awaited<ReturnType<D["run"]>> : never;
