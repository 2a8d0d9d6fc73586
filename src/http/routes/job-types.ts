import type { FastifyInstance } from "fastify";
import type { ServerDeps } from "../server.js";

export function jobTypeRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get("/v1/job-types", async () => ({
    items: deps.registry.definitions().map((d) => ({
      type: d.type,
      description: d.description,
      inputSchema: d.input,
      timeoutSeconds: d.timeoutSeconds,
      maxAttempts: d.maxAttempts,
      ...(d.maxInputBytes !== undefined ? { maxInputBytes: d.maxInputBytes } : {}),
      ...(d.on && d.on.length > 0 ? { on: d.on } : {}),
    })),
  }));
}
