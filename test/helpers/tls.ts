/**
 * TLS plumbing for tests: a throw-away self-signed certificate (the `openssl` CLI, made at
 * test time), and HTTPS clients that trust it over HTTP/1.1 and HTTP/2.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect as http2Connect, type ClientHttp2Session } from "node:http2";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { Answer } from "./raw-http.js";

export interface TestCert {
  cert: string;
  key: string;
  /** The PEM certificate, to trust as a CA. */
  pem: Buffer;
  /** SHA-256 fingerprint as Node prints it (AA:BB:…). */
  fingerprint: string;
}

/** A self-signed EC certificate for 127.0.0.1 and localhost, written as `<name>.crt`/`<name>.key` in `dir`. */
export function makeCert(dir: string, name = "server", cn = "localhost"): TestCert {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdio: "ignore" },
  );
  const pem = readFileSync(cert);
  return { cert, key, pem, fingerprint: new X509Certificate(pem).fingerprint256 };
}

/** True when the `openssl` CLI runs here. */
export function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** One HTTPS request over HTTP/1.1 (ALPN offers only http/1.1), trusting `ca`. */
export function https1(
  url: string,
  ca: Buffer | Buffer[],
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer & { alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: init.method ?? "GET",
        headers: init.headers,
        ca,
        agent: false,
        // Passed on to tls.connect (missing from the https typings): offer only HTTP/1.1.
        ...({ ALPNProtocols: ["http/1.1"] } as object),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers))
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
          const socket = res.socket as { alpnProtocol?: string | false };
          resolve({
            status: res.statusCode!,
            headers,
            text: Buffer.concat(chunks).toString("utf8"),
            alpn: socket.alpnProtocol ?? null,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

/** An HTTP/2 session to `origin`, trusting `ca`. */
export function h2Session(origin: string, ca: Buffer | Buffer[]): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(origin, { ca });
    session.once("connect", () => {
      session.off("error", reject);
      resolve(session);
    });
    session.once("error", reject);
  });
}

/** One request on an HTTP/2 session. */
export function h2Request(
  session: ClientHttp2Session,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": init.method ?? "GET", ":path": path, ...init.headers });
    const chunks: Buffer[] = [];
    let status = 0;
    const headers: Record<string, string> = {};
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      for (const [name, value] of Object.entries(h))
        if (!name.startsWith(":") && value !== undefined)
          headers[name] = Array.isArray(value) ? value.join(", ") : String(value);
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, headers, text: Buffer.concat(chunks).toString("utf8") }));
    stream.on("error", reject);
    stream.end(init.body);
  });
}

/** The SHA-256 fingerprint of the certificate a fresh TLS connection to `url` is shown. */
export function peerFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once("error", reject);
  });
}

/** Raw bytes over TLS (HTTP/1.1 by ALPN); resolves with everything received until the server closes. */
export function tlsRawExchange(url: string, ca: Buffer, data: string, timeoutMs = 5000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let received = "";
    const socket = tlsConnect(
      { host: hostname, port: Number(port), ca, ALPNProtocols: ["http/1.1"], servername: "localhost" },
      () => socket.write(data),
    );
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${received.length} bytes`));
    }, timeoutMs);
    socket.on("data", (c: Buffer) => (received += c.toString("latin1")));
    const done = () => {
      clearTimeout(timer);
      resolve(received);
    };
    socket.on("end", done);
    socket.on("close", done);
    socket.on("error", (error) => {
      if (received.length > 0) done();
      else {
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}
