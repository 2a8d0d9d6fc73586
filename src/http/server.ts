import type { Http2Session } from "node:http2";
import type { Socket } from "node:net";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import type { Logger } from "pino";
import type { AuditLog } from "../audit.js";
import type { AddressPolicy } from "../callbacks/address-policy.js";
import type { CallbackDeliverer } from "../callbacks/deliverer.js";
import type { Config } from "../config.js";
import type { JobRegistry } from "../jobs/registry.js";
import type { Store } from "../store/store.js";
import { KeyCache } from "./auth.js";
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
import { authenticateLimited, RateLimiter } from "./rate-limit.js";
import type { RetryAfterEstimator } from "./retry-after.js";
import type { EventDispatcher } from "../events/dispatcher.js";
import { eventRoutes } from "./routes/events.js";
import { jobRoutes } from "./routes/jobs.js";
import { jobTypeRoutes } from "./routes/job-types.js";
import { opsRoutes } from "./routes/ops.js";
import { resultRoutes } from "./routes/results.js";
import { subscriptionRoutes } from "./routes/subscriptions.js";
import type { UrlSigner } from "./signed-url.js";
import { loadTlsFiles } from "./tls.js";
import type { WaitRegistry } from "./wait.js";

/** Everything the HTTP layer needs; built once by `createTessera`. */
export interface ServerDeps {
  config: Config;
  store: Store;
  /**
   * How an accepted job is stored: the local worker's `submit` (a job due now on an idle
   * worker starts at once, see WorkerRuntime.submit), which queues it like `store.submit` otherwise.
   */
  submit: Store["submit"];
  registry: JobRegistry;
  signer: UrlSigner;
  waits: WaitRegistry;
  estimator: RetryAfterEstimator;
  metrics: Metrics;
  logger: Logger;
  /** Audit lines (auth failures, cancels, deletes); see src/audit.ts. */
  audit: AuditLog;
  /** Callback URL checks and the pre-work ping. */
  callbacks: { policy: AddressPolicy; deliverer: CallbackDeliverer };
  /** The implicit tenant in `--dev` (no authentication), else null. */
  devTenantId: string | null;
  now: () => number;
  /** Rate limits, poll budget and quota (src/http/rate-limit.ts); made by buildServer if absent. */
  limiter?: RateLimiter;
  /** Verified API keys (`--auth-cache-ms`, src/http/auth.ts); made by buildServer if absent. */
  keyCache?: KeyCache;
  /** Starts the jobs an event triggers (src/events/dispatcher.ts). */
  dispatcher: EventDispatcher;
}

declare module "fastify" {
  interface FastifyRequest {
    tenantId: string;
  }
  interface FastifyContextConfig {
    /** "key" (default): API key required; "none": public; "self": the route authenticates. */
    auth?: "key" | "none" | "self";
    /** A route that answers only `405` (not in the route table). */
    refusesMethod?: boolean;
  }
}

/** Methods a route may be asked for; one it does not serve is `405` with `Allow`. */
const ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The routes this server serves, each with its methods, read from Fastify as they register
 * (`onRoute`): the one table the `405` answers and the OpenAPI test read, so a new route
 * cannot be left out of either. Answers that only refuse (405) are not in it.
 */
export type RouteTable = ReadonlyMap<string, readonly string[]>;

declare module "fastify" {
  interface FastifyInstance {
    routeTable: RouteTable;
  }
}

/** The one HSTS policy: a year, sent only over HTTPS (RFC 6797 forbids it over plain HTTP). */
const HSTS = "max-age=31536000";
/** Tessera serves no HTML; should a result be HTML, the browser runs nothing and frames nothing. */
const CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Headers on every answer. `Cache-Control: no-store` unless the route chose otherwise: job
 * representations, lists, results and problems are per-tenant (or capability URLs) and change.
 */
