import { defineJob, type JobContext, type JobDefinition, type JsonSchema } from "../jobs/define.js";
import type { JobRecord, Store } from "../store/store.js";
import { attemptOf } from "../worker/context.js";
import { SagaRun, type SagaContext } from "./saga-run.js";

export interface DefineSagaOptions<I, O> {
  type: string;
  description?: string;
  input: JsonSchema;
  /** The whole saga's deadline, compensation included, counted from submission. @default 3600 */
  timeoutSeconds?: number;
  /**
   * Attempts of the saga: each one after a crash or a lost lease replays the journal. A step's
   * own failures are retried by the step (`maxAttempts` of `saga.step`), not here. @default 10
   */
  maxAttempts?: number;
  /** Per-process limit of sagas of this type running at once. */
  concurrency?: number;
  /** Steps a run is expected to take: when given, each finished step reports progress as the share done. */
  expectedSteps?: number;
  run: (input: I, saga: SagaContext) => Promise<O> | O;
}

export interface SagaDefinition<I = unknown, O = unknown> extends JobDefinition<I, O> {
  /** This definition with its journal in `store` (createTessera binds it to its store). */
  withStore(store: Store): SagaDefinition<I, O>;
  /**
   * Undo what the ended saga `saga` did: replay its code against its journal (in this
   * definition's store), running nothing new, then compensate its steps newest first, on behalf
   * of the attempt `ctx` is for (a compensation job's). The names of the steps undone, newest first.
   * @internal the compensation job's (src/sagas/compensation-job.ts)
   */
  undo(ctx: JobContext, saga: JobRecord, why: string): Promise<string[]>;
}

export function isSaga(definition: JobDefinition): definition is SagaDefinition {
  return typeof (definition as Partial<SagaDefinition>).withStore === "function";
}

/**
 * A saga: a job whose `run` is a sequence of durable steps, each recorded in the store before
 * the next, each with an optional compensation that undoes it when a later step fails for
 * good. After a crash the code is replayed from the start and the recorded steps return their
 * results without running again. Submitted, followed and canceled like any job.
 *
 * @example
 * export const placeOrder = defineSaga({
 *   type: "orders.place",
 *   input: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] },
 *   async run(input: { sku: string }, saga) {
 *     const order = await saga.step("create-order", () => orders.create(input.sku), {
 *       compensate: (o) => orders.cancel(o.id),
 *     });
 *     await saga.step("charge", (s) => payments.charge(order.id, { idempotencyKey: s.idempotencyKey }));
 *     return { orderId: order.id };
 *   },
 * });
 */
export function defineSaga<I, O>(options: DefineSagaOptions<I, O>): SagaDefinition<I, O> {
  const { expectedSteps } = options;
  if (expectedSteps !== undefined && (!Number.isInteger(expectedSteps) || expectedSteps < 1))
    throw new TypeError(`saga type "${options.type}": expectedSteps must be an integer >= 1`);
  const bind = (store: Store | null): SagaDefinition<I, O> => {
    const job = defineJob<I, O>({
      type: options.type,
      ...(options.description !== undefined ? { description: options.description } : {}),
      input: options.input,
      timeoutSeconds: options.timeoutSeconds ?? 3600,
      maxAttempts: options.maxAttempts ?? 10,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      retryDelayMs: 1000,
      run: async (input: I, ctx: JobContext) => {
        if (!store)
          throw new Error(`saga type "${options.type}" runs only under createTessera (it needs a store)`);
        const attempt = attemptOf(ctx);
        const journal = await store.listSteps({ tenantId: attempt.tenantId, jobId: attempt.id });
        const run = new SagaRun(store, ctx, attempt, journal, expectedSteps);
        try {
          const result = await options.run(input, run.context());
          await run.settle(); // the last step's outcome is recorded before the saga's
          return result;
        } catch (thrown) {
          return run.fail(thrown);
        }
      },
    });
    const undo = async (ctx: JobContext, saga: JobRecord, why: string): Promise<string[]> => {
      if (!store) throw new Error(`saga type "${options.type}" is compensated only under createTessera`);
      const journal = await store.listSteps({ tenantId: saga.tenantId, jobId: saga.id });
      const run = new SagaRun(store, ctx, attemptOf(ctx), journal, undefined, Date.now, {
        saga,
        replayOnly: true,
      });
      // Where the replay stopped (the end of the journal, the failed step, or the code's end).
      let stopped: unknown;
      try {
        await options.run(saga.input as I, run.context());
      } catch (thrown) {
        stopped = thrown;
      }
      return run.undo(stopped, why);
    };
    return Object.freeze({ ...job, withStore: (s: Store) => bind(s), undo });
  };
  return bind(null);
}
