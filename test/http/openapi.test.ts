/**
 * `/openapi.json` describes every route the server serves, and nothing it does not: the
 * document is compared with Fastify's own route table (`app.routeTable`), so a new route
 * cannot be left out of it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startServer, type TestServer } from "../helpers/server.js";

const OPERATIONS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** "/v1/jobs/:id" → "/v1/jobs/{id}", as OpenAPI writes path parameters. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, "{$1}");

describe("GET /openapi.json", () => {
  let server: TestServer;
  let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };
  beforeAll(async () => {
    server = await startServer();
    const res = await http(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as typeof doc;
  });
  afterAll(() => server.close());

  it("is OpenAPI 3.1 and names the operations the router serves, each method of each route", () => {
    expect(doc.openapi).toBe("3.1.0");
    const served = [...server.tessera.app.routeTable].flatMap(([url, methods]) =>
      methods.filter((m) => m !== "HEAD").map((m) => `${m} ${openApiPath(url)}`),
    );
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((k) => OPERATIONS.includes(k))
        .map((k) => `${k.toUpperCase()} ${path}`),
    );
    expect(served.length).toBeGreaterThan(10);
    expect(documented.sort()).toEqual(served.sort());
  });

  it("documents the deliveries listing with the fields it returns", () => {
    const op = doc.paths["/v1/jobs/{id}/deliveries"]?.get as
      { responses: Record<string, unknown> } | undefined;
    expect(op?.responses["200"]).toBeDefined();
    expect(JSON.stringify(doc)).toContain('"DeliveryAttempt"');
  });

  it("every documented path parameter is declared", () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        if (!OPERATIONS.includes(method)) continue;
        const params = ((op as { parameters?: { name: string; in: string }[] }).parameters ?? [])
          .filter((p) => p.in === "path")
          .map((p) => p.name);
        expect(params.sort(), `${method} ${path}`).toEqual([...names].sort());
      }
    }
  });
});
