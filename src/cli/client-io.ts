/**
 * What the client commands (`submit`, `status`, `result`, `wait`, `cancel`, `jobs`) share:
 * their streams, the connection flags, exit codes, and turning errors into messages.
 */
import { parseArgs } from "node:util";
import {
  createClient,
  HttpError,
  JobAlreadyFinishedError,
  JobFailureError,
  RetryExhaustedError,
  WaitTimeoutError,
  type FetchLike,
  type TesseraClient,
} from "../client/index.js";

/** Exit codes of the client commands (documented in the README). */
export const EXIT = {
  /** The command did what was asked; for a wait, the job succeeded. */
  ok: 0,
  /** The job failed. */
  failed: 1,
  /** Bad flags or arguments, or unreadable input. */
  usage: 2,
  /** The job timed out (passed its deadline). */
  timedOut: 3,
  /** The job was canceled. */
  canceled: 4,
  /** The server could not be reached, or kept failing (network errors, 5xx) until retries ran out. */
  connection: 5,
  /** The server refused the request (a 4xx: invalid input, unknown job, bad key, already finished). */
  refused: 6,
  /** `--timeout` passed before the job ended; the job goes on. */
  waitTimeout: 7,
  /** Interrupted (Ctrl-C) while waiting. */
  interrupted: 130,
} as const;

export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** A command's world: tests pass their own. */
export interface ClientIo {
  out: Output;
  /** Progress and messages; the progress bar is drawn when this is a terminal. */
  err: Output;
  /** Aborts a wait (main wires it to SIGINT). */
  signal?: AbortSignal;
  /** Reads standard input whole (for `--input @-`). */
  readStdin?: () => Promise<string>;
  fetch?: FetchLike;
}

export class UsageError extends Error {
  override name = "UsageError";
}

/** Flags every client command takes. */
export const CONNECTION_OPTIONS = {
  url: { type: "string" },
  "api-key": { type: "string" },
  retries: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

export const CONNECTION_USAGE = "[--url URL] [--api-key KEY] [--retries N] [--json] [--quiet]";

type ParseConfig = NonNullable<Parameters<typeof parseArgs>[0]>;
type Parsed<O extends ParseConfig["options"]> = ReturnType<
  typeof parseArgs<{
    args: string[];
    options: typeof CONNECTION_OPTIONS & O;
    allowPositionals: true;
    strict: true;
  }>
>;

/** `parseArgs`, strict, with the connection flags added; a mistake is a `UsageError`. */
export function parseCommand<O extends ParseConfig["options"]>(args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({
      args,
      options: { ...CONNECTION_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export interface ConnectionFlags {
  url?: string | undefined;
  "api-key"?: string | undefined;
  retries?: string | undefined;
}

/** The client for the flags, then `TESSERA_URL` / `TESSERA_API_KEY`, then the local default. */
export function clientFrom(
  flags: ConnectionFlags,
  env: Record<string, string | undefined>,
  io: ClientIo,
): TesseraClient {
  const baseUrl = flags.url ?? env.TESSERA_URL ?? "http://127.0.0.1:3000";
  if (!/^https?:\/\/[^\s/]+/.test(baseUrl))
    throw new UsageError(`--url must be an http(s) URL, got "${baseUrl}"`);
  const apiKey = flags["api-key"] ?? (env.TESSERA_API_KEY || undefined);
  const retries = flags.retries === undefined ? undefined : integer(flags.retries, "--retries", 0, 100);
  return createClient({
    baseUrl,
    apiKey,
    fetch: io.fetch,
    retry: retries === undefined ? undefined : { attempts: retries + 1 },
  });
}

export function integer(text: string, flag: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return Number(text);
}

export function positional(positionals: string[], name: string, usage: string): string {
  if (positionals.length !== 1 || !positionals[0])
    throw new UsageError(`expected one ${name}\nusage: ${usage}`);
  return positionals[0];
}

export function writeJson(out: Output, value: unknown): void {
  out.write(`${JSON.stringify(value)}\n`);
}

/**
 * Run a command body, turning what it throws into a message and an exit code. With `--json`,
 * a job's failure is also written to stdout as `{ id, status, problem }`.
 */
export async function runCommand(
  io: ClientIo,
  json: boolean,
  usage: string,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    return report(error, io, json, usage);
  }
}

function report(error: unknown, io: ClientIo, json: boolean, usage: string): number {
  const say = (text: string) => io.err.write(`tessera: ${text}\n`);
  if (error instanceof UsageError) {
    say(error.message.includes("usage:") ? error.message : `${error.message}\nusage: ${usage}`);
    return EXIT.usage;
  }
  if (error instanceof JobFailureError) {
    if (json) writeJson(io.out, { id: error.jobId, status: error.jobStatus, problem: error.problem });
    say(error.message);
    return error.jobStatus === "failed"
      ? EXIT.failed
      : error.jobStatus === "timed_out"
        ? EXIT.timedOut
        : EXIT.canceled;
  }
  if (error instanceof JobAlreadyFinishedError) {
    if (json) writeJson(io.out, error.job);
    say(error.message);
    return EXIT.refused;
  }
  if (error instanceof WaitTimeoutError) {
    say(error.message);
    return EXIT.waitTimeout;
  }
  if (error instanceof RetryExhaustedError) {
    say(`cannot reach the server: ${error.message}`);
    return EXIT.connection;
  }
  if (error instanceof HttpError) {
    const issues = error.problem?.errors?.map((e) => `\n  ${e.path || "/"}: ${e.message}`).join("") ?? "";
    say(`${error.message}${issues}`);
    return error.status >= 500 ? EXIT.connection : EXIT.refused;
  }
  if (io.signal?.aborted && error === io.signal.reason) {
    say("interrupted");
    return EXIT.interrupted;
  }
  throw error;
}
