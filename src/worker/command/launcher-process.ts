/**
 * The task launcher: a small Node process of its own that spawns and watches command tasks for
 * a server (see launcher.ts). `fork` copies the page tables of the process that calls it, so
 * its cost grows with that process's memory: ~2 ms from this process (~50 MB), 10+ ms from a
 * server holding a few hundred MB, and all of it blocking the caller. Here it blocks neither
 * the server's event loop nor grows with the server's heap.
 *
 * When the server goes (its IPC channel closes: it exited, crashed, or was killed), every task
 * still running is stopped as on a cancel, and then this process exits: no task outlives both.
 */
import { runTask } from "./task-process.js";
import type { FromLauncher, ToLauncher } from "./launcher.js";

const running = new Map<number, { controller: AbortController; done: Promise<unknown> }>();
const post = (message: FromLauncher) => {
  if (process.connected) process.send!(message);
};

process.on("message", (message: ToLauncher) => {
  if (message.op === "abort") {
    running.get(message.id)?.controller.abort();
    return;
  }
  const { id, spec } = message;
  const controller = new AbortController();
  const done = runTask({
    ...spec,
    signal: controller.signal,
    onSpawn: (pid) => post({ id, kind: "spawned", pid }),
    onProgress: (progress) => post({ id, kind: "progress", progress }),
    onStderrLine: (line) => post({ id, kind: "line", line }),
  }).then((exit) => {
    running.delete(id);
    const spawnError = exit.spawnError
      ? { code: exit.spawnError.code ?? null, message: exit.spawnError.message }
      : null;
    post({ id, kind: "exit", exit: { ...exit, stdout: new Uint8Array(exit.stdout), spawnError } });
  });
  running.set(id, { controller, done });
});

process.once("disconnect", () => {
  for (const task of running.values()) task.controller.abort();
  void Promise.allSettled([...running.values()].map((t) => t.done)).then(() => process.exit(0));
});
