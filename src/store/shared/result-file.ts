import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { pipeline } from "node:stream/promises";

/**
 * File results (a command task's output file) are taken over by the store: moved where blobs
 * live, or streamed in chunks into the database, and never read into memory whole.
 */

/** Move `source` to `target` durably (rename, or copy when they are on different filesystems). */
export async function moveFileDurably(source: string, target: string): Promise<void> {
  try {
    await rename(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    const tmp = `${target}.tmp`;
    await pipeline(createReadStream(source), createWriteStream(tmp));
    await rename(tmp, target);
    await unlink(source).catch(() => undefined);
  }
  // A rename is durable only once the data it names is: sync the file before the row points at it.
  const handle = await open(target, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The file's bytes in chunks of exactly `size` (the last one shorter), read as they go. */
export async function* fileChunks(path: string, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of createReadStream(path, { highWaterMark: size }) as AsyncIterable<Buffer>) {
    pending.push(piece);
    pendingBytes += piece.length;
    while (pendingBytes >= size) {
      const joined = Buffer.concat(pending);
      yield joined.subarray(0, size);
      pending = [joined.subarray(size)];
      pendingBytes -= size;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/** Remove a file result's source whatever became of it (stored, fenced, or refused). */
export function discardFile(path: string): Promise<void> {
  return unlink(path).catch(() => undefined);
}
