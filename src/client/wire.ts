/**
 * What travels on the wire (see CONTRACT.md): the job representation, problem details and
 * listing pages, as the client reads them. Types only.
 */
import type { JobRepresentation, SagaStep } from "../jobs/representation.js";
import type { JobStatus } from "../jobs/states.js";

export type { JobRepresentation, JobStatus, SagaStep };

/** An RFC 9457 problem, as every Tessera error answers. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  /** Validation issues: JSON Pointers into the request body. */
  errors?: { path: string; message: string }[];
  /** On a failed, timed-out or canceled job's result: the slug and the detail. */
  error?: { code: string; message: string };
  /** On `job-already-finished`: the job. */
  job?: JobRepresentation;
  [member: string]: unknown;
}

/** One page of `GET /v1/jobs`, newest first. */
export interface JobPage {
  items: JobRepresentation[];
  nextCursor: string | null;
}

export interface JobTypeInfo {
  type: string;
  description: string;
  inputSchema: Record<string, unknown>;
  timeoutSeconds: number;
  maxAttempts: number;
}

/** The slug of a problem type: its last path segment (`/problems/job-failed` -> `job-failed`). */
export function problemSlug(problem: Pick<Problem, "type">): string {
  return problem.type.slice(problem.type.lastIndexOf("/") + 1);
}

/** A parsed problem body if `value` looks like one, else null. */
export function asProblem(value: unknown): Problem | null {
  if (typeof value !== "object" || value === null) return null;
  const p = value as Partial<Problem>;
  return typeof p.type === "string" && typeof p.status === "number" ? (value as Problem) : null;
}
