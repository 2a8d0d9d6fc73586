import { lstat, readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { JobError } from "../../jobs/errors.js";
import { bytesResult, fileResult, type FileResult } from "../../jobs/result.js";

/**
 * What a task that exited 0 produced, in this order:
 * 1. one file left in its output dir (`result.json` aside): the result, streamed from disk;
 *    its content type from `result.json` (`{ "file": "speech.wav", "contentType": "audio/wav" }`)
 *    or guessed from its extension;
 * 2. else stdout: nothing is `204`; JSON is the JSON result; anything else is served as text
 *    (`text/plain`), or as bytes (`application/octet-stream`) when it is not UTF-8.
 * A dir with several files and no manifest naming one is an error of the task (not retried:
 * the next run would leave the same files).
 */
export async function taskResult(outputDir: string, stdout: Buffer, entries: string[]): Promise<unknown> {
  const file = entries.length > 0 ? await resultFile(outputDir) : null;
  if (file) return file;
  if (stdout.length === 0 || /^\s*$/.test(stdout.toString("latin1"))) return null;
  const text = decodeUtf8(stdout);
  if (text !== null) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return bytesResult(stdout, "text/plain; charset=utf-8");
    }
  }
  return bytesResult(stdout, "application/octet-stream");
}

const MANIFEST = "result.json";

/** Not retried: the next run would leave the same output. */
const invalid = (detail: string) => new JobError(500, detail, { problem: "command-output-invalid" });

interface Manifest {
  file: string;
  contentType?: string;
}

async function resultFile(dir: string): Promise<FileResult | null> {
  const all = await readdir(dir);
  const names = all.filter((n) => n !== MANIFEST);
  const manifest = all.includes(MANIFEST) ? await readManifest(dir) : null;
  const name = manifest?.file ?? (names.length === 1 ? names[0]! : null);
  if (name === null) {
    if (names.length === 0) return null;
    throw invalid(
      `the task left ${names.length} files in TESSERA_OUTPUT_DIR (${names.slice(0, 5).join(", ")}); leave one, or name it in result.json`,
    );
  }
  if (name.includes("/") || name === "." || name === ".." || !names.includes(name))
    throw invalid(`result.json names ${JSON.stringify(name)}, which is not a file in TESSERA_OUTPUT_DIR`);
  const path = join(dir, name);
  const info = await lstat(path);
  // A link could name any file the server can read: only a regular file the task wrote counts.
  if (!info.isFile()) throw invalid(`the task's result ${JSON.stringify(name)} is not a regular file`);
  return fileResult(path, manifest?.contentType ?? contentTypeOf(name));
}

async function readManifest(dir: string): Promise<Manifest | null> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), "utf8");
  } catch {
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid("the task's result.json is not JSON");
  }
  const m = parsed as Partial<Manifest> | null;
  if (
    !m ||
    typeof m !== "object" ||
    typeof m.file !== "string" ||
    (m.contentType !== undefined && (typeof m.contentType !== "string" || !CONTENT_TYPE.test(m.contentType)))
  ) {
    throw invalid('the task\'s result.json must be { "file": NAME, "contentType"?: MEDIA-TYPE }');
  }
  return { file: m.file, ...(m.contentType !== undefined ? { contentType: m.contentType } : {}) };
}

/** type/subtype with optional parameters; no control characters (it becomes a header). */
const CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=("[^"\r\n]*"|[\w.+-]+))*$/;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(bytes: Buffer): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Media types by extension: the common outputs of tasks; anything else is octet-stream. */
const TYPES: Record<string, string> = {
  ".wav": "audio/wav",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".oga": "audio/ogg",
  ".opus": "audio/opus",
  ".flac": "audio/flac",
  ".m4a": "audio/mp4",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".mov": "video/quicktime",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".svg": "image/svg+xml",
  ".pdf": "application/pdf",
  ".json": "application/json",
  ".ndjson": "application/x-ndjson",
  ".csv": "text/csv; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".xml": "application/xml",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".tar": "application/x-tar",
  ".parquet": "application/vnd.apache.parquet",
};

export function contentTypeOf(name: string): string {
  return TYPES[extname(name).toLowerCase()] ?? "application/octet-stream";
}
