import type { FastifyInstance } from "fastify";

/** What a browser page may send, and which answer headers its script may read. */
const ALLOW_METHODS = "GET, POST, DELETE";
const ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, Prefer";
const EXPOSE_HEADERS =
  "Location, Retry-After, Content-Location, Preference-Applied, Idempotent-Replayed, RateLimit, RateLimit-Policy";
/** Browsers cache a preflight this long (Chromium caps it at 2 hours). */
const MAX_AGE_SECONDS = 600;

/**
 * CORS for the listed origins only (`--cors-origin`): preflights get `204` with the methods
 * and headers allowed; every answer to such an origin, errors included, carries
 * `Access-Control-Allow-Origin` and exposes the headers the client polls by. No cookies are
 * involved (keys travel in `Authorization`), so credentials are not allowed.
 */
export function registerCors(app: FastifyInstance, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  const listed = (origin: unknown): origin is string => typeof origin === "string" && allowed.has(origin);

  app.addHook("onRequest", async (request, reply) => {
    if (request.method !== "OPTIONS" || request.headers["access-control-request-method"] === undefined)
      return;
    if (!listed(request.headers.origin)) return; // not ours: the 405 below, with no CORS headers
    reply
      .code(204)
      .header("access-control-allow-methods", ALLOW_METHODS)
      .header("access-control-allow-headers", ALLOW_HEADERS)
      .header("access-control-max-age", String(MAX_AGE_SECONDS));
    return reply.send();
  });

  app.addHook("onSend", async (request, reply, payload) => {
    reply.header("vary", "Origin");
    if (listed(request.headers.origin)) {
      reply.header("access-control-allow-origin", request.headers.origin);
      reply.header("access-control-expose-headers", EXPOSE_HEADERS);
    }
    return payload;
  });
}
