/**
 * `tessera submit TYPE --input JSON|@FILE|@- [--wait]`: submit a job. Prints its id (or its
 * representation with `--json`); with `--wait`, follows it and prints the result instead.
 */
import { readFile } from "node:fs/promises";
import type { SubmitOptions } from "../client/index.js";
import {
  clientFrom,
  CONNECTION_USAGE,
  EXIT,
  integer,
  parseCommand,
  positional,
  runCommand,
  UsageError,
  writeJson,
  type ClientIo,
} from "./client-io.js";
import { WAIT_OPTIONS, WAIT_USAGE, waitOptions, writeResult } from "./job.js";

const USAGE =
  "tessera submit TYPE [--input JSON|@FILE|@-] [--wait [-o FILE] " +
  `${WAIT_USAGE}] [--callback URL] [--timeout-seconds N] [--max-attempts N] [--priority N] ` +
  `[--run-at ISO-DATE] [--metadata KEY=VALUE]… [--idempotency-key KEY] ${CONNECTION_USAGE}`;

const OPTIONS = {
  input: { type: "string" },
  wait: { type: "boolean" },
  output: { type: "string", short: "o" },
  callback: { type: "string" },
  "timeout-seconds": { type: "string" },
  "max-attempts": { type: "string" },
  priority: { type: "string" },
  "run-at": { type: "string" },
  metadata: { type: "string", multiple: true },
  "idempotency-key": { type: "string" },
  ...WAIT_OPTIONS,
} as const;

/** The input: inline JSON, `@FILE` or `@-` (standard input); none means `null`. */
async function readInput(spec: string | undefined, io: ClientIo): Promise<unknown> {
  if (spec === undefined) return null;
  let text = spec;
  if (spec.startsWith("@")) {
    const path = spec.slice(1);
    try {
      text =
        path === "-"
          ? await (io.readStdin ?? (() => Promise.reject(new Error("no standard input"))))()
          : await readFile(path, "utf8");
    } catch (error) {
      throw new UsageError(`--input ${spec}: ${(error as Error).message}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(
      `--input is not valid JSON (${(error as Error).message}); for a file write --input @FILE`,
    );
  }
}

function envelopeOptions(values: {
  callback?: string | undefined;
  "timeout-seconds"?: string | undefined;
  "max-attempts"?: string | undefined;
  priority?: string | undefined;
  "run-at"?: string | undefined;
  metadata?: string[] | undefined;
  "idempotency-key"?: string | undefined;
}): SubmitOptions {
  const options: SubmitOptions = {};
  if (values.callback !== undefined) options.callback = values.callback;
  if (values["timeout-seconds"] !== undefined)
    options.timeoutSeconds = integer(values["timeout-seconds"], "--timeout-seconds", 1, 2 ** 31);
  if (values["max-attempts"] !== undefined)
    options.maxAttempts = integer(values["max-attempts"], "--max-attempts", 1, 100);
  if (values.priority !== undefined) options.priority = integer(values.priority, "--priority", -100, 100);
  if (values["idempotency-key"] !== undefined) options.idempotencyKey = values["idempotency-key"];
  if (values["run-at"] !== undefined) {
    if (Number.isNaN(Date.parse(values["run-at"])))
      throw new UsageError(`--run-at must be a date-time, got "${values["run-at"]}"`);
    options.runAt = values["run-at"];
  }
  if (values.metadata !== undefined) {
    const metadata: Record<string, string> = {};
    for (const pair of values.metadata) {
      const eq = pair.indexOf("=");
      if (eq < 1) throw new UsageError(`--metadata takes KEY=VALUE, got "${pair}"`);
      metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    options.metadata = metadata;
  }
  return options;
}

export async function submitCommand(
  args: string[],
  env: Record<string, string | undefined>,
  io: ClientIo,
): Promise<number> {
  return runCommand(io, args.includes("--json"), USAGE, async () => {
    const { values, positionals } = parseCommand(args, OPTIONS);
    const type = positional(positionals, "job type", USAGE);
    if (
      !values.wait &&
      (values.output !== undefined || values.timeout !== undefined || values["cancel-on-interrupt"])
    ) {
      throw new UsageError("-o, --timeout and --cancel-on-interrupt need --wait");
    }
    const client = clientFrom(values, env, io);
    const input = await readInput(values.input, io);
    const handle = await client.submit(type, input, {
      ...envelopeOptions(values),
      ...(io.signal ? { signal: io.signal } : {}),
    });
    if (!values.wait) {
      if (values.json) writeJson(io.out, handle.job);
      else io.out.write(`${handle.id}\n`);
      return EXIT.ok;
    }
    const wait = waitOptions(values, io, handle);
    try {
      const raw = await handle.rawResult(wait.options);
      wait.stop();
      await writeResult(io, handle.id, raw, values);
      return EXIT.ok;
    } finally {
      wait.stop();
    }
  });
}
