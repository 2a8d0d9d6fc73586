/**
 * `tessera status|result|wait|cancel ID`: one job, by id. `result` and `wait` follow the job
 * to its end (a progress bar on a terminal, plain lines otherwise) and exit by its outcome.
 */
import { writeFile } from "node:fs/promises";
import {
  decodeResult,
  type JobHandle,
  type JobRepresentation,
  type RawResult,
  type WaitOptions,
} from "../client/index.js";
import {
  clientFrom,
  CONNECTION_USAGE,
  EXIT,
  integer,
  parseCommand,
  positional,
  runCommand,
  writeJson,
  type ClientIo,
} from "./client-io.js";
import { progressDisplay } from "./progress.js";

type Env = Record<string, string | undefined>;

/** Flags of every command that waits for a job. */
export const WAIT_OPTIONS = {
  timeout: { type: "string" },
  "cancel-on-interrupt": { type: "boolean" },
} as const;
export const WAIT_USAGE = "[--timeout SECONDS] [--cancel-on-interrupt]";

const USAGE = {
  status: `tessera status ID ${CONNECTION_USAGE}`,
  result: `tessera result ID [-o FILE] ${WAIT_USAGE} ${CONNECTION_USAGE}`,
  wait: `tessera wait ID ${WAIT_USAGE} ${CONNECTION_USAGE}`,
  cancel: `tessera cancel ID ${CONNECTION_USAGE}`,
};

/** Wait options from the flags, with the display wired to `onProgress`. */
export function waitOptions(
  values: {
    timeout?: string | undefined;
    "cancel-on-interrupt"?: boolean | undefined;
    quiet?: boolean | undefined;
  },
  io: ClientIo,
  handle: JobHandle,
): { options: WaitOptions; stop: () => void } {
  const display = progressDisplay(io.err, {
    // An id's last digits are random (its first ones are the same for jobs made together).
    label: `job …${handle.id.slice(-8)}`,
    quiet: values.quiet ?? false,
  });
  const options: WaitOptions = { onProgress: (job) => display.update(job) };
  if (values.timeout !== undefined)
    options.timeoutMs = integer(values.timeout, "--timeout", 1, 31_536_000) * 1000;
  if (io.signal) options.signal = io.signal;
  if (values["cancel-on-interrupt"]) options.cancelOnAbort = true;
  return { options, stop: () => display.stop() };
}

/** Write a result: to FILE as sent, else to stdout (as `{ id, status, result }` with `--json`). */
export async function writeResult(
  io: ClientIo,
  id: string,
  raw: RawResult,
  flags: { output?: string | undefined; json?: boolean | undefined },
): Promise<void> {
  if (flags.output !== undefined) {
    await writeFile(flags.output, raw.body);
    if (flags.json)
      writeJson(io.out, {
        id,
        status: "succeeded",
        output: flags.output,
        bytes: raw.body.length,
        contentType: raw.contentType,
      });
    return;
  }
  const value = decodeResult(raw);
  if (flags.json) {
    const result =
      value instanceof Uint8Array ? { result: toBase64(value), encoding: "base64" } : { result: value };
    writeJson(io.out, { id, status: "succeeded", contentType: raw.contentType, ...result });
    return;
  }
  if (value instanceof Uint8Array) {
    io.out.write(value);
    return;
  }
  io.out.write(`${JSON.stringify(value, null, 2)}\n`);
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

export function exitFor(job: JobRepresentation): number {
  switch (job.status) {
    case "succeeded":
      return EXIT.ok;
    case "failed":
      return EXIT.failed;
    case "timed_out":
      return EXIT.timedOut;
    case "canceled":
      return EXIT.canceled;
    default:
      return EXIT.ok;
  }
}

/** Human lines for a representation. */
export function describeJob(job: JobRepresentation): string {
  const row = (k: string, v: string | null | undefined) => `${k.padEnd(9)} ${v ?? "-"}\n`;
  const progress = job.progress
    ? `${job.progress.percent ?? "--"}%${job.progress.message ? ` ${job.progress.message}` : ""}`
    : null;
  return (
    row("id", job.id) +
    row("type", job.type) +
    row("status", `${job.status} (attempt ${job.attempt} of ${job.maxAttempts})`) +
    row("progress", progress) +
    row("created", job.createdAt) +
    row("started", job.startedAt) +
    row("finished", job.finishedAt) +
    row("deadline", job.deadlineAt) +
    row("error", job.error ? `${job.error.title}: ${job.error.detail}` : null)
  );
}

export async function statusCommand(args: string[], env: Env, io: ClientIo): Promise<number> {
  return runCommand(io, args.includes("--json"), USAGE.status, async () => {
    const { values, positionals } = parseCommand(args, {});
    const id = positional(positionals, "job id", USAGE.status);
    const job = await clientFrom(values, env, io).get(id, signalOf(io));
    if (values.json) writeJson(io.out, job);
    else io.out.write(describeJob(job));
    return EXIT.ok;
  });
}

export async function resultCommand(args: string[], env: Env, io: ClientIo): Promise<number> {
  return runCommand(io, args.includes("--json"), USAGE.result, async () => {
    const { values, positionals } = parseCommand(args, {
      ...WAIT_OPTIONS,
      output: { type: "string", short: "o" },
    });
    const id = positional(positionals, "job id", USAGE.result);
    const handle = clientFrom(values, env, io).getHandle(id);
    const wait = waitOptions(values, io, handle);
    try {
      const raw = await handle.rawResult(wait.options);
      wait.stop();
      await writeResult(io, id, raw, values);
      return EXIT.ok;
    } finally {
      wait.stop();
    }
  });
}

export async function waitCommand(args: string[], env: Env, io: ClientIo): Promise<number> {
  return runCommand(io, args.includes("--json"), USAGE.wait, async () => {
    const { values, positionals } = parseCommand(args, WAIT_OPTIONS);
    const id = positional(positionals, "job id", USAGE.wait);
    const handle = clientFrom(values, env, io).getHandle(id);
    const wait = waitOptions(values, io, handle);
    let job: JobRepresentation;
    try {
      job = await handle.wait(wait.options);
    } finally {
      wait.stop();
    }
    if (values.json) writeJson(io.out, job);
    else io.out.write(`${job.id} ${job.status}${job.error ? `: ${job.error.detail}` : ""}\n`);
    return exitFor(job);
  });
}

export async function cancelCommand(args: string[], env: Env, io: ClientIo): Promise<number> {
  return runCommand(io, args.includes("--json"), USAGE.cancel, async () => {
    const { values, positionals } = parseCommand(args, {});
    const id = positional(positionals, "job id", USAGE.cancel);
    const job = await clientFrom(values, env, io).cancel(id, signalOf(io));
    if (values.json) writeJson(io.out, job);
    else io.out.write(`${job.id} ${job.status}\n`);
    return EXIT.ok;
  });
}

export function signalOf(io: ClientIo): { signal?: AbortSignal } {
  return io.signal ? { signal: io.signal } : {};
}
