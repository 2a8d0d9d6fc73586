import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";

describe("smoke", () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
  });
  afterAll(() => server.close());

  it("runs a job from submit to result", async () => {
    const submit = await http(`${server.url}/v1/jobs`, {
      headers: bearer(key),
      json: { type: "demo.echo", input: { a: 1 } },
    });
    expect(submit.status).toBe(202);
    const location = submit.headers.get("location")!;
    const done = await http(location, { headers: { ...bearer(key), prefer: "wait=5" } });
    expect(done.status).toBe(303);
    const result = await http(done.headers.get("location")!);
    expect(result.status).toBe(200);
    expect(await result.json()).toEqual({ a: 1 });
  });
});
