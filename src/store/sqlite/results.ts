/**
 * Results on SQLite: small ones inline in the job's row, larger ones in a blob file per
 * attempt (written and fsync'd before the completion commits), streamed from the file.
 */
import { createReadStream } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { moveFileDurably } from "../shared/result-file.js";
import { createdBytes, payloadBytes, toStoredResult, type ResultRow } from "../shared/results.js";
import type { Lease, ResultPayload, StoredKind, StoredResult } from "../store.js";
import type { SqliteDb } from "./db.js";

export class SqliteResults {
  constructor(private readonly db: SqliteDb) {}

  async getResult({ tenantId, id }: { tenantId: string; id: string }): Promise<StoredResult | null> {
    const row = this.db.sql.getResult.get(tenantId, id) as ResultRow | undefined;
    return toStoredResult(row, (path) => createReadStream(path));
  }

  /** Decide where a result's bytes live: inline, or a blob file written and fsync'd first. */
  async place(lease: Lease, result: ResultPayload) {
    const none = {
      kind: result.kind as StoredKind,
      contentType: null as string | null,
      blobPath: null as string | null,
    };
    switch (result.kind) {
      case "none":
        return { ...none, data: null, location: null, size: 0 };
      case "created": {
        const { data, contentType, location } = createdBytes(result);
        return { ...none, contentType, data, location, size: data.length };
      }
      case "file": {
        const { contentType, size } = result;
        if (size <= this.db.inlineResultBytes) {
          const data = await readFile(result.path);
          return { ...none, kind: "bytes" as const, contentType, data, location: null, size: data.length };
        }
        const path = join(this.db.blobDir, `${lease.id}.${lease.leaseToken}`);
        await moveFileDurably(result.path, path);
        return { kind: "bytes" as const, contentType, blobPath: path, data: null, location: path, size };
      }
      case "json":
      case "bytes": {
        const { data, contentType } = payloadBytes(result);
        if (data.length <= this.db.inlineResultBytes) {
          return { ...none, contentType, data, location: null, size: data.length };
        }
        // One file per attempt, so a fenced stale attempt can never overwrite the winner's.
        const path = join(this.db.blobDir, `${lease.id}.${lease.leaseToken}`);
        await writeDurably(path, data);
        return {
          kind: result.kind,
          contentType,
          blobPath: path,
          data: null,
          location: path,
          size: data.length,
        };
      }
    }
  }
}

/** Where a result's bytes went: the columns of the job's row, and the blob file if any. */
export type PlacedResult = Awaited<ReturnType<SqliteResults["place"]>>;

/** Remove a blob that no row points at any more (fenced, deleted or purged). */
export async function discardBlob(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

/** Write to a temporary name, fsync, then rename: a reader never sees a partial blob. */
async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
