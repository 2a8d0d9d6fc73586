/**
 * TLS in Tessera: HTTPS with HTTP/2 and HTTP/1.1 on one port, HSTS, the raw HTTP/1.1 error
 * answers over TLS, certificate reload on SIGHUP (a real `tessera serve` process) and the
 * refusal to start with half a pair or unreadable files.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { ClientHttp2Session } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { killAll, logLines, spawnTessera, tesseraCli, waitFor } from "../helpers/cluster.js";
import { startServer, type TestServer } from "../helpers/server.js";
import {
  h2Request,
  h2Session,
  hasOpenssl,
  https1,
  makeCert,
  peerFingerprint,
  tlsRawExchange,
  type TestCert,
} from "../helpers/tls.js";

const JSON_HEADERS = { "content-type": "application/json" };

describe.runIf(hasOpenssl())("TLS", () => {
  let dir: string;
  let cert: TestCert;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-tls-"));
    cert = makeCert(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe("in process", () => {
    let server: TestServer;
    let h2: ClientHttp2Session;
    beforeAll(async () => {
      server = await startServer({
        dev: true,
        config: { tlsCert: cert.cert, tlsKey: cert.key, maxHeaderBytes: 4096 },
      });
      h2 = await h2Session(server.url, cert.pem);
    });
    afterAll(async () => {
      h2?.close();
      await server?.close();
    });

    it("listens on https://", () => {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    });

    it("serves HTTP/1.1 over TLS, with HSTS and the security headers", async () => {
      const res = await https1(`${server.url}/v1/job-types`, cert.pem);
      expect(res.alpn).toBe("http/1.1");
      expect(res.status).toBe(200);
      expect(res.headers["strict-transport-security"]).toBe("max-age=31536000");
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.headers["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'");
    });

    it("serves HTTP/2, with HSTS and the security headers", async () => {
      expect(h2.alpnProtocol).toBe("h2");
      const res = await h2Request(h2, "/v1/job-types");
      expect(res.status).toBe(200);
      expect(res.headers["strict-transport-security"]).toBe("max-age=31536000");
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(JSON.parse(res.text)).toHaveProperty("items");
    });

    it("Prefer: wait, Location links and a streamed result work over HTTP/2", async () => {
      const submitted = await h2Request(h2, "/v1/jobs", {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ type: "demo.sleep", input: { ms: 300, result: { ok: 1 } } }),
      });
      expect(submitted.status).toBe(202);
      const location = submitted.headers.location!;
      expect(location).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1\/jobs\//);
      const path = new URL(location).pathname;
      const waited = await h2Request(h2, `${path}?onComplete=stream`, { headers: { prefer: "wait=10" } });
      expect(waited.status).toBe(200);
      expect(waited.headers["preference-applied"]).toBe("wait=10");
      expect(waited.headers["cache-control"]).toBe("no-store");
      expect(JSON.parse(waited.text)).toEqual({ ok: 1 });
      // The signed result URL is https too, and streams over HTTP/2 without credentials.
      const status = JSON.parse((await h2Request(h2, `${path}?onComplete=status`)).text) as {
        links: { result: string };
      };
      expect(status.links.result).toMatch(/^https:\/\//);
      const url = new URL(status.links.result);
      const result = await h2Request(h2, `${url.pathname}${url.search}`);
      expect(result.status).toBe(200);
      expect(result.headers["strict-transport-security"]).toBe("max-age=31536000");
      expect(result.headers["cache-control"]).toBe("no-store");
      expect(JSON.parse(result.text)).toEqual({ ok: 1 });
    });

    it("Prefer: wait on POST works over HTTP/1.1 with TLS", async () => {
      const res = await https1(`${server.url}/v1/jobs`, cert.pem, {
        method: "POST",
        headers: { ...JSON_HEADERS, prefer: "wait=10" },
        body: JSON.stringify({ type: "demo.sleep", input: { ms: 200, result: "done" } }),
      });
      expect(res.status).toBe(200);
      expect(res.headers["preference-applied"]).toBe("wait=10");
      expect(JSON.parse(res.text)).toBe("done");
    });

    it("problems carry the headers over HTTP/2", async () => {
      const res = await h2Request(h2, "/v1/nothing-here");
      expect(res.status).toBe(404);
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(res.headers["strict-transport-security"]).toBe("max-age=31536000");
      expect(res.headers["cache-control"]).toBe("no-store");
    });

    it("oversize headers over HTTP/1.1 with TLS get the raw 431 problem, with HSTS", async () => {
      const text = await tlsRawExchange(
        server.url,
        cert.pem,
        `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`,
      );
      expect(text).toMatch(/^HTTP\/1\.1 431 /);
      expect(text).toMatch(/\r\nStrict-Transport-Security: max-age=31536000\r\n/);
      expect(text).toMatch(/\r\nContent-Type: application\/problem\+json\r\n/);
      expect(text).toContain("/problems/header-too-large");
    });

    it("oversize headers over HTTP/2 are refused (the stream, not the session)", async () => {
      await expect(h2Request(h2, "/healthz", { headers: { "x-big": "a".repeat(8000) } })).rejects.toThrow();
      const after = await h2Request(await h2Session(server.url, cert.pem), "/healthz");
      expect(after.status).toBe(200);
    });
  });

  it("an HTTP/2 long poll outlives the session idle timeout (--keep-alive-timeout)", async () => {
    const server = await startServer({
      dev: true,
      config: { tlsCert: cert.cert, tlsKey: cert.key, keepAliveTimeout: 300 },
    });
    const session = await h2Session(server.url, cert.pem);
    try {
      const submitted = await h2Request(session, "/v1/jobs", {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ type: "demo.sleep", input: { ms: 20_000 } }),
      });
      const path = new URL(submitted.headers.location!).pathname;
      const start = performance.now();
      const waited = await h2Request(session, path, { headers: { prefer: "wait=2" } });
      expect(waited.status).toBe(202);
      expect(waited.headers["preference-applied"]).toBe("wait=2");
      expect(performance.now() - start).toBeGreaterThanOrEqual(1900);
    } finally {
      session.destroy();
      await server.close();
    }
  });

  it("closing the server ends idle HTTP/2 sessions at once (GOAWAY), not after their timeout", async () => {
    const server = await startServer({ dev: true, config: { tlsCert: cert.cert, tlsKey: cert.key } });
    const session = await h2Session(server.url, cert.pem);
    expect((await h2Request(session, "/healthz")).status).toBe(200);
    const start = performance.now();
    await server.close();
    expect(performance.now() - start).toBeLessThan(2000);
    await waitFor("the client session to close", () => session.closed || session.destroyed, 2000);
  });

  describe("tessera serve", () => {
    afterEach(() => killAll());

    it("reloads the certificate on SIGHUP without dropping connections; a bad file keeps the old one", async () => {
      const live = { cert: join(dir, "live.crt"), key: join(dir, "live.key") };
      copyFileSync(cert.cert, live.cert);
      copyFileSync(cert.key, live.key);
      const node = await spawnTessera([
        "--demo",
        "--dev",
        "--db",
        join(dir, "reload.db"),
        "--log-level",
        "info",
        "--tls-cert",
        live.cert,
        "--tls-key",
        live.key,
      ]);
      expect(node.url).toMatch(/^https:\/\//);
      expect(await peerFingerprint(node.url)).toBe(cert.fingerprint);
      const before = await h2Session(node.url, cert.pem);

      const next = makeCert(dir, "next", "next.localhost");
      copyFileSync(next.cert, live.cert);
      copyFileSync(next.key, live.key);
      node.signal("SIGHUP");
      await waitFor(
        "the reload log line",
        () => logLines(node.output()).some((l) => l.msg === "TLS certificate reloaded"),
        10_000,
      );
      expect(await peerFingerprint(node.url)).toBe(next.fingerprint);
      // The session opened before the reload still works: nothing was dropped.
      expect((await h2Request(before, "/healthz")).status).toBe(200);
      before.close();
      expect((await https1(`${node.url}/healthz`, next.pem)).status).toBe(200);

      writeFileSync(live.cert, "not a certificate");
      node.signal("SIGHUP");
      await waitFor(
        "the failed reload log line",
        () => logLines(node.output()).some((l) => /NOT reloaded/.test(l.msg ?? "")),
        10_000,
      );
      expect(await peerFingerprint(node.url)).toBe(next.fingerprint);
      expect(node.hasExited()).toBe(false);
    });

    /** `tessera serve` with these TLS arguments, expected to refuse to start. */
    const serveRefused = (...tls: string[]) =>
      tesseraCli(["serve", "--demo", "--dev", "--port", "0", "--db", join(dir, "refused.db"), ...tls]);

    it("refuses to start with only one of --tls-cert and --tls-key", async () => {
      const run = await serveRefused("--tls-cert", cert.cert);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/--tls-cert and --tls-key go together/);
    });

    it("refuses to start with an unreadable or invalid file", async () => {
      const missing = await serveRefused("--tls-cert", join(dir, "missing.crt"), "--tls-key", cert.key);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/--tls-cert .*missing\.crt cannot be read \(ENOENT\)/);
      const garbage = join(dir, "garbage.pem");
      writeFileSync(garbage, "nope");
      const invalid = await serveRefused("--tls-cert", garbage, "--tls-key", cert.key);
      expect(invalid.code).toBe(1);
      expect(invalid.stderr).toMatch(/not a usable PEM certificate/);
    });
  });
});
