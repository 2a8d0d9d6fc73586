/** /proc checks for tests of command tasks: that no process of a task's tree survives. */
import { existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Whether a process is alive (a zombie counts as gone: it runs nothing). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** The pids a fixture task wrote to `file` (waits up to 5 s for it). */
export async function pidsFrom(file: string): Promise<number[]> {
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(25);
  return JSON.parse(readFileSync(file, "utf8")) as number[];
}

/** Wait until none of `pids` is alive; returns those still alive after `timeoutMs`. */
export async function gone(pids: readonly number[], timeoutMs = 5000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > until) return left;
    await sleep(25);
  }
}
