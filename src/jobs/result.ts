/**
 * What a handler may return besides plain JSON. Plain values are stored as JSON; `undefined`
 * or `null` yields `204`. These wrappers give bytes with a content type, or `201 Created`.
 */
export class BytesResult {
  readonly kind = "bytes";
  constructor(
    readonly data: Uint8Array,
    readonly contentType: string,
  ) {}
}

export class CreatedResult {
  readonly kind = "created";
  constructor(
    /** Absolute URL of the resource the job created elsewhere. */
    readonly location: string,
    /** Optional JSON body served with the 201. */
    readonly value: unknown = null,
  ) {}
}

/**
 * A file the job wrote, to be stored as its result and streamed from the result URL: the
 * store takes the file over (moves or copies it, then removes it), so its bytes never pass
 * through memory whole. The file must not be touched after the handler returns.
 */
export class FileResult {
  readonly kind = "file";
  constructor(
    readonly path: string,
    readonly contentType: string,
  ) {}
}

/** The job wrote its result to a file (see FileResult): the store takes the file over. */
export function fileResult(path: string, contentType: string): FileResult {
  return new FileResult(path, contentType);
}

/** The job produced bytes of a given media type (served as-is by the result resource). */
export function bytesResult(data: Uint8Array | string, contentType: string): BytesResult {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return new BytesResult(bytes, contentType);
}

/** The job created a resource elsewhere: the result resource answers `201` with `Location`. */
export function createdResult(location: string, value?: unknown): CreatedResult {
  return new CreatedResult(location, value ?? null);
}