function securityHeaders(request: FastifyRequest, reply: FastifyReply, tls: boolean): void {
  reply.header("x-content-type-options", "nosniff");
  reply.header("referrer-policy", "no-referrer");
  reply.header("content-security-policy", CSP);
  if (!reply.hasHeader("cache-control")) reply.header("cache-control", "no-store");
  if (tls || request.protocol === "https") reply.header("strict-transport-security", HSTS);
}

/** How a connection's server holds the HTTP/1.1 limits (http.Server, or Http2SecureServer with allowHTTP1). */
interface Http1Limits {
  maxHeaderSize?: number;
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
}

/**
 * Answers for errors Node's HTTP/1.1 parser raises before Fastify sees a request (also over
 * TLS: HTTP/1.1 falls back to the same parser). Anything else (a reset, a failed TLS
 * handshake, an HTTP/2 session error) leaves no one to read an answer: the socket is closed.
 */
const clientErrorHandler = (tls: boolean) =>
  function clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const code = error.code ?? "";
    const http1 = code.startsWith("HPE_") || code === "ERR_HTTP_REQUEST_TIMEOUT";
    // An answer already begun (a result streaming when the client broke the framing) must not be corrupted.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (!socket.writable || !http1 || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    clientErrorAnswer(code, socket, tls);
  };

function clientErrorAnswer(code: string, socket: Socket, tls: boolean): void {
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
      "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n" +
      `Content-Security-Policy: ${CSP}\r\nCache-Control: no-store\r\n` +
      (tls ? `Strict-Transport-Security: ${HSTS}\r\n` : "") +
      "Connection: close\r\n\r\n" +
      body,
  );
}

