/**
 * The worker thread of a TaskLauncher: it spawns and watches tasks, so that `spawn` (a
 * synchronous fork and exec that costs the calling thread 1–3 ms in a large process) never
 * blocks the event loop that serves HTTP and writes the store. Messages: see launcher.ts.
 */
import { parentPort } from "node:worker_threads";
import { runTask } from "./task-process.js";
import type { FromThread, ToThread } from "./launcher.js";

const port = parentPort!;
const running = new Map<number, AbortController>();
const post = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

port.on("message", (message: ToThread) => {
  if (message.op === "abort") {
    running.get(message.id)?.abort();
    return;
  }
  const { id, spec } = message;
  const controller = new AbortController();
  running.set(id, controller);
  void runTask({
    ...spec,
    signal: controller.signal,
    onSpawn: (pid) => post({ id, kind: "spawned", pid }),
    onProgress: (progress) => post({ id, kind: "progress", progress }),
    onStderrLine: (line) => post({ id, kind: "line", line }),
  }).then((exit) => {
    running.delete(id);
    // A copy of its own, moved to the main thread (the Buffer may share a pooled slab).
    const stdout = new Uint8Array(exit.stdout).buffer;
    const spawnError = exit.spawnError
      ? { code: exit.spawnError.code ?? null, message: exit.spawnError.message }
      : null;
    post({ id, kind: "exit", exit: { ...exit, stdout, spawnError } }, [stdout]);
  });
});
