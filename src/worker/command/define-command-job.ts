import { availableParallelism, tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, rmdir } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  defineJob,
  type DefineJobOptions,
  type JobContext,
  type JobDefinition,
  type JsonSchema,
} from "../../jobs/define.js";
import { JobError } from "../../jobs/errors.js";
import { FileResult, fileResult } from "../../jobs/result.js";
import {
  argumentSafety,
  checkAgainstSchema,
  expandArg,
  parseArg,
  type ArgTemplate,
} from "./argv-template.js";
import { checkEnvSpec, taskEnv } from "./task-env.js";
import { TaskLauncher } from "./launcher.js";
import { TaskRegistry, type TaskHost } from "./task-host.js";
import type { TaskExit } from "./task-process.js";
import { taskResult } from "./task-result.js";

export interface DefineCommandJobOptions {
  type: string;
  description?: string;
  /**
   * `[executable, ...args]`, run without a shell. Arguments may hold `{input.field}` (a required
   * scalar of the input schema), `{outputDir}`, `{jobId}` and `{attempt}`; `{{`/`}}` for braces.
   * A lone `{input.field}` argument refuses, at submit, a value starting with "-".
   */
  command: readonly string[];
  /** JSON Schema of the input (sent to the task as JSON on stdin). @default {} (any JSON) */
  input?: JsonSchema;
  /** @default 300 */
  timeoutSeconds?: number;
  /** @default 3 */
  maxAttempts?: number;
  /** @default 1000 */
  retryDelayMs?: number;
  maxInputBytes?: number;
  /** Variables set for the task, besides PATH, HOME, LANG, TZ and the TESSERA_* ones. */
  env?: Readonly<Record<string, string>>;
  /** Names of the server's variables the task may see (nothing else passes). @default [] */
  inheritEnv?: readonly string[];
  /** Working directory. @default the attempt's output dir */
  cwd?: string;
  /** Stdout beyond this stops the task and fails the job (`command-output-too-large`). @default 16 MiB */
  maxOutputBytes?: number;
  /** Tasks of this type alive at once in one process. @default the machine's CPU count */
  concurrency?: number;
  /** From SIGTERM to SIGKILL when a task is stopped. @default 5000 */
  killGraceMs?: number;
  /**
   * Exit codes that fail the job at once, as the HTTP status of its problem (a 4xx: the input
   * was at fault). Others than 0 and these are retried. @default sysexits 64–68 (usage, data,
   * no input, no user, no host) → 422
   */
  exitCodes?: Readonly<Record<number, number>>;
}

/** Stderr lines of one attempt written to the server's log; the tail is kept for the problem regardless. */
const STDERR_LOG_LINES = 200;

export const DEFAULT_EXIT_CODES: Readonly<Record<number, number>> = {
  64: 422,
  65: 422,
  66: 422,
  67: 422,
  68: 422,
};

/** A command job: a JobDefinition whose attempts each run a fresh process. */
export interface CommandJobDefinition extends JobDefinition<unknown, unknown> {
  readonly command: readonly string[];
  /** Variables the definition sets for its tasks (PATH among them, if it sets one). */
  readonly env: Readonly<Record<string, string>>;
  /** The same definition with its attempts run under `host` (createTessera does this). */
  withHost(host: TaskHost): CommandJobDefinition;
}

export function isCommandJob(definition: JobDefinition): definition is CommandJobDefinition {
  return typeof (definition as Partial<CommandJobDefinition>).withHost === "function";
}

interface CommandSpec {
  type: string;
  templates: readonly ArgTemplate[];
  env: Readonly<Record<string, string>>;
  inheritEnv: readonly string[];
  cwd: string | undefined;
  maxOutputBytes: number;
  killGraceMs: number;
  exitCodes: Readonly<Record<number, number>>;
}

/**
 * Define a job type run as a command, a fresh process per attempt ("run task"): the input JSON
 * on stdin, `TESSERA_JOB_ID`, `TESSERA_ATTEMPT`, `TESSERA_DEADLINE` and `TESSERA_OUTPUT_DIR` in a
 * scrubbed environment; the result from one file left in the output dir or from stdout;
 * progress from `::progress 40 message` lines on stderr or fd 3. Cancel, deadline, lease loss
 * and shutdown stop the whole process tree (SIGTERM, then SIGKILL after `killGraceMs`).
 *
 * @example
 * export const speak = defineCommandJob({
 *   type: "tts.speak",
 *   input: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
 *   command: ["espeak-ng", "-w", "{outputDir}/speech.wav", "{input.text}"],
 * });
 */
