/**
 * The job state machine, drawn once (see docs/ARCHITECTURE.md):
 *
 *   queued -> running -> succeeded | failed | canceled | timed_out
 *              ^   |
 *              +---+  (a failed attempt with attempts left goes back to queued with a later runAt)
 *
 * queued and running can also move straight to canceled (cancel) or timed_out (deadline).
 */
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "canceled", "timed_out"] as const;

export type JobStatus = (typeof JOB_STATUSES)[number];
export type ActiveStatus = "queued" | "running";
export type TerminalStatus = Exclude<JobStatus, ActiveStatus>;

const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ["running", "canceled", "timed_out"],
  running: ["queued", "succeeded", "failed", "canceled", "timed_out"],
  succeeded: [],
  failed: [],
  canceled: [],
  timed_out: [],
};

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(status: JobStatus): status is TerminalStatus {
  return TRANSITIONS[status].length === 0;
}

export function isJobStatus(value: unknown): value is JobStatus {
  return typeof value === "string" && (JOB_STATUSES as readonly string[]).includes(value);
}
