/**
 * SSRF (RELIABILITY S7, S8): callback URLs aimed at loopback, private, link-local, CGNAT or
 * metadata addresses are refused at submit unless allow-listed; the connection goes only to an
 * address that was checked (no DNS-rebinding window); redirects are not followed.
 *
 * There is no outside network here, and public-looking addresses are never connected to: a
 * "public" answer of an injected resolver is an allow-listed loopback address (127.0.0.2) with a
 * receiver on it, on the same port as the canary on 127.0.0.1, so a connection that went to the
 * unchecked address would reach the canary.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AddressPolicy, CallbackForbiddenError, type Resolver } from "../../src/callbacks/address-policy.js";
import { postWebhook } from "../../src/callbacks/post.js";
import { bearer, http, startServer, type TestServer } from "../helpers/server.js";
import { expectProblem, type Job } from "./support.js";

interface Listener {
  port: number;
  host: string;
  /** TCP connections accepted. */
  connections: number;
  requests: { url: string; host: string | undefined }[];
  close(): Promise<void>;
}

const listeners = new Set<Listener>();

/** An HTTP listener counting connections; `answer` writes the response (204 by default). */
async function listen(
  host: string,
  port = 0,
  answer: (res: import("node:http").ServerResponse) => void = (res) => void res.writeHead(204).end(),
): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    listener.requests.push({ url: req.url ?? "", host: req.headers.host });
    req.resume();
    req.on("end", () => answer(res));
  });
  server.on("connection", (socket: Socket) => {
    listener.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const listener: Listener = {
    port: (server.address() as AddressInfo).port,
    host,
    connections: 0,
    requests: [],
    async close() {
      listeners.delete(listener);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  listeners.add(listener);
  return listener;
}

/** S7's refusal list; `<canary>` is the canary's port. */
function refusalList(canary: number): string[] {
  return [
    // IPv4 loopback spellings
    `http://127.0.0.1:${canary}/`,
    `http://127.1:${canary}/`,
    `http://0:${canary}/`,
    `http://0.0.0.0:${canary}/`,
    `http://2130706433:${canary}/`,
    `http://0x7f000001:${canary}/`,
    `http://017700000001:${canary}/`,
    `http://0177.0.0.1:${canary}/`,
    `http://0x7f.0.0.1:${canary}/`,
    `http://127.0.0.1.:${canary}/`,
    // names
    `http://localhost:${canary}/`,
    `http://LOCALHOST.:${canary}/`,
    `http://①②⑦.⓪.⓪.①:${canary}/`,
    // IPv6
    `http://[::1]:${canary}/`,
    `http://[0:0:0:0:0:0:0:1]:${canary}/`,
    `http://[::]:${canary}/`,
    `http://[::ffff:127.0.0.1]:${canary}/`,
    `http://[::ffff:7f00:1]:${canary}/`,
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    // private and special ranges
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://100.100.100.200/",
    "http://169.254.169.254/latest/meta-data/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    // parser confusion
    `http://example.com@127.0.0.1:${canary}/`,
    `http://127.0.0.1:${canary}#@example.com/`,
    `http://127.0.0.1:${canary}\\@example.com/`,
    // schemes
    `gopher://127.0.0.1:${canary}/_INFO`,
    "file:///etc/passwd",
    `ws://127.0.0.1:${canary}/`,
    // unresolvable offline
    "http://metadata.google.internal/",
  ];
}

/** Refused by the URL syntax check (scheme, credentials) rather than the address policy. */
const SYNTAX_REFUSALS = [/^gopher:/, /^file:/, /^ws:/, /^http:\/\/example\.com@/];

afterEach(async () => {
  await Promise.all([...listeners].map((l) => l.close()));
});

describe("S7: the refusal list, with no allowlist", () => {
  let server: TestServer;
  let key: string;

  beforeAll(async () => {
    server = await startServer({ config: { callbackAllow: [], callbackRetryBaseMs: 100 } });
    key = await server.key("ssrf");
  });
  afterAll(async () => {
    await server?.close();
  });

  it("refuses every URL at submit (400), creates no job, and the canary sees no connection", async () => {
    const canary = await listen("127.0.0.1");
    const list = refusalList(canary.port);
    for (const url of list) {
      for (const verify of [false, true]) {
        const res = await http(`${server.url}/v1/jobs`, {
          headers: bearer(key),
          json: { type: "demo.echo", input: url, callback: { url, verify } },
        });
        const syntax = SYNTAX_REFUSALS.some((re) => re.test(url));
        const problem = await expectProblem(
          res,
          400,
          syntax ? "validation-failed" : "callback-url-forbidden",
        );
        expect(problem.errors?.[0]?.path, url).toBe("/callback/url");
      }
    }
    await sleep(300);
    expect(canary.connections).toBe(0);
    const listed = (await (await http(`${server.url}/v1/jobs`, { headers: bearer(key) })).json()) as {
      items: Job[];
    };
    expect(listed.items).toEqual([]);
  });

  it("positive control: the same canary URL is delivered once 127.0.0.1 is allow-listed", async () => {
    const canary = await listen("127.0.0.1");
    const allowed = await startServer({
      config: { callbackAllow: ["127.0.0.1", "localhost"], callbackRetryBaseMs: 100 },
    });
    try {
      const k = await allowed.key("ssrf");
      for (const url of [`http://127.0.0.1:${canary.port}/`, `http://localhost:${canary.port}/named`]) {
        const res = await http(`${allowed.url}/v1/jobs`, {
          headers: bearer(k),
          json: { type: "demo.echo", input: 1, callback: { url } },
        });
        expect(res.status).toBe(202);
      }
      for (let i = 0; i < 200 && canary.requests.length < 2; i++) await sleep(25);
      expect(canary.requests.map((r) => r.url).sort()).toEqual(["/", "/named"]);
      expect(canary.connections).toBeGreaterThanOrEqual(2);
      // The allowlist is exact: other loopback and private addresses stay refused.
      for (const url of [`http://127.0.0.2:${canary.port}/`, "http://10.0.0.1/", "http://169.254.169.254/"]) {
        const res = await http(`${allowed.url}/v1/jobs`, {
          headers: bearer(k),
          json: { type: "demo.echo", input: 1, callback: { url } },
        });
        await expectProblem(res, 400, "callback-url-forbidden");
      }
    } finally {
      await allowed.close();
    }
  });
});

describe("S8: DNS rebinding, mixed answers and redirects (unit level, injected resolver)", () => {
  const limits = { timeoutMs: 3000, maxResponseBytes: 65_536 };
  const headers = { "webhook-id": "msg_test", "webhook-timestamp": "0", "webhook-signature": "v1,x" };

  /** The canary on 127.0.0.1 and a receiver on the allow-listed 127.0.0.2, on the same port. */
  async function pair(
    answer?: Parameters<typeof listen>[2],
  ): Promise<{ canary: Listener; receiver: Listener }> {
    for (let i = 0; ; i++) {
      const canary = await listen("127.0.0.1");
      try {
        return { canary, receiver: await listen("127.0.0.2", canary.port, answer) };
      } catch (error) {
        await canary.close();
        if (i >= 5) throw error;
      }
    }
  }

  it("a name answering a checked address first and 127.0.0.1 afterwards: the connection goes to the checked one", async () => {
    const { canary, receiver } = await pair();
    const lookups: string[] = [];
    const rebinding: Resolver = async (hostname) => {
      lookups.push(hostname);
      return [{ address: lookups.length === 1 ? "127.0.0.2" : "127.0.0.1", family: 4 }];
    };
    const policy = new AddressPolicy(["127.0.0.2/32"], rebinding);
    const url = `http://rebind.test:${receiver.port}/hook`;

    const first = await postWebhook({ url, headers, body: "{}", policy, limits });
    expect(first.statusCode).toBe(204);
    expect(receiver.requests).toEqual([{ url: "/hook", host: `rebind.test:${receiver.port}` }]); // Host keeps the name
    expect(lookups).toEqual(["rebind.test"]); // resolved once, then pinned

    // Every later lookup answers 127.0.0.1: refused, never connected.
    const second = await postWebhook({ url, headers, body: "{}", policy, limits });
    expect(second.statusCode).toBeNull();
    expect(second.error).toMatch(/forbidden|not allowed/);
    await sleep(100);
    expect(canary.connections).toBe(0);
    expect(receiver.connections).toBe(1);
  });

  it("a name answering both an allowed address and 127.0.0.1 is refused before connecting", async () => {
    const { canary, receiver } = await pair();
    for (const answers of [
      ["127.0.0.2", "127.0.0.1"],
      ["127.0.0.1", "127.0.0.2"],
    ]) {
      const mixed: Resolver = async () => answers.map((address) => ({ address, family: 4 }));
      const policy = new AddressPolicy(["127.0.0.2"], mixed);
      await expect(policy.check(new URL("http://mixed.test/"))).rejects.toBeInstanceOf(
        CallbackForbiddenError,
      );
      const outcome = await postWebhook({
        url: `http://mixed.test:${receiver.port}/`,
        headers,
        body: "{}",
        policy,
        limits,
      });
      expect(outcome.statusCode).toBeNull();
      expect(outcome.error).toMatch(/forbidden/);
    }
    // The same for a public address mixed with loopback (checked only: nothing connects).
    const publicMix: Resolver = async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ];
    await expect(
      new AddressPolicy([], publicMix).check(new URL("http://mixed.test/")),
    ).rejects.toBeInstanceOf(CallbackForbiddenError);
    const v6Mix: Resolver = async () => [
      { address: "2606:2800:220:1:248:1893:25c8:1946", family: 6 },
      { address: "::ffff:127.0.0.1", family: 6 },
    ];
    await expect(new AddressPolicy([], v6Mix).check(new URL("http://mixed6.test/"))).rejects.toBeInstanceOf(
      CallbackForbiddenError,
    );
    await sleep(100);
    expect(canary.connections).toBe(0);
    expect(receiver.connections).toBe(0);
  });

  it("names resolving to loopback, mapped or metadata addresses are refused; failures to resolve too", async () => {
    const answers: Record<string, string[]> = {
      "loop.test": ["127.0.0.1"],
      "loop6.test": ["::1"],
      "mapped.test": ["::ffff:127.0.0.1"],
      "mappedhex.test": ["::ffff:7f00:1"],
      "imds.test": ["169.254.169.254"],
      "imds6.test": ["fd00:ec2::254"],
      "cgnat.test": ["100.64.0.1"],
      "nat64.test": ["64:ff9b::a9fe:a9fe"],
      "compat.test": ["::7f00:1"],
      "siit.test": ["::ffff:0:7f00:1"],
    };
    const resolver: Resolver = async (hostname) => {
      const list = answers[hostname];
      if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
      return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    };
    const policy = new AddressPolicy([], resolver);
    for (const name of [...Object.keys(answers), "nowhere.test"]) {
      await expect(policy.check(new URL(`http://${name}/`)), name).rejects.toBeInstanceOf(
        CallbackForbiddenError,
      );
    }
    // A public answer passes the check (never connected to here).
    const pub: Resolver = async () => [{ address: "93.184.216.34", family: 4 }];
    await expect(new AddressPolicy([], pub).check(new URL("http://public.test/"))).resolves.toEqual([
      { address: "93.184.216.34", family: 4 },
    ]);
  });

  it("a 302 to the canary is not followed", async () => {
    let canaryPort = 0;
    const { canary, receiver } = await pair(
      (res) => void res.writeHead(302, { location: `http://127.0.0.1:${canaryPort}/` }).end(),
    );
    canaryPort = canary.port;
    const policy = new AddressPolicy(["127.0.0.2"]);
    const outcome = await postWebhook({
      url: `http://127.0.0.2:${receiver.port}/`,
      headers,
      body: "{}",
      policy,
      limits,
    });
    expect(outcome.statusCode).toBe(302);
    await sleep(200);
    expect(receiver.requests).toHaveLength(1);
    expect(canary.connections).toBe(0);
  });

  it("through the server: the 302 is recorded as a failed attempt and not followed", async () => {
    let canaryPort = 0;
    const { canary, receiver } = await pair(
      (res) => void res.writeHead(302, { location: `http://127.0.0.1:${canaryPort}/` }).end(),
    );
    canaryPort = canary.port;
    const server = await startServer({ config: { callbackAllow: ["127.0.0.2"], callbackRetryHours: 0 } });
    try {
      const k = await server.key("redirect");
      const submitted = await http(`${server.url}/v1/jobs`, {
        headers: bearer(k),
        json: { type: "demo.echo", input: 1, callback: { url: `http://127.0.0.2:${receiver.port}/hook` } },
      });
      expect(submitted.status).toBe(202);
      const job = (await submitted.json()) as Job;
      let items: { statusCode: number | null; nextAttemptAt: number | null; error: string | null }[] = [];
      for (let i = 0; i < 200 && items.length === 0; i++) {
        await sleep(25);
        items = (
          (await (
            await http(`${server.url}/v1/jobs/${job.id}/deliveries`, { headers: bearer(k) })
          ).json()) as { items: typeof items }
        ).items;
      }
      expect(items).toEqual([expect.objectContaining({ statusCode: 302, nextAttemptAt: null })]);
      expect(items[0]!.error).toMatch(/302/);
      await sleep(200);
      expect(canary.connections).toBe(0);
      expect(receiver.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
