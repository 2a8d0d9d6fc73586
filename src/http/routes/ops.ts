import type { FastifyInstance } from "fastify";
import { PROBLEMS, type ProblemSlug } from "../../jobs/problems.js";
import { authenticate } from "../auth.js";
import { buildOpenApi } from "../openapi.js";
import { ProblemError } from "../problems.js";
import type { ServerDeps } from "../server.js";

export function opsRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get("/healthz", { config: { auth: "none" } }, async () => ({
    status: "ok",
    ...(deps.config.dev ? { mode: "development: authentication is OFF" } : {}),
  }));

  app.get("/readyz", { config: { auth: "none" } }, async () => {
    try {
      await deps.store.ping();
    } catch {
      throw new ProblemError(
        "service-unavailable",
        "the job store is not reachable",
        {},
        { "retry-after": "1" },
      );
    }
    return { status: "ready" };
  });

  app.get("/metrics", { config: { auth: "self" } }, async (request, reply) => {
    if (deps.config.metricsAuth) await authenticate(request, deps);
    reply.header("content-type", deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  let openapi: string | null = null;
  app.get("/openapi.json", { config: { auth: "none" } }, async (_request, reply) => {
    openapi ??= JSON.stringify(buildOpenApi(deps));
    return reply.header("content-type", "application/json").send(openapi);
  });

  // Problem types are dereferenceable: /problems/<slug> describes the slug.
  app.get("/problems/:slug", { config: { auth: "none" } }, async (request) => {
    const { slug } = request.params as { slug: string };
    if (!Object.hasOwn(PROBLEMS, slug)) throw new ProblemError("not-found", "no such problem type");
    const entry = PROBLEMS[slug as ProblemSlug];
    return { type: `/problems/${slug}`, title: entry.title, status: entry.status };
  });
}
