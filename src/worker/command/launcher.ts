import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { signalTree } from "./process-tree.js";
import type { ProgressLine } from "./task-output.js";
import { runTask, type TaskExit, type TaskSpec } from "./task-process.js";

/**
 * Runs tasks from a small launcher process (launcher-process.ts), over its IPC channel. `spawn`
 * forks the calling process synchronously, at a cost that grows with its memory (10+ ms from a
 * server of a few hundred MB, blocking its event loop each time); the launcher forks from ~50
 * MB, on the other core. It spawns, reads the pipes and reaps; this side gets each task's
 * progress, stderr lines and exit as messages.
 *
 * Should the launcher die, every task it ran is killed (by process group, from here) and
 * reported as failed, and the next task starts a new launcher. Should the server die, the
 * launcher stops every task and exits.
 */
export class TaskLauncher {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly tasks = new Map<number, LaunchedTask>();

  run(spec: TaskSpec): Promise<TaskExit> {
    if (spec.signal.aborted) return runTask(spec); // resolves at once, spawning nothing
    return new Promise((resolve) => {
      const id = this.nextId++;
      const onAbort = () => this.send({ op: "abort", id });
      spec.signal.addEventListener("abort", onAbort, { once: true });
      this.tasks.set(id, { spec, pid: null, resolve, onAbort });
      const { argv, env, cwd, stdin, killGraceMs, maxOutputBytes, outputDir } = spec;
      this.send({
        op: "run",
        id,
        spec: { argv, env, cwd, stdin, killGraceMs, maxOutputBytes, ...(outputDir ? { outputDir } : {}) },
      });
      this.child?.channel?.ref(); // running tasks keep this process alive
    });
  }

  /** Tasks running through this launcher. */
  get running(): number {
    return this.tasks.size;
  }

  /** Start the launcher now rather than at the first task (it takes ~50 ms to start). */
  warm(): void {
    this.process();
  }

  /** Ends the launcher once no task runs (tasks already running keep it until they end). */
  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.tasks.size > 0) return;
    this.child = null;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.ref(); // wait for it: this process may have nothing else to do meanwhile
    child.disconnect(); // the launcher exits when its channel closes
    await exited;
  }

  private send(message: ToLauncher): void {
    this.process().send(message);
  }

  private process(): ChildProcess {
    if (this.child) return this.child;
    const child = startLauncher();
    child.unref(); // an idle launcher must not keep this process alive
    child.channel?.unref();
    child.on("message", (message: FromLauncher) => this.onMessage(message));
    child.on("error", (error) => this.onLauncherGone(child, error));
    child.on("exit", (code, signal) =>
      this.onLauncherGone(child, new Error(`the task launcher exited (${signal ?? code})`)),
    );
    this.child = child;
    return child;
  }

  private onMessage(message: FromLauncher): void {
    const task = this.tasks.get(message.id);
    if (!task) return;
    switch (message.kind) {
      case "spawned":
        task.pid = message.pid;
        return;
      case "progress":
        task.spec.onProgress(message.progress);
        return;
      case "line":
        task.spec.onStderrLine(message.line);
        return;
      case "exit": {
        const { exit } = message;
        const spawnError = exit.spawnError
          ? Object.assign(new Error(exit.spawnError.message), { code: exit.spawnError.code ?? undefined })
          : null;
        const stdout = Buffer.from(exit.stdout.buffer, exit.stdout.byteOffset, exit.stdout.byteLength);
        this.settle(message.id, { ...exit, stdout, spawnError });
      }
    }
  }

  private onLauncherGone(child: ChildProcess, error: Error): void {
    if (this.child === child) this.child = null;
    for (const [id, task] of this.tasks) {
      if (task.pid !== null) signalTree(task.pid, "SIGKILL");
      this.settle(id, {
        code: null,
        signal: "SIGKILL",
        stdout: Buffer.alloc(0),
        stderrTail: `the task launcher failed: ${error.message}`,
        stoppedBy: null,
        spawnError: null,
        outputFiles: [],
      });
    }
  }

  private settle(id: number, exit: TaskExit): void {
    const task = this.tasks.get(id);
    if (!task) return;
    this.tasks.delete(id);
    task.spec.signal.removeEventListener("abort", task.onAbort);
    task.resolve(exit);
    if (this.tasks.size === 0) this.child?.channel?.unref();
  }
}

/**
 * Several launchers, each task given to the one with the fewest running. A spawn blocks its
 * launcher until the child has exec'd (2–3 ms on a busy machine); with one launcher, every
 * other task's start and exit waits behind it.
 */
export class LauncherPool {
  private readonly launchers: TaskLauncher[];

  constructor(size: number) {
    this.launchers = Array.from({ length: Math.max(1, size) }, () => new TaskLauncher());
  }

  run(spec: TaskSpec): Promise<TaskExit> {
    let best = this.launchers[0]!;
    for (const launcher of this.launchers) if (launcher.running < best.running) best = launcher;
    return best.run(spec);
  }

  warm(): void {
    for (const launcher of this.launchers) launcher.warm();
  }

  async close(): Promise<void> {
    await Promise.all(this.launchers.map((l) => l.close()));
  }
}

interface LaunchedTask {
  spec: TaskSpec;
  pid: number | null;
  resolve: (exit: TaskExit) => void;
  onAbort: () => void;
}

/** What the server sends: a task to run (its spec without the callbacks), or an abort. */
export type ToLauncher =
  | {
      op: "run";
      id: number;
      spec: Pick<TaskSpec, "argv" | "env" | "cwd" | "stdin" | "killGraceMs" | "maxOutputBytes" | "outputDir">;
    }
  | { op: "abort"; id: number };

/** What the launcher sends back about task `id`. */
export type FromLauncher =
  | { id: number; kind: "spawned"; pid: number }
  | { id: number; kind: "progress"; progress: ProgressLine }
  | { id: number; kind: "line"; line: string }
  | {
      id: number;
      kind: "exit";
      exit: Omit<TaskExit, "stdout" | "spawnError"> & {
        stdout: Uint8Array;
        spawnError: { code: string | null; message: string } | null;
      };
    };

/**
 * The launcher's script: the built .js next to this file, or from the TypeScript sources
 * (tests, tsx) the .ts one, through tsx. Its environment is not the server's: it needs none,
 * and each task gets its own, built by task-env.ts.
 */
function startLauncher(): ChildProcess {
  const fromSources = import.meta.url.endsWith(".ts");
  const script = fileURLToPath(new URL(`./launcher-process.${fromSources ? "ts" : "js"}`, import.meta.url));
  return fork(script, [], {
    execArgv: fromSources ? ["--import", "tsx"] : [],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    serialization: "advanced", // stdout travels as bytes, not as JSON
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}