export function defineCommandJob(options: DefineCommandJobOptions): CommandJobDefinition {
  const type = options.type;
  if (!Array.isArray(options.command) || options.command.length === 0)
    throw new TypeError(`command job "${type}": command must be a non-empty array of strings`);
  for (const arg of options.command) {
    if (typeof arg !== "string" || arg.includes("\0"))
      throw new TypeError(`command job "${type}": every command argument must be a string without NUL`);
  }
  if (options.command[0]!.length === 0 || options.command[0]!.includes("{"))
    throw new TypeError(`command job "${type}": the executable must be a fixed, non-empty name or path`);
  const templates = options.command.map(parseArg);
  const schema = options.input ?? {};
  checkAgainstSchema(templates, schema, type);
  const env = options.env ?? {};
  const inheritEnv = options.inheritEnv ?? [];
  checkEnvSpec({ env, inheritEnv }, type);
  const spec: CommandSpec = {
    type,
    templates,
    env,
    inheritEnv,
    cwd: options.cwd,
    maxOutputBytes: positive(options.maxOutputBytes ?? 16 * 1024 * 1024, "maxOutputBytes", type),
    killGraceMs: positive(options.killGraceMs ?? 5000, "killGraceMs", type),
    exitCodes: { ...DEFAULT_EXIT_CODES, ...checkExitCodes(options.exitCodes ?? {}, type) },
  };
  const safety = argumentSafety(templates);
  const base: Omit<DefineJobOptions<unknown, unknown>, "run"> = {
    type,
    description: options.description ?? `Runs ${options.command[0]}`,
    input: safety ? { allOf: [schema, safety] } : schema,
    concurrency: options.concurrency ?? availableParallelism(),
    ...(options.timeoutSeconds !== undefined ? { timeoutSeconds: options.timeoutSeconds } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.retryDelayMs !== undefined ? { retryDelayMs: options.retryDelayMs } : {}),
    ...(options.maxInputBytes !== undefined ? { maxInputBytes: options.maxInputBytes } : {}),
  };
  const bind = (host: TaskHost): CommandJobDefinition => {
    const definition = defineJob({
      ...base,
      run: (input: unknown, ctx: JobContext) => runCommandAttempt(spec, host, input, ctx),
    });
    return Object.freeze({
      ...definition,
      command: Object.freeze([...options.command]),
      env: Object.freeze({ ...env }),
      withHost: bind,
    });
  };
  return bind(standaloneHost());
}

let standalone: TaskHost | null = null;

/** The host of a definition outside a server (runJobOnce, scripts), made on first use. */
function standaloneHost(): TaskHost {
  return (standalone ??= {
    taskDir: join(tmpdir(), "tessera-tasks"),
    serverEnv: process.env,
    tasks: new TaskRegistry(),
    launcher: new TaskLauncher(),
  });
}

