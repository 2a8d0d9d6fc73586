/**
 * Results as both drivers keep them: the bytes of a JSON or bytes result, and the stored
 * result a job's row describes (inline bytes, or a stream from where the driver put them).
 */
import type { Readable } from "node:stream";
import type { ResultPayload, StoredKind, StoredResult } from "../store.js";

/** The result columns of a job's row. */
export interface ResultRow {
  status: string;
  result_kind: StoredKind | null;
  result_type: string | null;
  result_data: Buffer | null;
  result_location: string | null;
  result_size: number | null;
  result_purged: number | boolean;
}

/** A JSON or bytes result's bytes and content type. */
export function payloadBytes(result: Extract<ResultPayload, { kind: "json" | "bytes" }>): {
  data: Buffer;
  contentType: string;
} {
  return result.kind === "json"
    ? { data: Buffer.from(result.json), contentType: "application/json" }
    : { data: Buffer.from(result.data), contentType: result.contentType };
}

/** A `created` result: its JSON body, and the Location it names. */
export function createdBytes(result: Extract<ResultPayload, { kind: "created" }>): {
  data: Buffer;
  contentType: "application/json";
  location: string;
} {
  return { data: Buffer.from(result.json), contentType: "application/json", location: result.location };
}

/**
 * The stored result a row describes; null when the job has not succeeded, its result was
 * purged, or none was recorded. Bytes kept outside the row (no `result_data`) are read by
 * `open(result_location)`: a blob file's path, or the token naming a result's chunks.
 */
export function toStoredResult(
  row: ResultRow | undefined,
  open: (location: string) => Readable,
): StoredResult | null {
  if (!row || row.status !== "succeeded" || row.result_purged === 1 || row.result_purged === true)
    return null;
  const kind = row.result_kind;
  if (kind === null) return null;
  const size = row.result_size ?? 0;
  if (row.result_data === null && kind !== "none") {
    const location = row.result_location!;
    return {
      kind,
      contentType: row.result_type,
      location: null,
      size,
      data: null,
      open: () => open(location),
    };
  }
  return {
    kind,
    contentType: row.result_type,
    location: kind === "created" ? row.result_location : null,
    size,
    data: row.result_data,
    open: null,
  };
}
