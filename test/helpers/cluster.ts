/**
 * Real processes for process-level tests: `tessera serve` spawned in its own process group
 * (so a test can SIGKILL, SIGSTOP or SIGCONT the whole group), the `tessera` CLI, a supervisor
 * that restarts a crashed node, and PostgreSQL plumbing (a throw-away database, one-shot
 * queries, LISTEN on Tessera's channel, terminating backends of one database only).
 *
 * Every node spawned here is tracked; call `killAll()` in `afterEach`/`afterAll`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { PG_URL } from "./postgres.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const FIXTURE_JOBS = join(ROOT, "test/fixtures/jobs");

/** Short leases so recovery fits in a test (CI scale of RELIABILITY.md). */
export const LEASE_MS = 2000;
export const SWEEP_MS = 200;
export const FAST = [
  "--lease-ms",
  String(LEASE_MS),
  "--heartbeat-ms",
  "500",
  "--sweep-interval-ms",
  String(SWEEP_MS),
  "--poll-interval-ms",
  "500",
];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Node {
  name: string;
  child: ChildProcess;
  /** Also the process group id (spawned detached). */
  pid: number;
  url: string;
  output: () => string;
  exited: Promise<Exit>;
  hasExited: () => boolean;
  /** Send a signal to the whole process group (no-op once it exited). */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL the whole process group and wait for the exit (no-op once it exited). */
  kill(): Promise<void>;
}

const live = new Set<Node>();
const supervisors = new Set<Supervisor>();

/** The environment of a spawned node: ours, minus any TESSERA_* setting. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("TESSERA_")) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Spawn `tessera serve <args>` on port 0 (defaults first, so `args` may override them) and
 * resolve once it prints `tessera listening on …`.
 */
export async function spawnTessera(
  args: string[],
  options: {
    name?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    /** Run the built binary (dist/main.js, as `npx tessera` does) instead of the sources. */
    built?: boolean;
  } = {},
): Promise<Node> {
  const child = spawn(
    process.execPath,
    [
      ...(options.built ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"]),
      "serve",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--log-level",
      "warn",
      ...args,
    ],
    { cwd: ROOT, env: cleanEnv(options.env), detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  let exitedFlag = false;
  const exited = new Promise<Exit>((done) =>
    child.once("exit", (code, signal) => {
      exitedFlag = true;
      live.delete(node);
      done({ code, signal });
    }),
  );
  const node: Node = {
    name: options.name ?? "tessera",
    child,
    pid: child.pid!,
    url: "",
    output: () => out,
    exited,
    hasExited: () => exitedFlag,
    signal(signal) {
      if (exitedFlag) return;
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    },
    async kill() {
      node.signal("SIGKILL");
      await exited;
    },
  };
  live.add(node);
  const until = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const match = /tessera listening on (https?:\/\/[^\s]+)/.exec(out);
    if (match) {
      node.url = match[1]!;
      return node;
    }
    if (exitedFlag || Date.now() > until) {
      await node.kill();
      throw new Error(`${node.name}: tessera serve did not start:\n${out}`);
    }
    await sleep(20);
  }
}

/** SIGKILL every node still running, supervised ones included (afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...supervisors].map((s) => s.stop()));
  await Promise.all([...live].map((n) => n.kill()));
}

/** True while any process of the group `pgid` exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Run the `tessera` CLI to completion. */
export function tesseraCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done, fail) => {
    child.once("error", fail);
    child.once("close", (code) => done({ code, stdout, stderr }));
  });
}

/** `tessera keys create --json` (it also migrates the schema); returns the key. */
export async function createKey(options: { db: string; schema?: string; tenant?: string }): Promise<string> {
  const args = ["keys", "create", "--tenant", options.tenant ?? "t", "--db", options.db, "--json"];
  if (options.schema !== undefined) args.push("--db-schema", options.schema);
  const { code, stdout, stderr } = await tesseraCli(args);
  if (code !== 0) throw new Error(`keys create failed (${code}): ${stdout}${stderr}`);
  return (JSON.parse(stdout) as { key: string }).key;
}

/** Poll `probe` every 50 ms until it returns something other than undefined/false. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  stepMs = 50,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** pino's JSON lines in a node's output (anything else is skipped). */
export function logLines(output: string): { level: number; msg?: string; [k: string]: unknown }[] {
  const lines = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as { level: number; msg?: string });
    } catch {
      // a partial line
    }
  }
  return lines;
}

/** Lines of an execution log written by the fixtures (`{ jobId, attempt, pid, start }`). */
export interface Execution {
  jobId: string;
  attempt: number;
  pid: number;
  start: number;
  poison?: boolean;
}

