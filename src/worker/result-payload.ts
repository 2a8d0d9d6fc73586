import { JobError } from "../jobs/errors.js";
import { statSync } from "node:fs";
import { BytesResult, CreatedResult, FileResult } from "../jobs/result.js";
import { discardFile } from "../store/shared/result-file.js";
import type { ResultPayload } from "../store/store.js";

/**
 * Turn what a handler returned into what the store keeps. A value that cannot be JSON
 * (BigInt, a cycle) or is larger than `maxBytes` fails the job at once: retrying would
 * produce the same value again.
 */
export function toResultPayload(value: unknown, maxBytes: number): ResultPayload {
  if (value === undefined || value === null) return { kind: "none" };
  if (value instanceof BytesResult) {
    checkSize(value.data.byteLength, maxBytes);
    return { kind: "bytes", contentType: value.contentType, data: value.data };
  }
  if (value instanceof FileResult) {
    let size: number;
    try {
      const stat = statSync(value.path);
      if (!stat.isFile()) throw new Error("not a regular file");
      size = stat.size;
    } catch (error) {
      throw new JobError(500, `the result file ${value.path} cannot be read: ${(error as Error).message}`);
    }
    checkSize(size, maxBytes);
    return { kind: "file", contentType: value.contentType, path: value.path, size };
  }
  if (value instanceof CreatedResult) {
    return { kind: "created", location: value.location, json: serialize(value.value, maxBytes) };
  }
  return { kind: "json", json: serialize(value, maxBytes) };
}

function serialize(value: unknown, maxBytes: number): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new JobError(500, `the handler's result is not JSON-serialisable: ${(error as Error).message}`);
  }
  if (json === undefined) {
    throw new JobError(500, "the handler's result is not JSON-serialisable (a function or symbol)");
  }
  checkSize(Buffer.byteLength(json), maxBytes);
  return json;
}

function checkSize(bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) {
    throw new JobError(500, `the handler's result is ${bytes} bytes, over the limit of ${maxBytes}`);
  }
}

/** A result that will not be stored (refused, or its attempt was aborted): free what it holds. */
export function discardResult(value: unknown): void {
  if (value instanceof FileResult) void discardFile(value.path);
}
