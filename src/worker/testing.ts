import type { JobContext, JobDefinition } from "../jobs/define.js";

/**
 * Run a handler once with a fake context, for unit tests of job definitions: no store, no
 * server. Progress reports and emitted events are collected; pass `signal` to test cancellation.
 *
 * @example
 * const { result, progress } = await runJobOnce(resize, { url: "…" });
 */
export async function runJobOnce<I, O>(
  definition: JobDefinition<I, O>,
  input: I,
  options: { attempt?: number; signal?: AbortSignal; metadata?: Record<string, string> } = {},
): Promise<{
  result: Awaited<O>;
  progress: { percent: number; message: string | undefined }[];
  emitted: { type: string; data: unknown; subject?: string }[];
}> {
  const progress: { percent: number; message: string | undefined }[] = [];
  const emitted: { type: string; data: unknown; subject?: string }[] = [];
  const noop = () => undefined;
  const ctx: JobContext = {
    jobId: "00000000-0000-4000-8000-000000000000",
    type: definition.type,
    attempt: options.attempt ?? 1,
    maxAttempts: definition.maxAttempts,
    signal: options.signal ?? new AbortController().signal,
    deadlineAt: new Date(Date.now() + definition.timeoutSeconds * 1000),
    metadata: options.metadata ?? {},
    progress: (percent, message) => progress.push({ percent, message }),
    emit: (type, data, emitOptions) =>
      emitted.push({
        type,
        data: data ?? null,
        ...(emitOptions?.subject ? { subject: emitOptions.subject } : {}),
      }),
    log: { info: noop, warn: noop, error: noop },
  };
  const result = await definition.run(input, ctx);
  return { result, progress, emitted };
}
