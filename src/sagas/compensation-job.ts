/**
 * The job that undoes a saga which ended without success: submitted when a saga is canceled
 * (before the cancel, so a crash between the two still compensates), and by an operator to
 * retry the compensation of a saga that ended `saga-compensation-failed` or timed out. Its
 * writes go to the saga's journal, fenced by its own lease; the saga stays `canceled`
 * (`failed`, `timed_out`) and its `steps` show what was compensated.
 */
import { defineJob, type JobContext, type JobDefinition } from "../jobs/define.js";
import { JobError } from "../jobs/errors.js";
import { isTerminal } from "../jobs/states.js";
import type { JobRecord, Store } from "../store/store.js";
import { attemptOf } from "../worker/context.js";
import type { SagaDefinition } from "./define-saga.js";

/** The compensation job's type, registered by createTessera when it runs sagas. */
export const SAGA_COMPENSATION_TYPE = "tessera.saga.compensate";

/** Its own idempotency key for a canceled saga: one compensation job per saga, however often canceled. */
export const compensationKey = (sagaId: string): string => `compensate:${sagaId}`;

export interface CompensationResult {
  saga: string;
  /** The saga's status when its compensation began. */
  status: JobRecord["status"];
  /** The steps undone (by this job or before it), newest first. */
  compensated: string[];
}

const WHY: Partial<Record<JobRecord["status"], string>> = {
  canceled: "the saga was canceled",
  timed_out: "the saga timed out",
};

export function compensationJob(
  store: Store,
  sagas: ReadonlyMap<string, SagaDefinition>,
): JobDefinition<{ saga: string }, CompensationResult> {
  return defineJob({
    type: SAGA_COMPENSATION_TYPE,
    description: "Undo what an ended saga did: its steps' compensations, newest first",
    input: {
      type: "object",
      properties: { saga: { type: "string", minLength: 1, maxLength: 200 } },
      required: ["saga"],
      additionalProperties: false,
    },
    timeoutSeconds: 3600,
    maxAttempts: 10,
    retryDelayMs: 1000,
    async run(input, ctx: JobContext) {
      const { tenantId } = attemptOf(ctx);
      let saga = await store.get({ tenantId, id: input.saga });
      if (!saga) throw new JobError(404, `no saga ${input.saga} here`);
      const definition = sagas.get(saga.type);
      // A node of a rolling deploy that does not run this saga type yet: another attempt may.
      if (!definition) throw new Error(`this node does not run sagas of type ${saga.type}`);
      if (!isTerminal(saga.status)) {
        // Asked for before the saga's cancel committed (or instead of it): cancel it first, so
        // no attempt of it can record another step while its steps are undone.
        const outcome = await store.cancel({ tenantId, id: saga.id, now: Date.now() });
        if (outcome.kind === "not-found") throw new JobError(404, `no saga ${input.saga} here`);
        saga = outcome.job;
      }
      if (saga.status === "succeeded") return { saga: saga.id, status: saga.status, compensated: [] };
      const why = WHY[saga.status] ?? `the saga failed: ${saga.error?.detail ?? "no detail"}`;
      const compensated = await definition.undo(ctx, saga, why);
      return { saga: saga.id, status: saga.status, compensated };
    },
  });
}
