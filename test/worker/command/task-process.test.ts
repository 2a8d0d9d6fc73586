/**
 * runTask with real processes: pipes, progress lines, exits and signals, and the promise that
 * nothing of a task's process tree outlives it (checked in /proc).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { treeOf } from "../../../src/worker/command/process-tree.js";
import { alive, pidsFrom } from "../../helpers/processes.js";
import { runTask, type TaskSpec } from "../../../src/worker/command/task-process.js";
import type { ProgressLine } from "../../../src/worker/command/task-output.js";

const TASK = resolve("test/fixtures/tasks/task.mjs");
const dir = mkdtempSync(join(tmpdir(), "tessera-task-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function spec(args: string[], overrides: Partial<TaskSpec> = {}) {
  const progress: ProgressLine[] = [];
  const lines: string[] = [];
  const full: TaskSpec = {
    argv: [process.execPath, TASK, ...args],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TESSERA_OUTPUT_DIR: dir },
    cwd: dir,
    stdin: "null",
    signal: new AbortController().signal,
    killGraceMs: 500,
    maxOutputBytes: 1 << 20,
    onProgress: (p) => progress.push(p),
    onStderrLine: (l) => lines.push(l),
    ...overrides,
  };
  return { full, progress, lines };
}

describe("runTask", () => {
  it("passes the input on stdin and returns stdout, exit code 0", async () => {
    const { full } = spec(["echo", "a b"], { stdin: JSON.stringify({ n: 1 }) });
    const exit = await runTask(full);
    expect(exit).toMatchObject({ code: 0, signal: null, stoppedBy: null, spawnError: null });
    expect(JSON.parse(exit.stdout.toString())).toMatchObject({ input: { n: 1 }, args: ["a b"], cwd: dir });
  });

  it("reads progress lines from stderr and fd 3; other stderr lines are handed on", async () => {
    const { full, progress, lines } = spec(["progress"]);
    const exit = await runTask(full);
    expect(exit.code).toBe(0);
    expect(progress).toEqual([
      { percent: 10, message: "starting" },
      { percent: 50, message: "halfway" },
      { percent: 90, message: "almost" },
    ]);
    expect(lines).toEqual(["a plain stderr line"]);
    expect(exit.stderrTail).toContain("a plain stderr line");
  });

  it("reports a non-zero exit with the last 4 KiB of stderr", async () => {
    const { full } = spec(["exit", "3", "10000"]);
    const exit = await runTask(full);
    expect(exit.code).toBe(3);
    expect(Buffer.byteLength(exit.stderrTail)).toBeLessThanOrEqual(4096);
    expect(exit.stderrTail).toMatch(/x+failing with 3\n$/);
  });

  it("reports a crash by its signal", async () => {
    const exit = await runTask(spec(["crash"]).full);
    expect(exit).toMatchObject({ code: null, signal: "SIGSEGV", stoppedBy: null });
  });

  it("a missing executable is a spawnError, not a throw", async () => {
    const { full } = spec([], { argv: ["/no/such/tessera-task"] });
    const exit = await runTask(full);
    expect(exit.spawnError?.code).toBe("ENOENT");
    expect(exit.code).toBeNull();
  });

  it("stops a task that floods stdout past maxOutputBytes", async () => {
    const exit = await runTask(spec(["flood"], { maxOutputBytes: 256 * 1024 }).full);
    expect(exit.stoppedBy).toBe("output-limit");
    expect(exit.stdout.length).toBeLessThanOrEqual(256 * 1024);
  });

  it("abort: SIGTERM to the whole tree, children in their own session included; none survives", async () => {
    const pidFile = join(dir, "tree.json");
    const controller = new AbortController();
    const running = runTask(spec(["tree", pidFile], { signal: controller.signal }).full);
    const pids = await pidsFrom(pidFile);
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(alive(pid), `pid ${pid} before`).toBe(true);
    const tree = treeOf(pids[0]!);
    expect(tree.length).toBeGreaterThanOrEqual(5); // the leader, its 3 children, the shell's 2 sleeps
    controller.abort();
    const exit = await running;
    expect(exit.stoppedBy).toBe("abort");
    expect(exit.signal).toBe("SIGTERM");
    for (const pid of tree) expect(alive(pid), `pid ${pid} after`).toBe(false);
  });

  it("abort of a task that ignores SIGTERM: SIGKILL after the grace period; none survives", async () => {
    const pidFile = join(dir, "stubborn.json");
    const controller = new AbortController();
    const running = runTask(
      spec(["tree", pidFile, "ignore"], { signal: controller.signal, killGraceMs: 300 }).full,
    );
    const pids = await pidsFrom(pidFile);
    const tree = treeOf(pids[0]!);
    const started = Date.now();
    controller.abort();
    const exit = await running;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(exit.signal).toBe("SIGKILL");
    for (const pid of tree) expect(alive(pid), `pid ${pid} after`).toBe(false);
  });

  it("a task that exits leaving a child behind: the child is killed (run to completion)", async () => {
    const pidFile = join(dir, "left.json");
    const exit = await runTask(spec(["leave-behind", pidFile]).full);
    expect(exit.code).toBe(0);
    const [child] = await pidsFrom(pidFile);
    expect(alive(child!)).toBe(false);
  });

  it("an abort before the start spawns nothing", async () => {
    const controller = new AbortController();
    controller.abort();
    const exit = await runTask(spec(["sleep", "5000"], { signal: controller.signal }).full);
    expect(exit.stoppedBy).toBe("abort");
  });
});
