/**
 * Child processes of the benchmark: started with tsx, talked to over IPC, and always killed —
 * on success, on error and on the parent's exit or interruption.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ParentMessage } from "./protocol.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUTPUT_TAIL = 8_000;
const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
}
process.once("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

type Waiter = {
  match: (m: ChildMessage) => boolean;
  resolve: (m: ChildMessage) => void;
  reject: (e: Error) => void;
};

export class Child {
  private readonly inbox: ChildMessage[] = [];
  private readonly waiters = new Set<Waiter>();
  private output = "";
  private failure: Error | null = null;
  readonly exit: Promise<number | null>;

  constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-OUTPUT_TAIL));
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    proc.on("message", (raw) => this.deliver(raw as ChildMessage));
    this.exit = new Promise((resolve) => {
      proc.once("close", (code, signal) => {
        live.delete(proc);
        this.fail(new Error(`${name} exited (code ${code}, signal ${signal})${this.tail()}`));
        resolve(code);
      });
    });
  }

  /** From now on every wait, current and future, rejects with `error` (the first one wins). */
  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters) waiter.reject(this.failure);
    this.waiters.clear();
  }

  /** The child's recent stdout/stderr, for error messages. */
  tail(): string {
    return this.output.trim() === "" ? "" : `\n--- ${this.name} output ---\n${this.output.trim()}`;
  }

  private deliver(message: ChildMessage): void {
    if (message.kind === "failed") {
      this.fail(new Error(`${this.name} failed: ${message.message}`));
      return;
    }
    for (const waiter of this.waiters) {
      if (waiter.match(message)) {
        this.waiters.delete(waiter);
        waiter.resolve(message);
        return;
      }
    }
    this.inbox.push(message);
  }

  /** The first message (already received or still to come) that `match` accepts. */
  next<K extends ChildMessage["kind"]>(
    kind: K,
    match: (m: Extract<ChildMessage, { kind: K }>) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<Extract<ChildMessage, { kind: K }>> {
    type M = Extract<ChildMessage, { kind: K }>;
    const accepts = (m: ChildMessage): m is M => m.kind === kind && match(m as M);
    const index = this.inbox.findIndex(accepts);
    if (index !== -1) return Promise.resolve(this.inbox.splice(index, 1)[0] as M);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<M>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name}: no "${kind}" message within ${timeoutMs} ms${this.tail()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        match: accepts,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as M);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** The child's CPU time so far (user + system), in microseconds. */
  async cpuMicros(): Promise<number> {
    const request: ParentMessage = { kind: "cpu?" };
    this.proc.send(request);
    return (await this.next("cpu")).micros;
  }

  /** Ask the child to stop (SIGTERM), and kill it if it has not exited within `graceMs`. */
  async stop(graceMs = 3_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exit;
    clearTimeout(timer);
  }
}

/** Start `bench/<script>` under tsx with its options as one JSON argument. */
export function startChild(script: string, options: object): Child {
  const child = fork(fileURLToPath(new URL(script, import.meta.url)), [JSON.stringify(options)], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  live.add(child);
  return new Child(script.replace(/\.ts$/, ""), child);
}

/** Stop every child still running (the normal end of a run). */
export async function stopAll(children: readonly Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}