async function runCommandAttempt(spec: CommandSpec, host: TaskHost, input: unknown, ctx: JobContext) {
  await taskDirReady(host.taskDir);
  // Made by the launcher as the task starts, and removed by it if the task leaves it empty.
  const outputDir = join(host.taskDir, `${ctx.jobId}.${ctx.attempt}.${randomBytes(6).toString("hex")}`);
  let left = true; // whether the dir may still be there for us to remove
  try {
    let logged = 0;
    const argv = spec.templates.map((t) =>
      expandArg(t, input, { outputDir, jobId: ctx.jobId, attempt: String(ctx.attempt) }),
    );
    const exit = await host.tasks.track(
      (signal) =>
        host.launcher.run({
          argv,
          env: taskEnv(host.serverEnv, spec, {
            jobId: ctx.jobId,
            attempt: ctx.attempt,
            deadlineAt: ctx.deadlineAt,
            outputDir,
          }),
          cwd: spec.cwd ?? outputDir,
          outputDir,
          stdin: JSON.stringify(input ?? null),
          signal,
          killGraceMs: spec.killGraceMs,
          maxOutputBytes: spec.maxOutputBytes,
          onProgress: (p) => ctx.progress(p.percent, p.message ?? undefined),
          onStderrLine: (line) => {
            // Logged line by line, but a task cannot flood the server's log through stderr.
            if (++logged <= STDERR_LOG_LINES) ctx.log.info("task stderr", { line });
            else if (logged === STDERR_LOG_LINES + 1)
              ctx.log.warn(`task stderr: more than ${STDERR_LOG_LINES} lines, the rest not logged`);
          },
        }),
      ctx.signal,
    );
    left = exit.outputFiles.length > 0;
    // Stopped by the worker (cancel, deadline, lease lost, shutdown): the outcome is the worker's.
    if (exit.stoppedBy === "abort") throw ctx.signal.reason ?? new Error("the task was stopped");
    const result = await outcome(spec, argv, exit, outputDir);
    // A file result moves out of the attempt's dir (which goes) into the store's hands.
    if (result instanceof FileResult) return await stage(result, host.taskDir, outputDir);
    return result;
  } finally {
    // Usually gone already (the launcher removed it empty), or empty (the file staged).
    if (left) await rmdir(outputDir).catch(() => rm(outputDir, { recursive: true, force: true }));
  }
}

const readyDirs = new Map<string, Promise<void>>();

/** Create the task dir once per process (private to this user), not once per attempt. */
function taskDirReady(dir: string): Promise<void> {
  let ready = readyDirs.get(dir);
  if (!ready) {
    ready = mkdir(dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    ready.catch(() => readyDirs.delete(dir)); // try again next time
    readyDirs.set(dir, ready);
  }
  return ready;
}

async function outcome(spec: CommandSpec, argv: readonly string[], exit: TaskExit, outputDir: string) {
  const what = `${basename(argv[0]!)}`;
  const stderr = exit.stderrTail.trim();
  const withStderr = (text: string) => (stderr ? `${text}; stderr: ${stderr}` : text);
  if (exit.spawnError) {
    const code = exit.spawnError.code;
    if (code === "EOUTPUTDIR") throw new Error(exit.spawnError.message); // the host's trouble: retried
    const why =
      code === "ENOENT" ? "no such executable on the task's PATH" : (code ?? exit.spawnError.message);
    // Not retried: the next attempt would not find it either.
    throw new JobError(500, `the command ${JSON.stringify(argv[0])} could not be started: ${why}`, {
      problem: "command-not-found",
    });
  }
  if (exit.stoppedBy === "output-limit")
    throw new JobError(
      500,
      `${what} wrote more than ${spec.maxOutputBytes} bytes to stdout and was stopped`,
      {
        problem: "command-output-too-large",
      },
    );
  if (exit.code === 0) return taskResult(outputDir, exit.stdout, exit.outputFiles);
  if (exit.code !== null) {
    const status = spec.exitCodes[exit.code];
    if (status !== undefined) throw new JobError(status, withStderr(`${what} exited with code ${exit.code}`));
    throw new Error(withStderr(`${what} exited with code ${exit.code}`));
  }
  throw new Error(withStderr(`${what} was killed by ${exit.signal ?? "a signal"}`));
}

/** Move the result file next to the attempts' dirs, under a name the store then takes over. */
async function stage(result: FileResult, taskDir: string, outputDir: string): Promise<FileResult> {
  const staged = join(taskDir, `${basename(outputDir)}.result`);
  await rename(result.path, staged);
  return fileResult(staged, result.contentType);
}

function positive(value: number, name: string, type: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`command job "${type}": ${name} must be an integer >= 1`);
  return value;
}

function checkExitCodes(codes: Readonly<Record<number, number>>, type: string): Record<number, number> {
  const out: Record<number, number> = {};
  for (const [key, status] of Object.entries(codes)) {
    const code = Number(key);
    if (!Number.isInteger(code) || code < 1 || code > 255)
      throw new TypeError(`command job "${type}": exitCodes key ${key} must be an exit code 1-255`);
    if (!Number.isInteger(status) || status < 400 || status > 599)
      throw new TypeError(`command job "${type}": exitCodes[${key}] must be an HTTP error status (400-599)`);
    out[code] = status;
  }
  return out;
}
