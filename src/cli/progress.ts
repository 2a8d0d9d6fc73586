/**
 * Progress while the CLI waits for a job. On a terminal: one line redrawn in place, a bar with
 * the job's percent, its message and the time elapsed. Elsewhere (a pipe, a log file, CI):
 * plain lines, one each time the status, percent or message changes.
 */
import type { JobRepresentation } from "../client/index.js";
import type { Output } from "./client-io.js";

const BAR_WIDTH = 24;
/** Redraws per second on a terminal, so the elapsed time moves between polls. */
const REDRAW_MS = 250;

export interface ProgressDisplay {
  update(job: JobRepresentation): void;
  /** Stop redrawing and clear the bar. */
  stop(): void;
}

export function formatElapsed(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
}

export function bar(percent: number | null, width = BAR_WIDTH): string {
  const filled = percent === null ? 0 : Math.round((Math.min(100, Math.max(0, percent)) / 100) * width);
  return `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
}

function percentText(job: JobRepresentation): string {
  const p = job.progress?.percent;
  return p === null || p === undefined ? " --%" : `${String(Math.floor(p)).padStart(3)}%`;
}

/** A display on `stream`: a bar when it is a terminal, plain lines otherwise, nothing when quiet. */
export function progressDisplay(
  stream: Output,
  options: { label: string; quiet?: boolean; now?: () => number },
): ProgressDisplay {
  const now = options.now ?? Date.now;
  const started = now();
  if (options.quiet) return { update: () => undefined, stop: () => undefined };

  if (!stream.isTTY) {
    let last = "";
    return {
      update(job) {
        const line = `${job.status}${job.progress?.percent != null ? ` ${Math.floor(job.progress.percent)}%` : ""}${job.progress?.message ? ` ${job.progress.message}` : ""}`;
        if (line === last) return;
        last = line;
        stream.write(`${options.label}: ${line} (${formatElapsed(now() - started)})\n`);
      },
      stop: () => undefined,
    };
  }

  let job: JobRepresentation | null = null;
  const draw = () => {
    const columns = stream.columns || 80; // 0 on a pseudo-terminal nobody sized
    const status = job ? (job.status === "running" ? "" : ` ${job.status}`) : " waiting";
    const head = `${options.label} ${bar(job?.progress?.percent ?? null)} ${job ? percentText(job) : " --%"}${status}`;
    const tail = `  ${formatElapsed(now() - started)}`;
    const room = columns - 1 - head.length - tail.length;
    const message = job?.progress?.message && room > 2 ? ` ${job.progress.message}`.slice(0, room) : "";
    stream.write(`\r\x1b[2K${head}${message}${tail}`);
  };
  const timer = setInterval(draw, REDRAW_MS);
  timer.unref?.();
  draw();
  return {
    update(next) {
      job = next;
      draw();
    },
    stop() {
      clearInterval(timer);
      stream.write("\r\x1b[2K");
    },
  };
}
