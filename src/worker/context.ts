import type { Logger } from "pino";
import type { JobContext, JobLogger } from "../jobs/define.js";
import type { ClaimedJob } from "../store/store.js";

/**
 * The `ctx` a handler receives for one attempt. One is built per attempt, so what a short
 * handler may never touch (its signal, the deadline as a Date, the metadata copy, a child
 * logger, which costs more than a no-op job) is made on first use. `progress` and `log` stay
 * safe to destructure.
 */
export class AttemptContext implements JobContext {
  readonly jobId: string;
  readonly type: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  private deadline: Date | undefined;
  private frozenMetadata: Readonly<Record<string, string>> | undefined;
  private jobLogger: JobLogger | undefined;

  constructor(
    private readonly job: ClaimedJob,
    /** Where the signal comes from (the attempt makes its AbortController on first read). */
    private readonly source: { readonly signal: AbortSignal },
    private readonly logger: Logger,
    private readonly report: (percent: number | null, message: string | null) => void,
  ) {
    this.jobId = job.id;
    this.type = job.type;
    this.attempt = job.attempt;
    this.maxAttempts = job.maxAttempts;
  }

  get signal(): AbortSignal {
    return this.source.signal;
  }

  get deadlineAt(): Date {
    return (this.deadline ??= new Date(this.job.deadlineAt));
  }

  get metadata(): Readonly<Record<string, string>> {
    return (this.frozenMetadata ??= Object.freeze({ ...this.job.metadata }));
  }

  readonly progress = (percent: number, message?: string): void => {
    const clamped = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : null;
    this.report(clamped, message === undefined ? null : String(message).slice(0, 1000));
  };

  get log(): JobLogger {
    if (!this.jobLogger) {
      const child = this.logger.child({ jobId: this.job.id, type: this.job.type, attempt: this.job.attempt });
      this.jobLogger = {
        info: (msg, data) => child.info(data ?? {}, msg),
        warn: (msg, data) => child.warn(data ?? {}, msg),
        error: (msg, data) => child.error(data ?? {}, msg),
      };
    }
    return this.jobLogger;
  }
}
