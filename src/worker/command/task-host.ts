import { randomBytes } from "node:crypto";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { LauncherPool, type TaskLauncher } from "./launcher.js";
import type { TaskExit } from "./task-process.js";

/** Where a command job's attempts run; createTessera opens one per server (see openTaskHost). */
export interface TaskHost {
  /** Parent of every attempt's output dir (and of results staged for the store). */
  taskDir: string;
  /** The server's environment, read only for the names a definition lets through. */
  serverEnv: Readonly<Record<string, string | undefined>>;
  /** Every live task, so a shutdown can stop them all before leases are released. */
  tasks: TaskRegistry;
  /** Spawns tasks from a small process of its own (see launcher.ts). */
  launcher: Pick<TaskLauncher, "run" | "close">;
}

/** The live tasks of a process: stopped together, and awaited, at shutdown. */
export class TaskRegistry {
  private readonly live = new Map<Promise<TaskExit>, AbortController>();

  /** Run a task under this registry: `stopAll` can abort it and waits for its end. */
  track(run: (signal: AbortSignal) => Promise<TaskExit>, signal: AbortSignal): Promise<TaskExit> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    const running = run(controller.signal).finally(() => {
      signal.removeEventListener("abort", onAbort);
      this.live.delete(running);
    });
    this.live.set(running, controller);
    return running;
  }

  get size(): number {
    return this.live.size;
  }

  /** Stop every live task (SIGTERM, SIGKILL after each one's grace) and wait until all are gone. */
  async stopAll(): Promise<void> {
    for (const controller of this.live.values()) controller.abort(new Error("the server is shutting down"));
    await Promise.allSettled([...this.live.keys()]);
  }
}

/** A server's task host: its own dir under `root`, removed when it closes. */
export interface ServerTaskHost extends TaskHost {
  /** Stop every task (the tree of each), then remove the dir. */
  close(): Promise<void>;
}

/** Launcher processes per server: two, so one task's start never waits for another's (see LauncherPool). */
const LAUNCHERS = 2;

const NODE_DIR = /^node-(\d+)-[0-9a-f]+$/;

/**
 * Open this server's dir of task attempts, `<root>/node-<pid>-<random>`, first removing those
 * of servers no longer alive (a crash leaves its attempts' dirs behind; a restart sweeps them).
 */
export async function openTaskHost(
  root: string,
  serverEnv: Readonly<Record<string, string | undefined>>,
): Promise<ServerTaskHost> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  for (const name of await readdir(root)) {
    const pid = NODE_DIR.exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    killStrays(join(root, name));
    await rm(join(root, name), { recursive: true, force: true }).catch(() => undefined);
  }
  const taskDir = join(root, `node-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(taskDir, { mode: 0o700 });
  const tasks = new TaskRegistry();
  const launcher = new LauncherPool(LAUNCHERS);
  launcher.warm();
  return {
    taskDir,
    serverEnv,
    tasks,
    launcher,
    async close() {
      await tasks.stopAll();
      await launcher.close();
      await rm(taskDir, { recursive: true, force: true });
    },
  };
}

/**
 * SIGKILL what a dead server's tasks left running: a server killed with SIGKILL cannot stop
 * its tasks, and they outlive it in process groups of their own. Each is found by the output
 * dir in its environment (inherited by its children), under the dead server's dir.
 */
function killStrays(nodeDir: string): void {
  const marker = `TESSERA_OUTPUT_DIR=${nodeDir}/`;
  let entries;
  try {
    entries = readdirSync("/proc", { withFileTypes: true });
  } catch {
    return; // no /proc (not Linux): nothing to find them by
  }
  for (const entry of entries) {
    if (!entry.isDirectory() || !/^\d+$/.test(entry.name)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry.name}/environ`, "latin1");
    } catch {
      continue; // gone, or not ours to read
    }
    if (!environ.split("\0").some((v) => v.startsWith(marker))) continue;
    try {
      process.kill(Number(entry.name), "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

/** The executable `name` resolves to on `path` (a PATH value), or null (for a start-up warning). */
export function findExecutable(name: string, path: string | undefined): string | null {
  const candidates = name.includes("/")
    ? [name]
    : (path ?? "").split(delimiter).flatMap((dir) => (isAbsolute(dir) ? [join(dir, name)] : []));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
