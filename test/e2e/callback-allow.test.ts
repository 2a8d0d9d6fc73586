/**
 * `tessera serve --callback-allow 127.0.0.1/32`, as the README's webhook section shows it: a
 * developer receives callbacks on their own machine while the SSRF guard stays on for every
 * other private or loopback address. The real binary, a real receiver on loopback.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FAST, killAll, spawnTessera, waitFor } from "../helpers/cluster.js";
import { http } from "../helpers/server.js";

let receiver: Server;
let port: number;
const received: { type: string; data: { id: string } }[] = [];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tessera-allow-"));
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      received.push(JSON.parse(body) as (typeof received)[number]);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  port = (receiver.address() as AddressInfo).port;
});
afterEach(() => killAll());
afterAll(() => {
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

const submitWithCallback = (base: string, url: string) =>
  http(`${base}/v1/jobs`, { json: { type: "demo.echo", input: { hello: "me" }, callback: { url } } });

describe("--callback-allow for a loopback receiver in development", () => {
  it("admits exactly 127.0.0.1: the callback is delivered; other loopback addresses stay refused", async () => {
    const node = await spawnTessera([
      "--dev",
      "--demo",
      "--db",
      join(dir, "allow.db"),
      ...FAST,
      "--callback-allow",
      "127.0.0.1/32",
    ]);
    const res = await submitWithCallback(node.url, `http://127.0.0.1:${port}/hooks/tessera`);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const event = await waitFor("the callback", async () => received.find((e) => e.data.id === id), 15_000);
    expect(event.type).toBe("job.succeeded");

    for (const url of [`http://127.0.0.2:${port}/`, `http://[::1]:${port}/`, `http://10.0.0.1:${port}/`]) {
      const refused = await submitWithCallback(node.url, url);
      expect(refused.status, url).toBe(400);
      expect(((await refused.json()) as { type: string }).type, url).toMatch(/callback-url-forbidden$/);
    }
  });

  it("without the flag, the same loopback callback is refused at submit (400 callback-url-forbidden)", async () => {
    const node = await spawnTessera(["--dev", "--demo", "--db", join(dir, "guarded.db"), ...FAST]);
    const res = await submitWithCallback(node.url, `http://127.0.0.1:${port}/hooks/tessera`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { type: string }).type).toMatch(/callback-url-forbidden$/);
  });

  it.each(["127.0.0.1/33", "127.0.0.1/x", "10.0.0.0/8/8", "http://127.0.0.1"])(
    "a malformed entry (%s) stops serve at start with a message naming the flag",
    async (entry) => {
      await expect(
        spawnTessera(["--dev", "--demo", "--db", join(dir, "bad.db"), "--callback-allow", entry], {
          timeoutMs: 15_000,
        }),
      ).rejects.toThrow(/--callback-allow: .* is neither a host name nor an address or CIDR/);
    },
  );
});
