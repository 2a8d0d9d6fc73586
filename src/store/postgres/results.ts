/**
 * Results on PostgreSQL: small ones inline in the job's row, large ones (and files) in 1 MiB
 * chunks keyed by the attempt's lease token, read back one chunk per query.
 */
import { Readable } from "node:stream";
import { discardFile, fileChunks } from "../shared/result-file.js";
import { createdBytes, payloadBytes, toStoredResult, type ResultRow } from "../shared/results.js";
import type { Lease, ResultPayload, StoredKind, StoredResult } from "../store.js";
import type { PgDb } from "./db.js";

const CHUNK_BYTES = 1024 * 1024;
/** Chunks of a file result sent per statement (memory while streaming one in). */
const FILE_CHUNKS_PER_INSERT = 4;

export class PgResults {
  constructor(private readonly db: PgDb) {}

  async getResult({ tenantId, id }: { tenantId: string; id: string }): Promise<StoredResult | null> {
    const [row] = await this.db.query<ResultRow>(
      `SELECT status, result_kind, result_type, result_data, result_location, result_size, result_purged
       FROM {{s}}.jobs WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id],
    );
    return toStoredResult(row, (token) => this.chunkSource(id, token));
  }

  /** A large result, read one chunk per query: memory stays at one chunk whatever the size. */
  private chunkSource(jobId: string, token: string): Readable {
    const read = (seq: number) =>
      this.db.query<{ data: Buffer }>(
        `SELECT data FROM {{s}}.result_chunks WHERE job_id = $1 AND lease_token = $2 AND seq = $3`,
        [jobId, token, seq],
      );
    async function* chunks() {
      for (let seq = 0; ; seq++) {
        const rows = await read(seq);
        if (!rows[0]) return;
        yield rows[0].data;
      }
    }
    return Readable.from(chunks());
  }

  /** The columns of a result stored in the job's row, or null for one too large for it. */
  inlineColumns(result: ResultPayload): StoredColumns | null {
    switch (result.kind) {
      case "none":
        return NO_RESULT;
      case "created": {
        const { data, contentType, location } = createdBytes(result);
        return { chunked: false, kind: "created", contentType, data, location, size: data.length };
      }
      case "file":
        return null; // always placed by placeChunks, which reads and removes the file
      case "json":
      case "bytes": {
        const size = result.kind === "json" ? Buffer.byteLength(result.json) : result.data.byteLength;
        if (size > this.db.inlineResultBytes) return null;
        return { chunked: false, kind: result.kind, ...payloadBytes(result), location: null, size };
      }
    }
  }

  /**
   * Store a large result in chunks keyed by the attempt's lease token (a fenced attempt can
   * never overwrite the winner's); the columns point at them.
   */
  async placeChunks(lease: Lease, result: ResultPayload): Promise<StoredColumns> {
    if (result.kind === "file") {
      try {
        return await this.placeFileChunks(lease, result);
      } finally {
        await discardFile(result.path);
      }
    }
    if (result.kind !== "json" && result.kind !== "bytes")
      throw new Error(`${result.kind} results are inline`);
    const { data, contentType } = payloadBytes(result);
    const seqs: number[] = [];
    const chunks: Buffer[] = [];
    for (let offset = 0, seq = 0; offset < data.length; offset += CHUNK_BYTES, seq++) {
      seqs.push(seq);
      chunks.push(data.subarray(offset, offset + CHUNK_BYTES));
    }
    await this.db.query(
      `INSERT INTO {{s}}.result_chunks (job_id, lease_token, seq, data)
       SELECT $1, $2, s, d FROM unnest($3::int[], $4::bytea[]) AS c(s, d)`,
      [lease.id, lease.leaseToken, seqs, chunks],
    );
    return {
      chunked: true,
      kind: result.kind,
      contentType,
      data: null,
      location: lease.leaseToken,
      size: data.length,
    };
  }

  /**
   * A file result streamed in, a few chunks per statement: memory holds one statement's chunks
   * whatever the file's size. Chunks of an attempt that then loses its lease are deleted as a
   * fenced inline-too-large result's are.
   */
  private async placeFileChunks(
    lease: Lease,
    result: Extract<ResultPayload, { kind: "file" }>,
  ): Promise<StoredColumns> {
    let seq = 0;
    let size = 0;
    let batch: Buffer[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const seqs = batch.map((_, i) => seq - batch.length + i);
      await this.db.query(
        `INSERT INTO {{s}}.result_chunks (job_id, lease_token, seq, data)
         SELECT $1, $2, s, d FROM unnest($3::int[], $4::bytea[]) AS c(s, d)`,
        [lease.id, lease.leaseToken, seqs, batch],
      );
      batch = [];
    };
    for await (const chunk of fileChunks(result.path, CHUNK_BYTES)) {
      batch.push(chunk);
      seq++;
      size += chunk.length;
      if (batch.length === FILE_CHUNKS_PER_INSERT) await flush();
    }
    await flush();
    return {
      chunked: true,
      kind: "bytes",
      contentType: result.contentType,
      data: null,
      location: lease.leaseToken,
      size,
    };
  }

  /** The chunks of an attempt that lost its lease (retention removes any this misses, with their job). */
  async discardChunks(lease: Lease): Promise<void> {
    await this.db
      .query(`DELETE FROM {{s}}.result_chunks WHERE job_id = $1 AND lease_token = $2`, [
        lease.id,
        lease.leaseToken,
      ])
      .catch((error: unknown) =>
        this.db.logger?.warn({ err: error, jobId: lease.id }, "could not delete a fenced result's chunks"),
      );
  }
}

export interface StoredColumns {
  kind: StoredKind;
  contentType: string | null;
  data: Buffer | null;
  location: string | null;
  /** Bytes of the result; null when there is none. */
  size: number | null;
  chunked: boolean;
}

/** The columns of a handler that returned nothing (most of them): one shared object. */
const NO_RESULT: Readonly<StoredColumns> = Object.freeze({
  kind: "none",
  contentType: null,
  data: null,
  location: null,
  size: null,
  chunked: false,
});
