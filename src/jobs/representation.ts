import type { JobProblem } from "./errors.js";
import type { JobStatus } from "./states.js";

/**
 * The contract's job representation, the same everywhere a job is shown (server answers,
 * callback bodies, the client): every field always present, `null` when not known.
 */
export interface JobRepresentation {
  id: string;
  type: string;
  status: JobStatus;
  progress: { percent: number | null; message: string | null } | null;
  /** 0 until the first attempt starts, then the current or last attempt's number. */
  attempt: number;
  maxAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  deadlineAt: string;
  /** The last failed attempt's problem; for a canceled or timed-out job, that problem. */
  error: JobProblem | null;
  metadata: Record<string, string>;
  /** `self` always; `cancel` while queued or running; `result` (signed) once terminal. */
  links: { self: string; cancel?: string; result?: string };
  /** A saga's steps, in order, on its status monitor (absent for other jobs and in listings). */
  steps?: SagaStep[];
}

/** One step of a saga as its status monitor shows it. */
export interface SagaStep {
  name: string;
  /** `step`, `sleep`, `call` or `event` (a `saga.waitForEvent`). */
  kind: "step" | "sleep" | "call" | "event";
  status: "running" | "succeeded" | "failed" | "compensated" | "compensation_failed";
  attempts: number;
  startedAt: string;
  finishedAt: string | null;
  /** Why it failed for good; for a failed compensation, why that failed. */
  error: JobProblem | null;
  compensatedAt: string | null;
}
