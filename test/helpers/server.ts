import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import { generateApiKey } from "../../src/auth/api-keys.js";
import type { Config } from "../../src/config.js";
import { demoJobs } from "../../src/demo/jobs.js";
import type { JobDefinition } from "../../src/jobs/define.js";
import type { Store } from "../../src/store/store.js";
import { createTessera, type Tessera } from "../../src/tessera.js";

/** A new live API key for `tenant` (created if needed), stored as the CLI stores it. */
export async function issueKey(store: Store, tenant: string): Promise<string> {
  const k = generateApiKey();
  await store.createApiKey({
    tenantName: tenant,
    keyId: k.keyId,
    prefix: k.prefix,
    hash: k.hash,
    now: Date.now(),
  });
  return k.key;
}

export const TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef";

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  tessera: Tessera;
  dir: string;
  dbPath: string;
  /** A fresh API key for `tenant` (auth mode only). */
  key(tenant: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A real Tessera on a real socket (port 0) over a fresh SQLite file in a temp folder.
 * Auth is on (with a test secret) unless `dev: true`.
 */
export async function startServer(
  options: {
    jobs?: readonly JobDefinition[];
    config?: Partial<Config>;
    dev?: boolean;
    /** @default a silent logger (TEST_LOG_LEVEL to see it) */
    logger?: Logger;
    /** The server's clock. @default Date.now */
    now?: () => number;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "tessera-test-"));
  const dbPath = join(dir, "tessera.db");
  const dev = options.dev ?? false;
  const tessera = await createTessera({
    jobs: options.jobs ?? demoJobs,
    logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    ...(options.now ? { now: options.now } : {}),
    config: {
      db: dbPath,
      dev,
      secrets: dev ? [] : [TEST_SECRET],
      leaseMs: 2000,
      heartbeatMs: 500,
      sweepIntervalMs: 200,
      pollIntervalMs: 500,
      shutdownGraceMs: 1000,
      ...options.config,
    },
  });
  const url = await tessera.listen({ port: 0, host: "127.0.0.1" });
  return {
    url,
    tessera,
    dir,
    dbPath,
    async key(tenant: string) {
      return issueKey(tessera.store, tenant);
    },
    async close() {
      await tessera.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** fetch that never follows redirects, with a JSON body helper. */
export async function http(
  url: string,
  init: { method?: string; headers?: Record<string, string>; json?: unknown; body?: string | Buffer } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | Buffer | undefined = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["content-type"] ??= "application/json";
  }
  return fetch(url, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    redirect: "manual",
    ...(body !== undefined ? { body } : {}),
  });
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}
