/**
 * A real pgbouncer (Debian's package; `.ci/run` installs it) in transaction mode in front of the
 * test database, on a free port, for the tests of running Tessera behind one.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { waitFor } from "./cluster.js";

export const PGBOUNCER = "/usr/sbin/pgbouncer";

export const hasPgbouncer = (): boolean => existsSync(PGBOUNCER);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** Start pgbouncer in front of `target` (a postgres:// URL); `url` is the same database through it. */
export async function startPgbouncer(
  target: string,
  options: { serverConnections: number },
): Promise<{ url: string; stop: () => Promise<void> }> {
  const t = new URL(target);
  const db = t.pathname.slice(1);
  const user = decodeURIComponent(t.username) || "postgres";
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "tessera-pgbouncer-"));
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `${db} = host=${t.hostname} port=${t.port || "5432"} dbname=${db}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.serverConnections}`,
      "max_client_conn = 500",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "users.txt"), `"${user}" ""\n`);
  // pgbouncer will not run as root: as root (CI), run it as the postgres user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"]).toString().trim());
    chownSync(dir, id("-u"), id("-g"));
  }
  chmodSync(dir, 0o755);
  const command = asRoot ? ["runuser", "-u", "postgres", "--", PGBOUNCER] : [PGBOUNCER];
  const child = spawn(command[0]!, [...command.slice(1), join(dir, "pgbouncer.ini")], {
    detached: true,
    stdio: "ignore",
  });
  const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${db}`;
  await waitFor(
    "pgbouncer to accept connections",
    async () => {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.query("SELECT 1");
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    10_000,
    100,
  );
  return {
    url,
    stop: async () => {
      const exited = new Promise((done) => child.once("exit", done));
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
