/**
 * Two Tessera nodes, one database: submit every job to node A, then follow each one on node B
 * (its status, a long poll that ends when whichever node runs it finishes, its result from a
 * URL signed by B) and count which node ran what.
 *
 *   NODE_A=http://127.0.0.1:3001 NODE_B=http://127.0.0.1:3002 TESSERA_API_KEY=tsk_… \
 *     npx tsx examples/postgres-two-node/demo.ts
 *
 * Environment: NODE_A, NODE_B (the two nodes), TESSERA_API_KEY (a key of one tenant; keys are
 * in the database, so it works on both), JOBS (how many, default 20), JOB_MS (each job's
 * length, default 300). Prints one JSON line per job, then a summary; exits 1 if any job
 * disagrees between the nodes.
 */
import { createClient } from "tessera/client";

const nodeA = process.env.NODE_A ?? "http://127.0.0.1:3001";
const nodeB = process.env.NODE_B ?? "http://127.0.0.1:3002";
const apiKey = process.env.TESSERA_API_KEY;
const count = Number(process.env.JOBS ?? 20);
const ms = Number(process.env.JOB_MS ?? 300);

const a = createClient({ baseUrl: nodeA, apiKey });
const b = createClient({ baseUrl: nodeB, apiKey });

// 1. Submit everything to A. While A's workers are busy the rest wait in the shared queue,
//    and B's idle workers (woken by a NOTIFY) claim them.
const submitted = await Promise.all(
  Array.from({ length: count }, (_, n) => a.submit("cluster.where", { n, ms })),
);
console.error(`submitted ${submitted.length} jobs to ${nodeA}`);

// 2. Follow each job on B only: B long-polls its status (Prefer: wait, ended by a NOTIFY when
//    the job finishes on either node) and follows the 303 to a result URL B signed.
const ranOn: Record<string, number> = {};
let disagreements = 0;
await Promise.all(
  submitted.map(async (job, n) => {
    const result = await b.getHandle<{ n: number; ranOn: string }>(job.id).result();
    // Both nodes read the same row: the same status and the same finish time.
    const [onA, onB] = await Promise.all([a.get(job.id), b.get(job.id)]);
    const agree =
      result.n === n &&
      onA.status === "succeeded" &&
      onB.status === onA.status &&
      onB.finishedAt === onA.finishedAt;
    if (!agree) disagreements++;
    ranOn[result.ranOn] = (ranOn[result.ranOn] ?? 0) + 1;
    console.log(
      JSON.stringify({ id: job.id, n, submittedTo: "A", readFrom: "B", ranOn: result.ranOn, agree }),
    );
  }),
);

console.log(JSON.stringify({ jobs: count, ranOn, disagreements }));
process.exit(disagreements === 0 ? 0 : 1);
