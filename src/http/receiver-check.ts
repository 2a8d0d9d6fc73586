/**
 * The checks a webhook receiver's URL passes before Tessera takes it, the same for a job's
 * `callback.url` at submit and a subscription's `url`: its syntax (http or https, absolute, no
 * credentials), then the address policy (checked again at every connection), then, with
 * `verify`, a signed `webhook.ping` the receiver must answer 2xx.
 */
import type { FastifyRequest } from "fastify";
import { ProblemError } from "./problems.js";
import type { ServerDeps } from "./server.js";

/** How long the receiver has to answer the ping (CONTRACT: 5 seconds). */
const PING_TIMEOUT_MS = 5000;

/** Syntax only: http(s), absolute, no credentials. Address checks come with `checkReceiver`. */
export function receiverUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an absolute http(s) URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must use http or https";
  if (url.username || url.password) return "must not contain credentials";
  return null;
}

/**
 * Refuse the receiver with `callback-url-forbidden` (naming `path`, where the URL is in the
 * body) or `callback-unreachable`. `ping`: the ping's `data`.
 */
export async function checkReceiver(
  request: FastifyRequest,
  deps: Pick<ServerDeps, "callbacks">,
  receiver: { url: string; path: string; verify: boolean; ping: Record<string, unknown> },
): Promise<void> {
  try {
    await deps.callbacks.policy.check(new URL(receiver.url));
  } catch (error) {
    throw new ProblemError("callback-url-forbidden", (error as Error).message, {
      errors: [{ path: receiver.path, message: (error as Error).message }],
    });
  }
  if (!receiver.verify) return;
  const outcome = await deps.callbacks.deliverer.ping({
    url: receiver.url,
    tenantId: request.tenantId,
    data: receiver.ping,
    timeoutMs: PING_TIMEOUT_MS,
  });
  const code = outcome.statusCode;
  if (code === null || code < 200 || code > 299) {
    const why = code === null ? (outcome.error ?? "no answer") : `HTTP ${code}`;
    throw new ProblemError("callback-unreachable", `the callback receiver did not accept the ping: ${why}`);
  }
}
