/**
 * A reverse proxy in front of a test server that can fail requests on purpose: answer with a
 * status of its choosing, or cut the connection. It keeps the client's `Host`, so the URLs the
 * server builds point back at the proxy and every later request passes through it too.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type ProxyAction =
  "pass" | "reset" | { status: number; headers?: Record<string, string>; body?: string };

export interface FlakyProxy {
  url: string;
  /** Every request seen, in order, with what was done to it. */
  requests: { method: string; path: string; action: "pass" | "reset" | number; at: number }[];
  close(): Promise<void>;
}

export async function startFlakyProxy(
  target: string,
  plan: (n: number, req: IncomingMessage) => ProxyAction,
): Promise<FlakyProxy> {
  const upstream = new URL(target);
  const requests: FlakyProxy["requests"] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const action = plan(requests.length + 1, req);
    requests.push({
      method: req.method ?? "GET",
      path: req.url ?? "/",
      action: typeof action === "string" ? action : action.status,
      at: Date.now(),
    });
    if (action === "reset") {
      req.socket.destroy();
      return;
    }
    if (action !== "pass") {
      res.writeHead(action.status, { "content-type": "application/problem+json", ...action.headers });
      res.end(
        action.body ??
          JSON.stringify({
            type: "/problems/test-fault",
            title: "Injected fault",
            status: action.status,
            detail: "the proxy failed this request on purpose",
            instance: req.url,
          }),
      );
      return;
    }
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
