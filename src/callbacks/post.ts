import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { AddressPolicy } from "./address-policy.js";

export interface PostLimits {
  /** Whole attempt: connect, send, response headers and the read body. @default 15000 */
  timeoutMs: number;
  /** At most this much of the receiver's answer is read (and an excerpt kept). @default 65536 */
  maxResponseBytes: number;
}

export interface PostOutcome {
  /** The receiver's status, or null when no answer came (network error, timeout, refused). */
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** The receiver's Retry-After, in ms, when it sent one. */
  retryAfterMs: number | null;
  /** The start of the answer body, for the delivery log. */
  excerpt: string;
}

function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * POST a webhook: the URL and every address its host resolves to are checked first, and the
 * socket connects to that checked address (its `lookup` is pinned), so there is no window for
 * DNS rebinding. Redirects are not followed (a 3xx is an answer like any other), and the
 * answer is read only up to a cap.
 */
export async function postWebhook(params: {
  url: string;
  headers: Record<string, string>;
  body: string;
  policy: AddressPolicy;
  limits: PostLimits;
}): Promise<PostOutcome> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  const url = new URL(params.url);
  let addresses: { address: string; family: number }[];
  try {
    addresses = await params.policy.check(url);
  } catch (error) {
    return {
      statusCode: null,
      latencyMs: latency(),
      error: (error as Error).message,
      retryAfterMs: null,
      excerpt: "",
    };
  }
  const pinned = addresses[0]!;
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  const body = Buffer.from(params.body);

  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: Omit<PostOutcome, "latencyMs">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...outcome, latencyMs: latency() });
    };
    const req = request(url, {
      method: "POST",
      lookup,
      headers: {
        ...params.headers,
        "content-type": "application/json",
        "content-length": String(body.length),
      },
      ...(url.protocol === "https:" ? { servername: url.hostname.replace(/^\[|\]$/g, "") } : {}),
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({
        statusCode: null,
        error: `no answer within ${params.limits.timeoutMs} ms`,
        retryAfterMs: null,
        excerpt: "",
      });
    }, params.limits.timeoutMs);
    req.on("error", (error) =>
      finish({ statusCode: null, error: error.message, retryAfterMs: null, excerpt: "" }),
    );
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        const excerpt = Buffer.concat(chunks).toString("utf8").slice(0, 1024);
        finish({
          statusCode: res.statusCode ?? null,
          error: null,
          retryAfterMs: parseRetryAfter(res.headers["retry-after"], Date.now()),
          excerpt,
        });
        res.destroy();
      };
      res.on("data", (chunk: Buffer) => {
        if (size < params.limits.maxResponseBytes)
          chunks.push(chunk.subarray(0, params.limits.maxResponseBytes - size));
        size += chunk.length;
        if (size >= params.limits.maxResponseBytes) done(); // read no further
      });
      res.on("end", done);
      res.on("error", done);
    });
    req.end(body);
  });
}
