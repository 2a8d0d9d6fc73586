import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, OPTIONS } from "../src/config.js";

const SECRET = "x".repeat(32);

describe("config", () => {
  it("documents every flag and its variable in the README", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    for (const [name, spec] of Object.entries(OPTIONS)) {
      // Prettier pads the table's cells, so match the row by its first two cells only.
      expect(readme, name).toMatch(new RegExp(`\\| \`--${name}\` +\\| \`${spec.env}\` +\\|`));
    }
  });

  it("takes flags over environment over defaults", () => {
    const config = loadConfig(
      { port: "4000" },
      { TESSERA_PORT: "5000", TESSERA_CONCURRENCY: "3", TESSERA_SECRET: SECRET },
    );
    expect(config.port).toBe(4000);
    expect(config.concurrency).toBe(3);
    expect(config.leaseMs).toBe(30000);
    expect(config.heartbeatMs).toBe(10000);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("refuses to start without a signing secret unless in dev mode", () => {
    expect(() => loadConfig({}, {})).toThrow(ConfigError);
    expect(loadConfig({ dev: true }, {}).dev).toBe(true);
    expect(() => loadConfig({ secret: "short" }, {})).toThrow(/at least 32/);
  });

  it("rejects out-of-range and malformed values with the flag's name", () => {
    expect(() => loadConfig({ port: "70000", dev: true }, {})).toThrow(/--port/);
    expect(() => loadConfig({ dev: true }, { TESSERA_LEASE_MS: "abc" })).toThrow(/--lease-ms/);
    expect(() => loadConfig({ dev: true, "lease-ms": "1000", "heartbeat-ms": "2000" }, {})).toThrow(
      /heartbeat/,
    );
    expect(() => loadConfig({ dev: true, "public-url": "ftp://x" }, {})).toThrow(/public-url/);
  });

  it("takes a separate LISTEN URL for PostgreSQL only, and prepared statements unless told not to", () => {
    const pg = "postgres://app@bouncer:6432/jobs";
    const direct = "postgres://app@db:5432/jobs";
    const config = loadConfig({ dev: true, db: pg }, { TESSERA_DB_LISTEN_URL: direct });
    expect(config).toMatchObject({ db: pg, dbListenUrl: direct, dbNoPrepare: false });
    expect(loadConfig({ dev: true, db: pg, "db-no-prepare": true }, {}).dbNoPrepare).toBe(true);
    expect(loadConfig({ dev: true }, { TESSERA_DB_NO_PREPARE: "true" }).dbNoPrepare).toBe(true);
    expect(loadConfig({ dev: true, db: pg }, {}).dbListenUrl).toBeNull();
    expect(() => loadConfig({ dev: true, db: pg, "db-listen-url": "db:5432" }, {})).toThrow(
      /--db-listen-url/,
    );
    expect(() => loadConfig({ dev: true, "db-listen-url": direct }, {})).toThrow(/PostgreSQL only/);
  });

  it("splits list variables on commas", () => {
    const config = loadConfig({ dev: true }, { TESSERA_JOBS: "a.js, b.ts,," });
    expect(config.jobs).toEqual(["a.js", "b.ts"]);
  });
});
