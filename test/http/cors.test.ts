/** `--cors-origin`: preflights and CORS headers for the listed origins only. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { http, startServer, type TestServer } from "../helpers/server.js";

const APP = "http://app.example.test:8080";
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ config: { corsOrigins: [APP] } });
});
afterAll(() => server.close());

describe("CORS", () => {
  it("answers a preflight from a listed origin with the methods and headers the client sends", async () => {
    const res = await http(`${server.url}/v1/jobs`, {
      method: "OPTIONS",
      headers: {
        origin: APP,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, idempotency-key, prefer",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-allow-methods")).toMatch(/POST/);
    for (const h of ["Authorization", "Content-Type", "Idempotency-Key", "Prefer"]) {
      expect(res.headers.get("access-control-allow-headers")).toContain(h);
    }
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("exposes the polling headers on answers, errors included", async () => {
    const key = await server.key("cors");
    const ok = await http(`${server.url}/v1/jobs`, {
      headers: { origin: APP, authorization: `Bearer ${key}` },
      json: { type: "demo.echo", input: 1 },
    });
    expect(ok.status).toBe(202);
    expect(ok.headers.get("access-control-allow-origin")).toBe(APP);
    const exposed = ok.headers.get("access-control-expose-headers") ?? "";
    for (const h of ["Location", "Retry-After", "Content-Location", "Preference-Applied"])
      expect(exposed).toContain(h);
    expect(ok.headers.get("vary")).toMatch(/Origin/);
    const denied = await http(`${server.url}/v1/jobs`, { headers: { origin: APP } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("gives other origins nothing", async () => {
    const pre = await http(`${server.url}/v1/jobs`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.example.test", "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(405);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    const get = await http(`${server.url}/healthz`, { headers: { origin: "http://evil.example.test" } });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("is configured by --cors-origin / TESSERA_CORS_ORIGIN and checks each is an origin", () => {
    expect(
      loadConfig({ dev: true, "cors-origin": ["https://a.example", "http://b.example:81/"] }, {}).corsOrigins,
    ).toEqual(["https://a.example", "http://b.example:81"]);
    expect(
      loadConfig({ dev: true }, { TESSERA_CORS_ORIGIN: "https://a.example,https://c.example" }).corsOrigins,
    ).toHaveLength(2);
    expect(loadConfig({ dev: true }, {}).corsOrigins).toEqual([]);
    expect(() => loadConfig({ dev: true, "cors-origin": ["https://a.example/path"] }, {})).toThrow(
      /--cors-origin/,
    );
    expect(() => loadConfig({ dev: true, "cors-origin": ["*"] }, {})).toThrow(/--cors-origin/);
  });
});
