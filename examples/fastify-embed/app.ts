/**
 * An existing Fastify app with Tessera inside it: one port, one process. The app keeps its own
 * routes, hooks and logger; Tessera answers everything under `/v1/` (plus `/openapi.json` and
 * the `/problems/…` pages) and runs the jobs in this process.
 *
 *   npm run build
 *   npx tsx examples/fastify-embed/app.ts
 *
 * Environment: PORT (default 3000), HOST (default 127.0.0.1), and Tessera's own TESSERA_*
 * settings (TESSERA_DB, TESSERA_SECRET, …; see the README's Configuration). Without
 * TESSERA_SECRET it runs in development mode: no API keys, every request is tenant `dev`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import Fastify from "fastify";
import { createTessera, loadConfig } from "tessera";
import { greet } from "./jobs.js";

// 1. Tessera, built but not listening: `app` is its own Fastify instance, `start()` starts the
//    workers, callbacks and sweepers without opening a port.
const tessera = await createTessera({
  jobs: [greet],
  config: loadConfig(process.env.TESSERA_SECRET ? {} : { dev: true }, process.env),
});

/** The paths Tessera answers; every other request is the app's. */
const isTessera = (url = "/") => /^\/(v1\/|openapi\.json|problems\/)/.test(url);

// 2. The app: its server hands Tessera's paths to Tessera's router, everything else to its own.
//    The two instances stay apart: the app's hooks never see Tessera's requests, and Tessera's
//    authentication, security headers and problem+json errors never touch the app's routes.
const app = Fastify({
  logger: { level: process.env.LOG_LEVEL ?? "info" },
  serverFactory: (handler) =>
    createServer((req: IncomingMessage, res: ServerResponse) =>
      isTessera(req.url) ? tessera.app.routing(req, res) : handler(req, res),
    ),
});

app.addHook("onSend", async (_request, reply) => {
  reply.header("x-served-by", "my-app");
});

app.get("/hello", async () => ({ hello: "world", from: "my-app" }));

// A route of the app's own that starts a job: the request goes through Tessera's API in process
// (validation, tenant, idempotency, Location), without a network hop. The answer is Tessera's
// `202` with its status URL, so any Tessera client can follow it.
app.post<{ Body: { name?: unknown } }>("/greetings", async (request, reply) => {
  const submitted = await tessera.app.inject({
    method: "POST",
    url: "/v1/jobs",
    // The caller's Host, so the status URL in Location points back at this server.
    headers: {
      host: request.host,
      "content-type": "application/json",
      ...(request.headers["idempotency-key"]
        ? { "idempotency-key": request.headers["idempotency-key"] }
        : {}),
      // With TESSERA_SECRET set, the app submits with a key of its own tenant.
      ...(process.env.APP_TESSERA_KEY ? { authorization: `Bearer ${process.env.APP_TESSERA_KEY}` } : {}),
    },
    payload: { type: greet.type, input: { name: request.body?.name } },
  });
  for (const name of ["location", "retry-after", "content-type"]) {
    const value = submitted.headers[name];
    if (typeof value === "string") reply.header(name, value);
  }
  return reply.code(submitted.statusCode).send(submitted.body);
});

// 3. Start Tessera's workers, then listen; on SIGTERM/SIGINT stop taking requests, then let
//    running jobs finish (Tessera's grace period) before exiting.
await tessera.start();
const address = await app.listen({
  port: Number(process.env.PORT ?? 3000),
  host: process.env.HOST ?? "127.0.0.1",
});
console.log(`my-app listening on ${address} (Tessera under ${address}/v1/)`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void app
      .close()
      .then(() => tessera.close())
      .then(() => process.exit(0));
  });
}
