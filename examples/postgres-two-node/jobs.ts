/**
 * One job type for a cluster: it sleeps a little and says which node ran it, so a run shows
 * the work spread over the nodes.
 *
 *   NODE_NAME=a tessera serve --jobs examples/postgres-two-node/jobs.ts
 */
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { defineJob } from "tessera";

/** The node's name: NODE_NAME, else host and process id. */
const node = process.env.NODE_NAME ?? `${hostname()}:${process.pid}`;

export const where = defineJob({
  type: "cluster.where",
  description: "Sleeps `ms` milliseconds, then returns `n` and the name of the node that ran it",
  input: {
    type: "object",
    properties: { n: { type: "integer" }, ms: { type: "integer", minimum: 0, maximum: 60_000 } },
    required: ["n"],
    additionalProperties: false,
  },
  timeoutSeconds: 120,
  async run(input: { n: number; ms?: number }, ctx) {
    await sleep(input.ms ?? 300, undefined, { signal: ctx.signal });
    return { n: input.n, ranOn: node };
  },
});
