import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signingKey, UrlSigner } from "../../src/http/signed-url.js";
import { bearer, http, startServer, TEST_SECRET, type TestServer } from "../helpers/server.js";
import {
  client,
  expectProblem,
  expectSecurityHeaders,
  settle,
  submit,
  type Client,
  type Job,
} from "./support.js";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Replace one character of `text` at `index` with a different base64url character. */
function mutate(text: string, index: number, shift = 1): string {
  const c = text[index]!;
  const replacement = B64URL[(B64URL.indexOf(c) + shift) % 64]!;
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

/** Build the raw URL with the query given as a list (to repeat or drop parameters). */
function withQuery(base: URL, params: [string, string][]): string {
  const q = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
  return `${base.origin}${base.pathname}${q ? `?${q}` : ""}`;
}

describe("signed result URLs (valet keys)", () => {
  let server: TestServer;
  let key: string;
  let c: Client;
  let job: Job;
  let other: Job;
  let signed: URL;
  beforeAll(async () => {
    server = await startServer();
    key = await server.key("acme");
    c = client(server.url, key);
    job = await settle(c, (await submit(c, { type: "demo.echo", input: { doc: 1 } })).job.id);
    other = await settle(c, (await submit(c, { type: "demo.echo", input: { doc: 2 } })).job.id);
    signed = new URL(job.links.result!);
  });
  afterAll(() => server.close());

  const params = (url: URL = signed): [string, string][] => [...url.searchParams.entries()];
  const forbidden = async (url: string, init: Parameters<typeof http>[1] = {}) => {
    const res = await http(url, init);
    const problem = await expectProblem(res, 403, "signature-invalid");
    expect(JSON.stringify(problem)).not.toContain("doc");
    // The instance never echoes the query (it holds a signature).
    expect(problem.instance).not.toContain("?");
    return problem;
  };

  it("a valid signed URL works with no credentials, no-store and no-referrer", async () => {
    const res = await http(signed.href);
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    expect(await res.json()).toEqual({ doc: 1 });
  });

  it("the 303 from the status monitor points at a working signed URL", async () => {
    const res = await http(job.links.self, { headers: bearer(key) });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get("location")!);
    expect(location.searchParams.get("sig")).toMatch(/^[A-Za-z0-9_-]+$/);
    const result = await http(location.href);
    expect(result.status).toBe(200);
  });

  it("every issued URL expires within the configured TTL (default 1 h)", async () => {
    const res = await http(job.links.self, { headers: bearer(key) });
    const now = Math.floor(Date.now() / 1000);
    for (const href of [res.headers.get("location")!, ((await res.json()) as Job).links.result!]) {
      const expires = Number(new URL(href).searchParams.get("expires"));
      expect(expires).toBeGreaterThan(now);
      expect(expires).toBeLessThanOrEqual(now + 3600 + 1);
    }
  });

  it("any one character of sig changed is 403 (every position)", async () => {
    const sig = signed.searchParams.get("sig")!;
    for (let i = 0; i < sig.length; i++) {
      for (const shift of [1, 2, 3]) {
        const p = params().map(([k, v]): [string, string] => [k, k === "sig" ? mutate(sig, i, shift) : v]);
        await forbidden(withQuery(signed, p));
      }
    }
  });

  it("another job's signature on this job's path is 403, and this signature on another job's path", async () => {
    const theirs = new URL(other.links.result!);
    await forbidden(withQuery(signed, params(theirs)));
    const moved = new URL(signed.href);
    moved.pathname = theirs.pathname;
    await forbidden(moved.href);
  });

  it("expires + 1 is 403; expires removed is 403; expires not a number is 403", async () => {
    const expires = Number(signed.searchParams.get("expires"));
    await forbidden(
      withQuery(
        signed,
        params().map(([k, v]): [string, string] => [k, k === "expires" ? String(expires + 1) : v]),
      ),
    );
    await forbidden(
      withQuery(
        signed,
        params().filter(([k]) => k !== "expires"),
      ),
    );
    await forbidden(
      withQuery(
        signed,
        params().map(([k, v]): [string, string] => [k, k === "expires" ? "soon" : v]),
      ),
    );
    await forbidden(
      withQuery(
        signed,
        params().map(([k, v]): [string, string] => [k, k === "expires" ? "99999999999999999999" : v]),
      ),
    );
  });

  it("an empty, shorter, longer or non-base64url sig is 403, never 500", async () => {
    const sig = signed.searchParams.get("sig")!;
    for (const bad of [
      "",
      sig.slice(0, -1),
      sig.slice(0, 20),
      `${sig}A`,
      `${sig}${sig}`,
      `${sig.slice(0, -2)}==`,
      sig.replace(/./, "+"),
      "!!!",
      "A".repeat(1000),
    ]) {
      await forbidden(
        withQuery(
          signed,
          params().map(([k, v]): [string, string] => [k, k === "sig" ? bad : v]),
        ),
      );
    }
  });

  it("sig missing while other signing parameters are present is judged by credentials (none: 401)", async () => {
    const res = await http(
      withQuery(
        signed,
        params().filter(([k]) => k !== "sig"),
      ),
    );
    // Without `sig` the request is judged by its credentials: it has none.
    await expectProblem(res, 401);
  });

  it("a repeated sig or expires is 403, even when both copies are valid", async () => {
    const sig = signed.searchParams.get("sig")!;
    const expires = signed.searchParams.get("expires")!;
    await forbidden(withQuery(signed, [...params(), ["sig", sig]]));
    await forbidden(withQuery(signed, [...params(), ["expires", expires]]));
    await forbidden(withQuery(signed, [...params(), ["sig", mutate(sig, 5)]]));
  });

  it("other signed parameters tampered (tenant, kid) are 403", async () => {
    for (const name of ["tenant", "kid"]) {
      await forbidden(
        withQuery(
          signed,
          params().map(([k, v]): [string, string] => [k, k === name ? `${v}x` : v]),
        ),
      );
      await forbidden(
        withQuery(
          signed,
          params().filter(([k]) => k !== name),
        ),
      );
    }
  });

  it("a bad signature is 403 even with a valid bearer key", async () => {
    const sig = signed.searchParams.get("sig")!;
    const url = withQuery(
      signed,
      params().map(([k, v]): [string, string] => [k, k === "sig" ? mutate(sig, 0) : v]),
    );
    await forbidden(url, { headers: bearer(key) });
    await forbidden(
      withQuery(
        signed,
        params().map(([k, v]): [string, string] => [k, k === "sig" ? "" : v]),
      ),
      { headers: bearer(key) },
    );
    // And without sig the key alone works.
    const res = await http(`${signed.origin}${signed.pathname}`, { headers: bearer(key) });
    expect(res.status).toBe(200);
  });

  it("an expired URL is 403, 1 s after expiry", async () => {
    const tenant = signed.searchParams.get("tenant")!;
    const signer = new UrlSigner([signingKey(TEST_SECRET)], 10);
    // Sanity: this signer makes URLs the server accepts.
    const fresh = signer.sign(signed.pathname, tenant, Date.now());
    expect((await http(`${signed.origin}${signed.pathname}?${fresh}`)).status).toBe(200);
    // Expired one second ago.
    const stale = signer.sign(signed.pathname, tenant, Date.now() - 11_000);
    await forbidden(`${signed.origin}${signed.pathname}?${stale}`);
    // Long expired.
    const ancient = signer.sign(signed.pathname, tenant, Date.parse("2020-01-01T00:00:00Z"));
    await forbidden(`${signed.origin}${signed.pathname}?${ancient}`);
  });

  it("a URL signed with another secret is 403", async () => {
    const tenant = signed.searchParams.get("tenant")!;
    const stranger = new UrlSigner([signingKey("some-other-secret-0123456789abcdef0123456789")], 60);
    await forbidden(
      `${signed.origin}${signed.pathname}?${stranger.sign(signed.pathname, tenant, Date.now())}`,
    );
  });

  it("a URL signed for another method is 403", async () => {
    const tenant = signed.searchParams.get("tenant")!;
    const signer = new UrlSigner([signingKey(TEST_SECRET)], 60);
    await forbidden(
      `${signed.origin}${signed.pathname}?${signer.sign(signed.pathname, tenant, Date.now(), "DELETE")}`,
    );
  });

  it("other methods on a signed URL are refused (403/405), and the job is unchanged", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const res = await http(signed.href, { method });
      expect([403, 405], method).toContain(res.status);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      await res.arrayBuffer();
    }
    expect((await http(signed.href)).status).toBe(200);
  });

  it("path variants never reach another job, never 500", async () => {
    const path = signed.pathname;
    const id = job.id;
    const variants = [
      `${path}/`,
      path.replace("/v1/jobs/", "/v1//jobs/"),
      path.replace("/result", "%2Fresult"),
      path.replace(
        `/${id}/`,
        `/${id.replace(/[a-f]/, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`)}/`,
      ),
      path.replace(`/${id}/`, `/${id.toUpperCase()}/`),
      path.replace("/v1/", "/V1/"),
      `/v1/jobs/${id}/./result`,
      `/v1/jobs/${other.id}/../${id}/result`,
    ];
    for (const variant of variants) {
      const res = await http(`${signed.origin}${variant}${signed.search}`);
      const text = await res.text();
      if (res.status === 200) {
        // Canonicalised to the very same resource.
        expect(JSON.parse(text)).toEqual({ doc: 1 });
      } else {
        expect([400, 401, 403, 404], `${variant} -> ${res.status}`).toContain(res.status);
        expect(text).not.toContain("doc");
      }
    }
  });

  it("the signature is bound to the origin path, not the Host header", async () => {
    const res = await http(signed.href, { headers: { host: "evil.example.com" } });
    expect(res.status).toBe(200);
  });

  it("after the job is deleted, its signed URL is 404 with no data", async () => {
    const doomed = await settle(c, (await submit(c, { type: "demo.echo", input: { doc: 3 } })).job.id);
    const url = doomed.links.result!;
    expect((await http(url)).status).toBe(200);
    expect((await http(doomed.links.self, { method: "DELETE", headers: bearer(key) })).status).toBe(204);
    const res = await http(url);
    expect([404, 410]).toContain(res.status);
    expect(await res.text()).not.toContain("doc");
  });

  it("a signed URL for a pending job answers 202", async () => {
    const { job: pending } = await submit(c, { type: "demo.sleep", input: { ms: 30_000 } });
    const tenant = signed.searchParams.get("tenant")!;
    const signer = new UrlSigner([signingKey(TEST_SECRET)], 60);
    const path = `/v1/jobs/${pending.id}/result`;
    const res = await http(`${signed.origin}${path}?${signer.sign(path, tenant, Date.now())}`);
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toBe(pending.links.self);
    await http(pending.links.cancel!, { method: "POST", headers: bearer(key) });
  });
});

describe("signed URL lifetime is capped by config", () => {
  let server: TestServer;
  let c: Client;
  let key: string;
  beforeAll(async () => {
    server = await startServer({ config: { signedUrlTtl: 10 } });
    key = await server.key("acme");
    c = client(server.url, key);
  });
  afterAll(() => server.close());

  it("expires <= now + signedUrlTtl in the 303 Location and links.result", async () => {
    const { job } = await submit(c, { type: "demo.echo", input: 1 });
    await settle(c, job.id);
    const before = Math.floor(Date.now() / 1000);
    const res = await http(job.links.self, { headers: bearer(key) });
    const after = Math.ceil(Date.now() / 1000);
    const body = (await res.json()) as Job;
    for (const href of [res.headers.get("location")!, body.links.result!]) {
      const expires = Number(new URL(href).searchParams.get("expires"));
      expect(expires).toBeGreaterThanOrEqual(before + 10 - 1);
      expect(expires).toBeLessThanOrEqual(after + 10);
    }
  });
});
