/**
 * examples/fastify-embed as its README runs it: the app (`npx tsx examples/fastify-embed/app.ts`)
 * on port 0, one process. Its own routes answer as the app (its header, its 404s, none of
 * Tessera's headers); Tessera's API answers under /v1/ on the same port, with its headers and
 * problems, and runs the job in that process; the SDK submits and gets the result; the app's
 * own route starts a job in process whose status URL any client can follow; SIGTERM stops both.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import { ROOT } from "../helpers/cluster.js";
import { runExample, stopExamples, type ExampleProcess } from "../helpers/example-process.js";

let dir: string;
let app: ExampleProcess;
let url: string;

beforeAll(async () => {
  expect(existsSync(join(ROOT, "dist/index.js")), "npm run build first").toBe(true);
  dir = mkdtempSync(join(tmpdir(), "tessera-fastify-embed-"));
  app = runExample("examples/fastify-embed/app.ts", {
    PORT: "0",
    TESSERA_DB: join(dir, "embed.db"),
    LOG_LEVEL: "warn",
  });
  url = (await app.waitForOutput(/my-app listening on (http:\/\/[^\s]+)/))[1]!;
});
afterAll(async () => {
  await stopExamples();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(({ task }) => {
  if (task.result?.state === "fail") console.error(app.stdout(), app.stderr());
});

describe("examples/fastify-embed", () => {
  it("the app's own routes answer as the app, untouched by Tessera", async () => {
    const hello = await fetch(`${url}/hello`);
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ hello: "world", from: "my-app" });
    expect(hello.headers.get("x-served-by")).toBe("my-app");
    // None of Tessera's: no CSP, no auth, no problem+json 404.
    expect(hello.headers.get("content-security-policy")).toBeNull();
    const missing = await fetch(`${url}/no-such-page`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("Tessera's API answers on the same port, with its own headers and problems", async () => {
    const types = await fetch(`${url}/v1/job-types`);
    expect(types.status).toBe(200);
    expect(types.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(types.headers.get("x-served-by")).toBeNull(); // the app's hook never saw it
    const { items } = (await types.json()) as { items: { type: string }[] };
    expect(items.map((t) => t.type)).toEqual(["greeting.compose"]);

    const missing = await fetch(`${url}/v1/jobs/job_nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  });

  it("the SDK submits a job to the app's port and gets its result, with progress on the way", async () => {
    const client = createClient({ baseUrl: url });
    const job = await client.submit("greeting.compose", { name: "Ada" });
    expect(job.job.links.self).toBe(`${url}/v1/jobs/${job.id}`);
    const result = await job.result();
    expect(result).toEqual({ message: "Hello, Ada!", jobId: job.id });
    const done = await client.get(job.id);
    expect(done.status).toBe("succeeded");
    expect(done.progress).toEqual({ percent: 100, message: "step 3 of 3" });
  });

  it("the app's own route starts a job in process; its status URL is followed like any other", async () => {
    const res = await fetch(`${url}/greetings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Grace" }),
    });
    expect(res.status).toBe(202);
    const location = res.headers.get("location")!;
    expect(location).toMatch(new RegExp(`^${url}/v1/jobs/job_[0-9a-z]{44}$`));
    const { id } = (await res.json()) as { id: string };
    expect(location.endsWith(id)).toBe(true);
    const result = await createClient({ baseUrl: url }).getHandle(id).result();
    expect(result).toEqual({ message: "Hello, Grace!", jobId: id });

    // Tessera validates what the app's route passes on: a problem, not a job.
    const bad = await fetch(`${url}/greetings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: 42 }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { type: string }).type).toBe("/problems/validation-failed");
  });

  it("SIGTERM closes the app, then Tessera, and the process exits 0", async () => {
    app.child.kill("SIGTERM");
    expect(await app.exited).toEqual({ code: 0, signal: null });
  });
});
