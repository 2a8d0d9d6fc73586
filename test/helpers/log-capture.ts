import { Writable } from "node:stream";
import { pino } from "pino";

/** A pino logger writing into an array of parsed JSON lines (and `text`, everything written). */
export function captureLogger(level = "info"): {
  logger: pino.Logger;
  lines: Record<string, unknown>[];
  text: () => string;
} {
  const lines: Record<string, unknown>[] = [];
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString("utf8");
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level }, stream), lines, text: () => text };
}

/** The audit lines among `lines`. */
export function auditLines(lines: Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.filter((line) => line.audit === true);
}