/** Build the Fastify app with every route. It never listens: `main.ts` (or a test) does. */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config } = deps;
  // With a certificate: HTTPS, HTTP/2 and HTTP/1.1 (ALPN) on one port. Only the Node server
  // differs; routes, hooks and limits below are the same for both.
  const tlsFiles = loadTlsFiles(config);
  const tls = tlsFiles !== null;
  const protocolOptions = tls
    ? {
        http2: true,
        https: {
          allowHTTP1: true,
          cert: tlsFiles.cert,
          key: tlsFiles.key,
          // The HTTP/2 counterpart of maxHeaderSize (an oversize header block resets the stream).
          settings: { maxHeaderListSize: config.maxHeaderBytes },
        },
        http2SessionTimeout: config.keepAliveTimeout,
      }
    : {};
  const options: FastifyServerOptions = {
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    // Fastify's own 503 while closing is bare JSON without our headers; the onRequest hook
    // below answers it as a problem instead.
    return503OnClosing: false,
    // Timeouts and header limits are set on the Node server below, the same way for both protocols.
    connectionTimeout: 0,
    clientErrorHandler: clientErrorHandler(tls),
    // Router errors (bad percent-encoding, an over-long path parameter) bypass the error
    // handler; without this they are Fastify's own JSON, echoing the path, without our headers.
    frameworkErrors: (error, request, reply) => {
      const problem =
        problemFromFrameworkError(error) ??
        new ProblemError("bad-request", "the request could not be understood");
      securityHeaders(request, reply, tls);
      return sendProblem(reply, problem);
    },
    routerOptions: { maxParamLength: 200, ignoreDuplicateSlashes: false },
  };
  // Typed as the HTTP/1 instance: the request and reply APIs the routes use are the same on both.
  const app = Fastify({ ...options, ...protocolOptions } as FastifyServerOptions) as FastifyInstance;

  // HTTP/1.1 limits (Node reads them per connection, so setting them before listen is enough).
  // A slow client cannot hold a connection for ever (slowloris): headersTimeout, requestTimeout.
  // Both count only while the request arrives: a wait (Prefer: wait) on the answer is not cut.
  const limits = app.server as unknown as Http1Limits;
  limits.maxHeaderSize = config.maxHeaderBytes;
  limits.headersTimeout = config.headersTimeout;
  limits.requestTimeout = config.requestTimeout;
  limits.keepAliveTimeout = config.keepAliveTimeout;
  // Expired requests are found by a periodic sweep; it must run often enough for the limits.
  const shortest = Math.min(config.headersTimeout, config.requestTimeout || Infinity);
  limits.connectionsCheckingInterval = Math.max(50, Math.min(30_000, Math.floor(shortest / 4)));
  // An `Expect` other than 100-continue: Node would answer a bare 417 (no problem+json, no
  // security headers). RFC 9110 §10.1.1 lets a server ignore it, so serve the request as usual.
  app.server.on("checkExpectation", (req, res) => app.server.emit("request", req, res));
  if (tls) {
    // On close, end HTTP/2 sessions gracefully (GOAWAY: streams in flight finish, no new
    // ones), as Node does for idle HTTP/1.1 connections; else close waits for their idle timeout.
    const sessions = new Set<Http2Session>();
    app.server.on("session", (session: Http2Session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
    app.addHook("preClose", async () => {
      for (const session of sessions) session.close();
    });
  }

  app.decorateRequest("tenantId", "");
  app.removeAllContentTypeParsers();
  // JSON, and CloudEvents in structured mode (`POST /v1/events`), parsed alike.
  app.addContentTypeParser(
    ["application/json", "application/cloudevents+json"],
    { parseAs: "buffer" },
    (request, body, done) => {
      try {
        // The body is read as it came: a compressed one would reach the parser as garbage.
        const coding = request.headers["content-encoding"];
        if (coding !== undefined && coding.trim().toLowerCase() !== "identity") {
          throw new ProblemError(
            "unsupported-media-type",
            `Content-Encoding ${coding.slice(0, 40)} is not supported; send the body uncompressed`,
            {},
            { "accept-encoding": "identity" },
          );
        }
        done(null, parseJsonBody(body as Buffer, request.headers["content-type"], config.maxJsonDepth));
      } catch (error) {
        done(error as Error, undefined);
      }
    },
  );

  // Before authentication: a preflight carries no key.
  registerCors(app, config.corsOrigins);

  deps.limiter ??= new RateLimiter(deps);
  deps.keyCache ??= new KeyCache(config.authCacheMs);
  // Closing: a request that still arrives (pipelined, or on a busy keep-alive connection) is
  // refused with a problem that tells the client to try again elsewhere or soon.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async (request: FastifyRequest, reply) => {
    if (closing) {
      reply.header("connection", "close");
      throw new ProblemError(
        "service-unavailable",
        "the server is shutting down",
        {},
        { "retry-after": "1" },
      );
    }
    const auth = request.routeOptions.config.auth ?? "key";
    // Authenticates, then counts the request against its tenant's (or address's) rate limit.
    if (auth === "key") request.tenantId = await authenticateLimited(request, reply, deps);
  });

  app.addHook("onSend", async (request, reply, payload) => {
    securityHeaders(request, reply, tls);
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

  const routes = new Map<string, string[]>();
  app.decorate("routeTable", routes as RouteTable);
  app.addHook("onRoute", (route) => {
    if (route.config?.refusesMethod) return;
    const methods = routes.get(route.url) ?? [];
    for (const method of [route.method].flat()) if (!methods.includes(method)) methods.push(method);
    routes.set(route.url, methods);
  });

  // A worker node (--role worker) serves only the operations routes.
  if (config.role !== "worker") {
    jobRoutes(app, deps);
    resultRoutes(app, deps);
    jobTypeRoutes(app, deps);
    eventRoutes(app, deps);
    subscriptionRoutes(app, deps);
  }
  opsRoutes(app, deps);

  for (const [url, served] of [...routes]) {
    const allow = served.join(", ");
    app.route({
      method: ALL_METHODS.filter((m) => !served.includes(m)),
      url,
      config: { auth: "none", refusesMethod: true },
      handler: async (_request, reply) =>
        sendProblem(reply, new ProblemError("method-not-allowed", "method not allowed", {}, { allow })),
    });
  }
  return app;
}
