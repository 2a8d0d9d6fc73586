import { Worker } from "node:worker_threads";
import { signalTree } from "./process-tree.js";
import type { ProgressLine } from "./task-output.js";
import { runTask, type TaskExit, type TaskSpec } from "./task-process.js";

/**
 * Runs tasks in a worker thread of its own. `spawn` forks the whole process synchronously
 * (1–3 ms of the calling thread in a server process): done on the main thread, every task start
 * would stall HTTP answers and store writes for that long. The thread spawns, reads the pipes
 * and reaps; the main thread gets each task's progress, stderr lines and exit as messages.
 *
 * Should the thread die, every task it ran is killed (by process group, from here) and
 * reported as failed, and the next task starts a new thread.
 */
export class TaskLauncher {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly tasks = new Map<number, LaunchedTask>();

  run(spec: TaskSpec): Promise<TaskExit> {
    if (spec.signal.aborted) return runTask(spec); // resolves at once, spawning nothing
    return new Promise((resolve) => {
      const id = this.nextId++;
      const onAbort = () => this.thread().postMessage({ op: "abort", id } satisfies ToThread);
      spec.signal.addEventListener("abort", onAbort, { once: true });
      this.tasks.set(id, { spec, pid: null, resolve, onAbort });
      const { argv, env, cwd, stdin, killGraceMs, maxOutputBytes } = spec;
      const message: ToThread = {
        op: "run",
        id,
        spec: { argv, env, cwd, stdin, killGraceMs, maxOutputBytes },
      };
      this.thread().postMessage(message);
    });
  }

  /** Ends the thread once no task runs (tasks already running keep it until they end). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker && this.tasks.size === 0) await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startThread();
    worker.unref(); // an idle launcher must not keep the process alive
    worker.on("message", (message: FromThread) => this.onMessage(message));
    worker.on("error", (error) => this.onThreadGone(worker, error));
    worker.on("exit", (code) =>
      this.onThreadGone(worker, new Error(`the task launcher thread exited (${code})`)),
    );
    this.worker = worker;
    return worker;
  }

  private onMessage(message: FromThread): void {
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
        this.settle(message.id, { ...exit, stdout: Buffer.from(exit.stdout), spawnError });
      }
    }
  }

  private onThreadGone(worker: Worker, error: Error): void {
    if (this.worker === worker) this.worker = null;
    for (const [id, task] of this.tasks) {
      if (task.pid !== null) signalTree(task.pid, "SIGKILL");
      this.settle(id, {
        code: null,
        signal: "SIGKILL",
        stdout: Buffer.alloc(0),
        stderrTail: `the task launcher failed: ${error.message}`,
        stoppedBy: null,
        spawnError: null,
      });
    }
  }

  private settle(id: number, exit: TaskExit): void {
    const task = this.tasks.get(id);
    if (!task) return;
    this.tasks.delete(id);
    task.spec.signal.removeEventListener("abort", task.onAbort);
    task.resolve(exit);
    if (this.tasks.size === 0 && this.worker === null) void this.close();
  }
}

interface LaunchedTask {
  spec: TaskSpec;
  pid: number | null;
  resolve: (exit: TaskExit) => void;
  onAbort: () => void;
}

/** What the main thread sends: a task to run (its spec without the callbacks), or an abort. */
export type ToThread =
  | {
      op: "run";
      id: number;
      spec: Pick<TaskSpec, "argv" | "env" | "cwd" | "stdin" | "killGraceMs" | "maxOutputBytes">;
    }
  | { op: "abort"; id: number };

/** What the thread sends back about task `id`. */
export type FromThread =
  | { id: number; kind: "spawned"; pid: number }
  | { id: number; kind: "progress"; progress: ProgressLine }
  | { id: number; kind: "line"; line: string }
  | {
      id: number;
      kind: "exit";
      exit: Omit<TaskExit, "stdout" | "spawnError"> & {
        stdout: ArrayBuffer;
        spawnError: { code: string | null; message: string } | null;
      };
    };

/**
 * The thread's script: the built .js next to this file; from the TypeScript sources (tests,
 * tsx) the .ts one, loaded through tsx inside the thread.
 */
function startThread(): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./launcher-thread.js", import.meta.url));
  const url = JSON.stringify(new URL("./launcher-thread.ts", import.meta.url).href);
  return new Worker(`import("tsx/esm/api").then(({ tsImport }) => tsImport(${url}, ${url}))`, { eval: true });
}
