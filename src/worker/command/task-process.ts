import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, rmdirSync } from "node:fs";
import type { Readable } from "node:stream";
import { groupAlive, signalTree, treeAlive } from "./process-tree.js";
import { LineSplitter, parseProgress, Tail, type ProgressLine } from "./task-output.js";

/** One run of a command: a fresh process that gets its input on stdin and runs to its exit. */
export interface TaskSpec {
  /** `[executable, ...args]`, looked up on the task's PATH; never through a shell. */
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  stdin: string;
  /** Aborting stops the task: SIGTERM to its tree, SIGKILL after `killGraceMs`. */
  signal: AbortSignal;
  killGraceMs: number;
  /** Stdout beyond this stops the task (`stoppedBy: "output-limit"`). */
  maxOutputBytes: number;
  onProgress(progress: ProgressLine): void;
  /** Every stderr line that is not a progress line (for the log). */
  onStderrLine(line: string): void;
  /** The process started, as `pid` (also its process group). */
  onSpawn?(pid: number): void;
  /**
   * A dir made (mode 0700) just before the spawn and, once the task is gone, removed if it is
   * empty; what it holds then is `outputFiles`. Done here, in the launcher, so that the common
   * attempt (a result on stdout) costs the server no file-system round trip.
   */
  outputDir?: string;
}

export interface TaskExit {
  /** The exit code, or null when a signal ended it (or it never started). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Stdout, whole (it is at most `maxOutputBytes`). */
  stdout: Buffer;
  /** The last 4 KiB of stderr. */
  stderrTail: string;
  /** Set when Tessera stopped the task (the abort signal, or a flood of stdout). */
  stoppedBy: "abort" | "output-limit" | null;
  /**
   * The process could not be started (ENOENT: no such executable, EACCES: not executable;
   * EOUTPUTDIR: its output dir could not be made).
   */
  spawnError: NodeJS.ErrnoException | null;
  /** The entries left in `outputDir` (which is removed when there are none). */
  outputFiles: string[];
}

/** After the leader exits, how long its pipes may stay open (held by a leftover) before they are cut. */
const PIPE_DRAIN_MS = 1000;
/** How long to wait for a SIGKILLed tree to be gone from /proc. */
const REAP_WAIT_MS = 2000;

/**
 * Run one task to its end. Resolves once the process has exited, its output is read, and
 * nothing of its process tree is left running: leftovers of a task that exited are killed, and
 * an aborted or flooding task is sent SIGTERM, then SIGKILL after the grace period. Never
 * rejects: a task that cannot start resolves with `spawnError`.
 */
export function runTask(spec: TaskSpec): Promise<TaskExit> {
  return new Promise((resolve) => new TaskRun(spec, resolve).start());
}

class TaskRun {
  private child: ChildProcess | null = null;
  private readonly stdout: Buffer[] = [];
  private stdoutBytes = 0;
  private readonly tail = new Tail();
  private stoppedBy: TaskExit["stoppedBy"] = null;
  private spawnError: NodeJS.ErrnoException | null = null;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  /** Whether anything of the task was left when it exited. */
  private leftovers = false;
  private done = false;

  constructor(
    private readonly spec: TaskSpec,
    private readonly resolve: (exit: TaskExit) => void,
  ) {}

  start(): void {
    const { spec } = this;
    if (spec.signal.aborted) return this.finish({ code: null, signal: null }, "abort");
    if (spec.outputDir !== undefined) {
      try {
        mkdirSync(spec.outputDir, { mode: 0o700 });
      } catch (error) {
        const why = (error as Error).message;
        this.spawnError = Object.assign(new Error(`its output dir could not be made: ${why}`), {
          code: "EOUTPUTDIR",
        });
        return this.finish({ code: null, signal: null }, null);
      }
    }
    let child: ChildProcess;
    try {
      child = spawn(spec.argv[0]!, spec.argv.slice(1), {
        cwd: spec.cwd,
        env: spec.env,
        shell: false,
        // Its own process group: the whole tree is signalled as one.
        detached: true,
        windowsHide: true,
        stdio: ["pipe", "pipe", "pipe", "pipe"],
      });
    } catch (error) {
      this.spawnError = error as NodeJS.ErrnoException;
      return this.finish({ code: null, signal: null }, null);
    }
    this.child = child;
    if (child.pid !== undefined) spec.onSpawn?.(child.pid);
    child.once("error", (error: NodeJS.ErrnoException) => {
      // Only a failure to start ends the run here; a kill that failed is retried by the timer.
      if (child.pid === undefined) {
        this.spawnError = error;
        this.finish({ code: null, signal: null }, null);
      }
    });
    child.once("exit", (code, signal) => this.onExit(code, signal));
    child.once("close", () => this.settle());

    child.stdin!.on("error", () => undefined); // a task that does not read its input: EPIPE
    child.stdin!.end(spec.stdin);
    child.stdout!.on("data", (chunk: Buffer) => this.onStdout(chunk));
    const stderrLines = new LineSplitter((line) => {
      const progress = parseProgress(line);
      if (progress) spec.onProgress(progress);
      else spec.onStderrLine(line);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      this.tail.push(chunk);
      stderrLines.push(chunk);
    });
    child.stderr!.once("end", () => stderrLines.end());
    const fd3 = child.stdio[3] as Readable | null;
    if (fd3) {
      const progressLines = new LineSplitter((line) => {
        const progress = parseProgress(line.startsWith("::") ? line : `::progress ${line}`);
        if (progress) spec.onProgress(progress);
      });
      fd3.on("data", (chunk: Buffer) => progressLines.push(chunk));
      fd3.on("error", () => undefined);
      fd3.once("end", () => progressLines.end());
    }
    spec.signal.addEventListener("abort", this.onAbort, { once: true });
  }

