import type { FastifyRequest } from "fastify";
import type { JobRepresentation, SagaStep } from "../jobs/representation.js";
import { isTerminal } from "../jobs/states.js";
import type { JobRecord, StepRecord } from "../store/store.js";
import type { ServerDeps } from "./server.js";

export type { JobRepresentation };
import { cancelPath, jobPath, origin, resultPath } from "./urls.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function signedResultUrl(
  base: string,
  job: JobRecord,
  deps: Pick<ServerDeps, "signer" | "now">,
): string {
  return `${base}${resultPath(job.id)}?${deps.signer.sign(resultPath(job.id), job.tenantId, deps.now())}`;
}

/** The representation for a request (links on the request's origin). */
export function represent(
  job: JobRecord,
  request: FastifyRequest,
  deps: ServerDeps,
  steps?: readonly StepRecord[],
): JobRepresentation {
  const representation = representAt(job, origin(request, deps.config), deps);
  if (steps) representation.steps = steps.map(toSagaStep);
  return representation;
}

function toSagaStep(step: StepRecord): SagaStep {
  return {
    name: step.name,
    kind: step.kind,
    status: step.status,
    attempts: step.attempts,
    startedAt: iso(step.startedAt)!,
    finishedAt: iso(step.finishedAt),
    error: step.compensationError ?? step.error,
    compensatedAt: iso(step.compensatedAt),
  };
}

/** The representation with links on `base` (callbacks build it without a request). */
export function representAt(
  job: JobRecord,
  base: string,
  deps: Pick<ServerDeps, "signer" | "now">,
): JobRepresentation {
  const terminal = isTerminal(job.status);
  const links: JobRepresentation["links"] = { self: `${base}${jobPath(job.id)}` };
  if (terminal) links.result = signedResultUrl(base, job, deps);
  else links.cancel = `${base}${cancelPath(job.id)}`;
  const hasProgress = job.progressPercent !== null || job.progressMessage !== null;
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    progress: hasProgress ? { percent: job.progressPercent, message: job.progressMessage } : null,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    createdAt: iso(job.createdAt)!,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    deadlineAt: iso(job.deadlineAt)!,
    error: job.error,
    metadata: job.metadata,
    links,
  };
}
