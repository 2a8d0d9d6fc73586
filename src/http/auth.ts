import type { FastifyRequest } from "fastify";
import { hashApiKey, KEY_PATTERN } from "../auth/api-keys.js";
import { ProblemError } from "./problems.js";
import type { ServerDeps } from "./server.js";

const UNAUTHORIZED_HEADERS = { "www-authenticate": 'Bearer realm="tessera"' };

function unauthorized(): ProblemError {
  // One answer for every failure (missing, malformed, unknown, revoked): no oracle.
  return new ProblemError(
    "unauthorized",
    "a valid API key is required: Authorization: Bearer <key>",
    {},
    UNAUTHORIZED_HEADERS,
  );
}

/**
 * Resolve the caller's tenant from `Authorization: Bearer <key>`. The scheme is matched
 * case-insensitively (RFC 9110 §11.1); a repeated header is refused; malformed keys are
 * refused without a query. In `--dev`, every request belongs to the one dev tenant.
 */
export async function authenticate(request: FastifyRequest, deps: ServerDeps): Promise<string> {
  if (deps.devTenantId !== null) return deps.devTenantId;
  const raw = request.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === "authorization") count++;
  if (count !== 1) throw unauthorized();
  const match = /^bearer +(\S+) *$/i.exec(request.headers.authorization ?? "");
  const key = match?.[1];
  if (!key || !KEY_PATTERN.test(key)) throw unauthorized();
  let record;
  try {
    record = await deps.store.findApiKey({ hash: hashApiKey(key), now: deps.now() });
  } catch (error) {
    // The store is unreachable (e.g. the database restarted): a transient 503, not a 500.
    request.log.warn({ err: error }, "API key lookup failed");
    throw new ProblemError(
      "service-unavailable",
      "the job store is not reachable; try again",
      {},
      { "retry-after": "1" },
    );
  }
  if (!record) throw unauthorized();
  return record.tenantId;
}
