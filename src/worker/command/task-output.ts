/**
 * What a task writes besides its result: stderr (logged line by line, its last 4 KiB kept for
 * the problem's detail) and progress lines, `::progress <percent> [message]`, on stderr or on
 * file descriptor 3.
 */

/** How much of stderr a failed attempt's problem shows (its end: where the error usually is). */
export const STDERR_TAIL_BYTES = 4096;
/** A line longer than this is handed on in pieces (a task that never writes a newline). */
const MAX_LINE_CHARS = 8192;

const PROGRESS = /^::progress\s+(-?\d+(?:\.\d+)?)%?(?:\s+(.*))?$/;

export interface ProgressLine {
  percent: number;
  message: string | null;
}

/** `::progress 40 rendering page 4/10` → { percent: 40, message: "rendering page 4/10" }. */
export function parseProgress(line: string): ProgressLine | null {
  const match = PROGRESS.exec(line.trim());
  if (!match) return null;
  return { percent: Number(match[1]), message: match[2]?.trim() || null };
}

/** Splits a byte stream into lines (UTF-8, `\n` or `\r\n`), bounding each. */
export class LineSplitter {
  private pending = "";
  private readonly decoder = new TextDecoder("utf-8");

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Uint8Array): void {
    this.pending += this.decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = this.pending.indexOf("\n")) !== -1) {
      this.emit(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
    }
    while (this.pending.length > MAX_LINE_CHARS) {
      this.emit(this.pending.slice(0, MAX_LINE_CHARS));
      this.pending = this.pending.slice(MAX_LINE_CHARS);
    }
  }

  end(): void {
    this.pending += this.decoder.decode();
    if (this.pending) this.emit(this.pending);
    this.pending = "";
  }

  private emit(line: string): void {
    this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}

/** The last `limit` bytes written, as text (a partial first character dropped). */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit = STDERR_TAIL_BYTES) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    const start = Math.max(0, all.length - this.limit);
    // Skip UTF-8 continuation bytes at the cut, so the tail starts on a character.
    let at = start;
    while (at < all.length && at > 0 && (all[at]! & 0xc0) === 0x80) at++;
    return all.subarray(at).toString("utf8");
  }
}
