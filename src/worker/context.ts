import type { Logger } from "pino";
import type { JobContext, JobLogger } from "../jobs/define.js";
import type { ClaimedJob } from "../store/store.js";

/**
 * Build the `ctx` a handler receives for one attempt. What a short handler may never touch (its
 * signal, the deadline as a Date, the metadata copy, a child logger, which costs more than a
 * no-op job) is made on first use. Every member is an own property, so a wrapper may spread
 * `ctx` (`{ ...ctx, log }`) or destructure `progress` and `log`.
 */
export function createJobContext(params: {
  job: ClaimedJob;
  /** Where the signal comes from (the attempt makes its AbortController on first read). */
  source: { readonly signal: AbortSignal };
  logger: Logger;
  progress: (percent: number | null, message: string | null) => void;
}): JobContext {
  const { job, source } = params;
  let deadline: Date | undefined;
  let metadata: Readonly<Record<string, string>> | undefined;
  let log: JobLogger | undefined;
  return {
    jobId: job.id,
    type: job.type,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    get signal() {
      return source.signal;
    },
    get deadlineAt() {
      return (deadline ??= new Date(job.deadlineAt));
    },
    get metadata() {
      return (metadata ??= Object.freeze({ ...job.metadata }));
    },
    progress(percent, message) {
      const clamped = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : null;
      params.progress(clamped, message === undefined ? null : String(message).slice(0, 1000));
    },
    get log() {
      return (log ??= jobLogger(params.logger, job));
    },
  };
}

function jobLogger(logger: Logger, job: ClaimedJob): JobLogger {
  const child = logger.child({ jobId: job.id, type: job.type, attempt: job.attempt });
  return {
    info: (msg, data) => child.info(data ?? {}, msg),
    warn: (msg, data) => child.warn(data ?? {}, msg),
    error: (msg, data) => child.error(data ?? {}, msg),
  };
}