  private readonly onAbort = () => this.stop("abort");

  private onStdout(chunk: Buffer): void {
    if (this.stoppedBy === "output-limit") return;
    this.stdoutBytes += chunk.length;
    if (this.stdoutBytes > this.spec.maxOutputBytes) {
      this.stop("output-limit");
      return;
    }
    this.stdout.push(chunk);
  }

  /** SIGTERM to the tree now, SIGKILL after the grace period (at once if the task already exited). */
  private stop(reason: "abort" | "output-limit"): void {
    if (this.stoppedBy !== null || this.done) return;
    this.stoppedBy = reason;
    const pid = this.child?.pid;
    if (pid === undefined) return;
    if (this.exit) {
      signalTree(pid, "SIGKILL");
      return;
    }
    signalTree(pid, "SIGTERM");
    this.killTimer = setTimeout(() => signalTree(pid, "SIGKILL"), this.spec.killGraceMs);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exit = { code, signal };
    const pid = this.child!.pid!;
    // Run to completion means nothing of the task outlives it: leftovers are killed now. (Its
    // descendants that left the group were re-parented when it exited: see process-tree.ts.)
    this.leftovers = this.stoppedBy !== null ? treeAlive(pid) : groupAlive(pid);
    if (this.leftovers) signalTree(pid, "SIGKILL");
    // A leftover outside the tree we can see may hold the pipes open: stop waiting for them.
    setTimeout(() => {
      for (const stream of this.child!.stdio) stream?.destroy();
      this.settle();
    }, PIPE_DRAIN_MS).unref();
  }

  /** After 'close' (output read) or the drain timeout: wait for the tree to be gone, then resolve. */
  private settle(): void {
    if (!this.exit || this.done) return;
    const pid = this.child!.pid!;
    const until = Date.now() + REAP_WAIT_MS;
    // A stopped task's tree was walked in /proc when it was signalled; after a plain exit only
    // its group can be left.
    const alive = this.stoppedBy !== null ? treeAlive : groupAlive;
    // An empty group stays empty (nothing can join a group without members): no second look.
    if (!this.leftovers) return this.finish(this.exit, this.stoppedBy);
    const check = () => {
      if (this.done) return;
      if (alive(pid) && Date.now() < until) {
        signalTree(pid, "SIGKILL");
        setTimeout(check, 10);
        return;
      }
      this.finish(this.exit!, this.stoppedBy);
    };
    check();
  }

  private finish(
    exit: { code: number | null; signal: NodeJS.Signals | null },
    stoppedBy: TaskExit["stoppedBy"],
  ): void {
    if (this.done) return;
    this.done = true;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.spec.signal.removeEventListener("abort", this.onAbort);
    const outputFiles = this.spec.outputDir !== undefined ? emptiedDir(this.spec.outputDir) : [];
    this.resolve({
      code: exit.code,
      signal: exit.signal,
      stdout: Buffer.concat(this.stdout),
      stderrTail: this.tail.text(),
      stoppedBy,
      spawnError: this.spawnError,
      outputFiles,
    });
  }
}

/** The entries of `dir`; when there are none, `dir` is removed. Never throws. */
function emptiedDir(dir: string): string[] {
  try {
    const entries = readdirSync(dir);
    if (entries.length === 0) rmdirSync(dir);
    return entries;
  } catch {
    return []; // never made, or gone
  }
}
