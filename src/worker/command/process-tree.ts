import { readdirSync, readFileSync } from "node:fs";

/**
 * A task's processes: its process group (the task is spawned as a group leader, so everything
 * it forks stays in the group unless it calls setsid), plus, on Linux, descendants that left the
 * group while their ancestry still leads to the task (read from /proc). Signals go to both.
 *
 * What no user-space supervisor can see: a descendant that left the group and whose parent
 * already exited (re-parented to init, a double-forked daemon). Run untrusted commands in a
 * container or cgroup for that (docs/ARCHITECTURE.md, "Command tasks").
 */

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
}

function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name is in parentheses and may hold spaces or ")": fields follow the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { pid, state: fields[0]!, ppid: Number(fields[1]), pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

function allStats(): ProcStat[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return []; // not Linux: the process group is all we can signal
  }
  const stats: ProcStat[] = [];
  for (const name of names) {
    const first = name.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    const stat = readStat(Number(name));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** Live processes (zombies excluded) of `leader`'s group or descended from it. */
export function treeOf(leader: number): number[] {
  const stats = allStats().filter((s) => s.state !== "Z" && s.state !== "X");
  const children = new Map<number, number[]>();
  for (const s of stats) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const found = new Set<number>(stats.filter((s) => s.pgrp === leader).map((s) => s.pid));
  if (stats.some((s) => s.pid === leader)) found.add(leader);
  // Descendants of the leader and of the group's members, wherever their group is.
  const stack = [leader, ...found];
  const seen = new Set(stack);
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      found.add(child);
      stack.push(child);
    }
  }
  return [...found];
}

/** Send `signal` to the group and every process of the tree; missing ones are skipped. */
export function signalTree(leader: number, signal: NodeJS.Signals): void {
  const pids = treeOf(leader);
  quietKill(-leader, signal); // ESRCH: the group is empty
  for (const pid of pids) quietKill(pid, signal); // ESRCH: exited meanwhile
}

/** Whether anything of the tree is still alive (a /proc walk; for /proc-less systems: the group). */
export function treeAlive(leader: number): boolean {
  if (allStats().length > 0) return treeOf(leader).length > 0;
  return groupAlive(leader);
}

/**
 * Whether any process of the group is left: one syscall, no /proc walk (the check after every
 * task's exit). A zombie counts until its parent or init reaps it.
 */
export function groupAlive(leader: number): boolean {
  return quietKill(-leader, 0) !== "ESRCH";
}

/**
 * `process.kill`, answering its error code instead of throwing: after every task's exit its
 * (empty) group is probed, and an error's stack trace costs more than the syscall.
 */
export function quietKill(pid: number, signal: NodeJS.Signals | 0): string | null {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    process.kill(pid, signal);
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? "EINVAL";
  } finally {
    Error.stackTraceLimit = limit;
  }
}
