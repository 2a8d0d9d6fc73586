import type { Socket } from "node:net";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "pino";
import type { AddressPolicy } from "../callbacks/address-policy.js";
import type { CallbackDeliverer } from "../callbacks/deliverer.js";
import type { Config } from "../config.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { Store } from "../store/store.js";
import { authenticate } from "./auth.js";
import { registerCors } from "./cors.js";
import { parseJsonBody } from "./json-body.js";
import type { Metrics } from "./metrics.js";
import {
  PROBLEM_JSON,
  ProblemError,
  problemBody,
  problemFromFrameworkError,
  sendProblem,
} from "./problems.js";
import type { RetryAfterEstimator } from "./retry-after.js";
import { jobRoutes } from "./routes/jobs.js";
import { jobTypeRoutes } from "./routes/job-types.js";
import { opsRoutes } from "./routes/ops.js";
import { resultRoutes } from "./routes/results.js";
import type { UrlSigner } from "./signed-url.js";
import type { WaitRegistry } from "./wait.js";

/** Everything the HTTP layer needs; built once by `createTessera`. */
export interface ServerDeps {
  config: Config;
  store: Store;
  registry: JobRegistry;
  signer: UrlSigner;
  waits: WaitRegistry;
  estimator: RetryAfterEstimator;
  metrics: Metrics;
  logger: Logger;
  /** Callback URL checks and the pre-work ping. */
  callbacks: { policy: AddressPolicy; deliverer: CallbackDeliverer };
  /** The implicit tenant in `--dev` (no authentication), else null. */
  devTenantId: string | null;
  now: () => number;
}

declare module "fastify" {
  interface FastifyRequest {
    tenantId: string;
  }
  interface FastifyContextConfig {
    /** "key" (default): API key required; "none": public; "self": the route authenticates. */
    auth?: "key" | "none" | "self";
  }
}

/** The routes and the methods each allows; any other method is `405` with `Allow`. */
const ROUTES: Record<string, string[]> = {
  "/v1/jobs": ["GET", "POST"],
  "/v1/jobs/:id": ["GET", "DELETE"],
  "/v1/jobs/:id/cancel": ["POST"],
  "/v1/jobs/:id/result": ["GET"],
  "/v1/jobs/:id/deliveries": ["GET"],
  "/v1/job-types": ["GET"],
  "/healthz": ["GET"],
  "/readyz": ["GET"],
  "/metrics": ["GET"],
  "/openapi.json": ["GET"],
  "/problems/:slug": ["GET"],
};
const ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** Answers for errors Node's HTTP parser raises before Fastify sees a request. */
function clientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code = error.code ?? "";
  const [status, slug] =
    code === "HPE_HEADER_OVERFLOW"
      ? ([431, "header-too-large"] as const)
      : code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? ([408, "request-timeout"] as const)
        : ([400, "bad-request"] as const);
  const body = JSON.stringify(problemBody(slug, "the request could not be read", "/"));
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : status === 408 ? "Request Timeout" : "Bad Request"}\r\n` +
      `Content-Type: ${PROBLEM_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n" +
      body,
  );
}

/** Build the Fastify app with every route. It never listens: `main.ts` (or a test) does. */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config } = deps;
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    // A slow client cannot hold a connection for ever (slowloris); waits are on the response side.
    requestTimeout: 30_000,
    connectionTimeout: 0,
    keepAliveTimeout: 5_000,
    clientErrorHandler: clientError,
    // Router errors (bad percent-encoding, an over-long path parameter) bypass the error
    // handler; without this they are Fastify's own JSON, echoing the path, without our headers.
    frameworkErrors: (error, _request, reply) => {
      const problem =
        problemFromFrameworkError(error) ??
        new ProblemError("bad-request", "the request could not be understood");
      reply.header("x-content-type-options", "nosniff").header("referrer-policy", "no-referrer");
      return sendProblem(reply, problem);
    },
    routerOptions: { maxParamLength: 200, ignoreDuplicateSlashes: false },
  });

  app.decorateRequest("tenantId", "");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer, request.headers["content-type"], config.maxJsonDepth));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  // Before authentication: a preflight carries no key.
  registerCors(app, config.corsOrigins);

  app.addHook("onRequest", async (request: FastifyRequest) => {
    const auth = request.routeOptions.config.auth ?? "key";
    if (auth === "key") request.tenantId = await authenticate(request, deps);
  });

  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    return payload;
  });

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    deps.metrics.httpRequests.inc({ method: request.method, route, status: reply.statusCode });
    deps.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ProblemError) return sendProblem(reply, error);
    const mapped = problemFromFrameworkError(
      error as { code?: string; statusCode?: number; message: string },
    );
    if (mapped) return sendProblem(reply, mapped);
    request.log.error({ err: error, url: request.routeOptions.url }, "unhandled error");
    return sendProblem(reply, new ProblemError("internal-error", "an internal error occurred"));
  });

  app.setNotFoundHandler((_request, reply) =>
    sendProblem(reply, new ProblemError("not-found", "no such resource")),
  );

  // A worker node (--role worker) serves only the operations routes.
  const serveApi = config.role !== "worker";
  if (serveApi) {
    jobRoutes(app, deps);
    resultRoutes(app, deps);
    jobTypeRoutes(app, deps);
  }
  opsRoutes(app, deps);

  for (const [url, allowed] of Object.entries(ROUTES)) {
    if (!serveApi && url.startsWith("/v1/")) continue;
    const withHead = allowed.includes("GET") ? [...allowed, "HEAD"] : allowed;
    app.route({
      method: ALL_METHODS.filter((m) => !allowed.includes(m)),
      url,
      config: { auth: "none" },
      handler: async (_request, reply) =>
        sendProblem(
          reply,
          new ProblemError("method-not-allowed", "method not allowed", {}, { allow: withHead.join(", ") }),
        ),
    });
  }
  return app;
}
