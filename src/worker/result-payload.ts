import { JobError } from "../jobs/errors.js";
import { BytesResult, CreatedResult } from "../jobs/result.js";
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
