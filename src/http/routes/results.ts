import type { FastifyInstance } from "fastify";
import { instanceOf, ProblemError } from "../problems.js";
import { authenticateLimited } from "../rate-limit.js";
import { sendResult } from "../result-response.js";
import type { ServerDeps } from "../server.js";
import { findJob } from "./jobs.js";

/**
 * The result resource. Reachable with credentials, or with none at a signed URL: a request
 * carrying `sig` (even empty) is judged by the signature alone, whatever else it carries.
 */
export function resultRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get("/v1/jobs/:id/result", { config: { auth: "self" } }, async (request, reply) => {
    const url = request.raw.url ?? "";
    const query = new URLSearchParams(url.includes("?") ? url.slice(url.indexOf("?") + 1) : "");
    if (query.has("sig")) {
      const tenant = deps.signer.verify({
        method: "GET",
        path: instanceOf(request),
        query,
        nowMs: deps.now(),
      });
      if (tenant === null)
        throw new ProblemError("signature-invalid", "the signature is missing, invalid or expired");
      request.tenantId = tenant;
      await deps.limiter?.admit(request, reply, "poll", tenant);
    } else {
      request.tenantId = await authenticateLimited(request, reply, deps);
    }
    const { id } = request.params as { id: string };
    const job = await findJob(request, deps, id);
    return sendResult(request, reply, job, deps);
  });
}
