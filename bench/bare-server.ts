/**
 * Child process: the reference server. Plain Fastify answering the same routes as Tessera's
 * submit and status monitor with a 202 and a job-like JSON body of similar size and headers,
 * and no store behind it.
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyReply } from "fastify";
import { runChild, toParent } from "./protocol.js";

function pendingJob(id: string, base: string) {
  const now = new Date().toISOString();
  return {
    id,
    type: "bench.noop",
    status: "queued",
    progress: null,
    attempt: 0,
    maxAttempts: 1,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    deadlineAt: now,
    error: null,
    metadata: {},
    links: { self: `${base}/v1/jobs/${id}`, cancel: `${base}/v1/jobs/${id}/cancel` },
  };
}

runChild(async () => {
  const app = Fastify({ logger: false });
  const answer = (reply: FastifyReply, base: string, id: string) =>
    reply
      .code(202)
      .header("location", `${base}/v1/jobs/${id}`)
      .header("retry-after", "1")
      .header("cache-control", "no-store")
      .send(pendingJob(id, base));
  app.post("/v1/jobs", async (request, reply) => answer(reply, `http://${request.host}`, randomUUID()));
  app.get("/v1/jobs/:id", async (request, reply) =>
    answer(reply, `http://${request.host}`, (request.params as { id: string }).id),
  );
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  process.on("SIGTERM", () => void app.close().finally(() => process.exit(0)));
  toParent({ kind: "ready", url });
});
