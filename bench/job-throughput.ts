/** No-op job throughput: Tessera's workers and the raw better-sqlite3 floor, each in a fresh child. */
import { startChild } from "./children.js";
import type { DrainOptions, DrainResult } from "./protocol.js";

export type DrainKind = "tessera" | "raw";

const SCRIPTS: Record<DrainKind, string> = { tessera: "./drain-tessera.ts", raw: "./drain-raw.ts" };

export async function measureDrain(kind: DrainKind, options: DrainOptions): Promise<DrainResult> {
  const child = startChild(SCRIPTS[kind], options);
  try {
    const message = await child.next("drained", undefined, options.timeoutMs * 2 + 30_000);
    return message.result;
  } finally {
    await child.stop();
  }
}

/** Whether every job succeeded on its first attempt, ran once, and nothing else is in the table. */
export function drainProblems(result: DrainResult): string[] {
  const problems: string[] = [];
  if (result.lost > 0) problems.push(`${result.label}: ${result.lost} jobs never ran`);
  if (result.repeated > 0) problems.push(`${result.label}: ${result.repeated} repeated handler runs`);
  const ok = result.finalRows.find((r) => r.status === "succeeded" && r.attempt === 1)?.count ?? 0;
  const other = result.finalRows.filter((r) => !(r.status === "succeeded" && r.attempt === 1));
  if (ok !== result.jobs || other.length > 0) {
    problems.push(
      `${result.label}: table holds ${JSON.stringify(result.finalRows)}, expected ${result.jobs} succeeded on attempt 1`,
    );
  }
  return problems;
}
