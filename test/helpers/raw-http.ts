import { connect, type Socket } from "node:net";

/** A response as the tests inspect it, whichever client made the request. */
export interface Answer {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  text: string;
}

/** Read a fetch Response into an Answer. */
export async function answer(res: Response): Promise<Answer> {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => (headers[name] = value));
  return { status: res.status, headers, text: await res.text() };
}

/** Open a TCP connection to the server behind `baseUrl`. */
export function openSocket(baseUrl: string): Promise<Socket> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

function decodeChunked(body: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf("\r\n", at);
    if (eol === -1) return null;
    const size = parseInt(body.subarray(at, eol).toString("latin1").split(";")[0]!, 16);
    if (Number.isNaN(size)) return null;
    if (size === 0) return Buffer.concat(parts);
    if (body.length < eol + 2 + size + 2) return null;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Parse one HTTP/1.1 response from the front of `data`, or null while incomplete. */
function parseResponse(data: Buffer, closed: boolean): Answer | null {
  const end = data.indexOf("\r\n\r\n");
  if (end === -1) return null;
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = data.subarray(end + 4);
  let body: Buffer | null;
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = decodeChunked(rest);
  else if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    body = rest.length >= length ? rest.subarray(0, length) : null;
  } else body = closed || status === 204 || status === 304 ? rest : null;
  if (body === null) return closed ? { status, headers, text: rest.toString("utf8") } : null;
  return { status, headers, text: body.toString("utf8") };
}

/**
 * Send raw bytes and read one response. Resolves as soon as a complete response has arrived
 * (the server may still be waiting for more of a body we never send); rejects if the socket
 * closes without one or nothing arrives within `timeoutMs`.
 */
export async function rawExchange(
  baseUrl: string,
  request: string | Buffer | readonly (string | Buffer)[],
  options: { timeoutMs?: number } = {},
): Promise<Answer> {
  const socket = await openSocket(baseUrl);
  return new Promise<Answer>((resolve, reject) => {
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | null, result?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(result!);
    };
    const timer = setTimeout(() => finish(new Error("no response in time")), options.timeoutMs ?? 5000);
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const parsed = parseResponse(data, false);
      if (parsed) finish(null, parsed);
    });
    socket.on("end", () => {
      const parsed = parseResponse(data, true);
      finish(
        parsed ? null : new Error(`connection closed without a response (${data.length} bytes)`),
        parsed ?? undefined,
      );
    });
    // A reset after the server answered (it stopped reading our body) is not a failure.
    socket.on("error", (error) => {
      const parsed = parseResponse(data, true);
      finish(parsed ? null : error, parsed ?? undefined);
    });
    for (const part of Array.isArray(request) ? request : [request]) {
      if (!socket.destroyed) socket.write(part as string | Buffer);
    }
  });
}

/**
 * Build a request head. `headers` are sent exactly as given, in order, duplicates included;
 * `Host` and `Connection: close` are added unless present.
 */
export function rawHead(
  method: string,
  path: string,
  headers: readonly (readonly [string, string])[] = [],
): string {
  const names = new Set(headers.map(([name]) => name.toLowerCase()));
  const all: (readonly [string, string])[] = [...headers];
  if (!names.has("host")) all.unshift(["Host", "127.0.0.1"]);
  if (!names.has("connection")) all.push(["Connection", "close"]);
  return `${method} ${path} HTTP/1.1\r\n${all.map(([n, v]) => `${n}: ${v}`).join("\r\n")}\r\n\r\n`;
}

/** One request with a complete body (Content-Length added unless a framing header is given). */
export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: readonly (readonly [string, string])[] = [],
  body?: string | Buffer,
  options: { timeoutMs?: number } = {},
): Promise<Answer> {
  const framed = headers.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
  const bytes = body === undefined ? undefined : typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const all = bytes && !framed ? [...headers, ["Content-Length", String(bytes.length)] as const] : headers;
  return rawExchange(
    baseUrl,
    bytes ? [rawHead(method, path, all), bytes] : rawHead(method, path, all),
    options,
  );
}
