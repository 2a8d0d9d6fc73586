/**
 * The job type the app hands to Tessera: composing a greeting "takes a while", so callers get a
 * `202` and a status URL instead of an open connection.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineJob, JobError } from "tessera";

export const greet = defineJob({
  type: "greeting.compose",
  description: "Composes a greeting for `name`, in a few steps, reporting progress",
  input: {
    type: "object",
    properties: { name: { type: "string", minLength: 1, maxLength: 100 } },
    required: ["name"],
    additionalProperties: false,
  },
  timeoutSeconds: 60,
  maxAttempts: 2,
  async run(input: { name: string }, ctx) {
    if (input.name.trim() === "") throw new JobError(422, "name is blank"); // the caller's fault: no retry
    for (let step = 1; step <= 3; step++) {
      await sleep(100, undefined, { signal: ctx.signal });
      ctx.progress((step / 3) * 100, `step ${step} of 3`);
    }
    return { message: `Hello, ${input.name.trim()}!`, jobId: ctx.jobId };
  },
});