export function readExecutions(path: string): Execution[] {
  return readJsonLines<Execution>(path);
}

/** A log of one JSON value per line, as the fixtures write it; empty while there is no file. */
export function readJsonLines<T>(path: string): T[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

/**
 * Keeps one node running: when it exits on its own (a crash), it is spawned again with the
 * same arguments. `crashes` counts those exits.
 */
export class Supervisor {
  crashes = 0;
  readonly exits: Exit[] = [];
  private node: Promise<Node>;
  private stopping = false;

  constructor(
    private readonly args: string[],
    private readonly name: string,
  ) {
    supervisors.add(this);
    this.node = this.launch();
  }

  private launch(): Promise<Node> {
    const started = spawnTessera(this.args, { name: `${this.name}#${this.crashes}` });
    void started.then(
      (node) =>
        node.exited.then((exit) => {
          if (this.stopping) return;
          this.crashes++;
          this.exits.push(exit);
          this.node = this.launch();
        }),
      () => undefined,
    );
    return started;
  }

  /** The running node (waits for a restart in progress). */
  current(): Promise<Node> {
    return this.node;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    supervisors.delete(this);
    await (await this.node.catch(() => null))?.kill();
  }
}

// --- PostgreSQL --------------------------------------------------------------------------------

/** `PG_URL` with another database name. */
export function urlForDatabase(name: string): string {
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** One statement on a short-lived connection (survives terminated backends between calls). */
export async function pgQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, application_name: "tessera-test" });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A database of its own (`CREATE DATABASE`), for tests that terminate backends: they filter by
 * this database's name, so other test files running in parallel are never hit.
 */
export async function createDatabase(
  prefix = "tessera_e2e",
): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  await pgQuery(PG_URL, `CREATE DATABASE ${name}`);
  return {
    name,
    url: urlForDatabase(name),
    async drop() {
      await pgQuery(PG_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * Terminate backends of database `name` only (run from a connection to another database, so
 * the caller's own connection is never among them). Returns how many were terminated.
 */
export async function terminateBackends(name: string, applicationName?: string): Promise<number> {
  const rows = await pgQuery<{ ok: boolean }>(
    PG_URL,
    `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
     WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name = $2)`,
    [name, applicationName ?? null],
  );
  return rows.filter((r) => r.ok).length;
}

/** Connections to database `name` with this application_name (e.g. `tessera-listener`). */
export async function countBackends(name: string, applicationName: string): Promise<number> {
  const [row] = await pgQuery<{ n: number }>(
    PG_URL,
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
    [name, applicationName],
  );
  return row!.n;
}

/**
 * Every terminal transition of the schema's jobs, as the database saw it: a trigger (the
 * test's own, beside the schema's tables) logs each move from queued or running to a terminal
 * state, so a job moved twice, by two attempts or two nodes, shows twice. Read the log with
 * `moves()`: job id to the statuses it moved to, in order.
 */
export async function recordTerminalMoves(
  url: string,
  schema: string,
): Promise<{ moves(): Promise<Map<string, string[]>> }> {
  await pgQuery(
    url,
    `CREATE TABLE ${schema}.test_terminal_moves (seq bigserial PRIMARY KEY, job_id text NOT NULL, status text NOT NULL);
     CREATE FUNCTION ${schema}.test_log_terminal_move() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO ${schema}.test_terminal_moves (job_id, status) VALUES (NEW.id, NEW.status);
         RETURN NULL;
       END $$;
     CREATE TRIGGER test_terminal_moves AFTER UPDATE ON ${schema}.jobs FOR EACH ROW
       WHEN (OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running'))
       EXECUTE FUNCTION ${schema}.test_log_terminal_move();`,
  );
  return {
    async moves() {
      const rows = await pgQuery<{ job_id: string; status: string }>(
        url,
        `SELECT job_id, status FROM ${schema}.test_terminal_moves ORDER BY seq`,
      );
      const moves = new Map<string, string[]>();
      for (const row of rows) moves.set(row.job_id, [...(moves.get(row.job_id) ?? []), row.status]);
      return moves;
    },
  };
}

/** The flags of a node on PostgreSQL with a signing secret (not --dev) and the fixture jobs. */
export function pgNodeArgs(options: {
  db: string;
  schema: string;
  secret: string;
  poolSize?: number;
}): string[] {
  return [
    "--db",
    options.db,
    "--db-schema",
    options.schema,
    "--db-pool-size",
    String(options.poolSize ?? 4),
    "--secret",
    options.secret,
    "--jobs",
    FIXTURE_JOBS,
    ...FAST,
  ];
}
