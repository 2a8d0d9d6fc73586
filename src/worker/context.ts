import type { Logger } from "pino";
import type { JobContext } from "../jobs/define.js";
import type { ClaimedJob } from "../store/store.js";

/** Build the `ctx` a handler receives for one attempt. */
export function createJobContext(params: {
  job: ClaimedJob;
  /** Made on first read (see Attempt). */
  signal: () => AbortSignal;
  logger: Logger;
  progress: (percent: number | null, message: string | null) => void;
}): JobContext {
  const { job } = params;
  // Built on first use: most handlers never log, and a child logger costs more than the no-op job.
  let child: Logger | undefined;
  const log = () => (child ??= params.logger.child({ jobId: job.id, type: job.type, attempt: job.attempt }));
  return {
    jobId: job.id,
    type: job.type,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    get signal() {
      return params.signal();
    },
    deadlineAt: new Date(job.deadlineAt),
    metadata: Object.freeze({ ...job.metadata }),
    progress(percent, message) {
      const clamped = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : null;
      params.progress(clamped, message === undefined ? null : String(message).slice(0, 1000));
    },
    log: {
      info: (msg, data) => log().info(data ?? {}, msg),
      warn: (msg, data) => log().warn(data ?? {}, msg),
      error: (msg, data) => log().error(data ?? {}, msg),
    },
  };
}
