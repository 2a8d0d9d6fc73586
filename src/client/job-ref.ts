/**
 * Typed job types on the client. A job definition (`defineJob`) gives the input and result
 * types; pass it to `submit`/`run`, or, where the server's modules cannot be imported (a
 * browser bundle), name the type with `jobRef<typeof definition>("type")` and import the
 * definition with `import type` only.
 */
import type { JobDefinition } from "../jobs/define.js";
import type { BytesResult, CreatedResult } from "../jobs/result.js";

declare const INPUT: unique symbol;
declare const OUTPUT: unique symbol;

/** A job type's name with its input and result types attached (no runtime cost). */
export interface JobRef<I = unknown, O = unknown> {
  readonly type: string;
  readonly [INPUT]?: I;
  readonly [OUTPUT]?: O;
}

/** What `submit`, `run` accept as the job type: a name, a definition or a `JobRef`. */
export type JobType = string | { readonly type: string };

/** The input a job type takes (`unknown` for a bare name). */
export type InputOf<T> =
  T extends JobDefinition<infer I, unknown> ? I : T extends JobRef<infer I, unknown> ? I : unknown;

/** What a handler's return value becomes on the client. */
export type ClientResult<O> = unknown extends O ? unknown : ResultValue<O>;
type ResultValue<O> = O extends BytesResult
  ? Uint8Array
  : O extends CreatedResult
    ? unknown
    : O extends undefined | void
      ? null
      : O;

/** The result a job type yields on the client (`unknown` for a bare name). */
export type OutputOf<T> =
  T extends JobDefinition<never, unknown>
    ? ClientResult<Awaited<ReturnType<T["run"]>>>
    : T extends JobRef<unknown, infer O>
      ? O
      : unknown;

/**
 * Name a job type with the types of its definition, without importing the definition's code.
 *
 * @example
 * import type { reportJob } from "../server/jobs.js";
 * const report = jobRef<typeof reportJob>("report.generate");
 * const pdf = await client.run(report, { month: "2025-01" }); // typed input and result
 */
export function jobRef<D extends JobDefinition<never, unknown> | JobRef = JobRef>(
  type: string,
): JobRef<InputOf<D>, OutputOf<D>> {
  return { type };
}

export function typeName(job: JobType): string {
  return typeof job === "string" ? job : job.type;
}
