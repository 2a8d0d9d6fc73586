/**
 * The environment a command task sees: an allowlist, never the server's own. Database URLs,
 * `TESSERA_SECRET`, API keys, cloud credentials and anything else in the server's environment
 * stay out unless the job definition names them.
 */

/** Passed through from the server's environment when set: what most programs need to run. */
export const BASE_ENV = ["PATH", "HOME", "LANG", "TZ"] as const;

export interface TaskEnvSpec {
  /** Variables set for the task (a value here wins over an inherited one). */
  env: Readonly<Record<string, string>>;
  /** Names passed through from the server's environment, besides BASE_ENV. */
  inheritEnv: readonly string[];
}

/** Per-attempt variables: `TESSERA_JOB_ID`, `TESSERA_ATTEMPT`, `TESSERA_DEADLINE`, `TESSERA_OUTPUT_DIR`. */
export interface AttemptEnv {
  jobId: string;
  attempt: number;
  deadlineAt: Date;
  outputDir: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws a TypeError for a name a process environment cannot hold or that Tessera sets itself. */
export function checkEnvSpec(spec: TaskEnvSpec, type: string): void {
  for (const name of [...Object.keys(spec.env), ...spec.inheritEnv]) {
    if (!NAME.test(name))
      throw new TypeError(`command job "${type}": ${JSON.stringify(name)} is not a variable name`);
    if (name.startsWith("TESSERA_"))
      throw new TypeError(`command job "${type}": ${name}: TESSERA_* variables are set by Tessera`);
  }
  for (const [name, value] of Object.entries(spec.env)) {
    if (typeof value !== "string" || value.includes("\0"))
      throw new TypeError(`command job "${type}": env.${name} must be a string without NUL`);
  }
}

export function taskEnv(
  server: Readonly<Record<string, string | undefined>>,
  spec: TaskEnvSpec,
  attempt: AttemptEnv,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...BASE_ENV, ...spec.inheritEnv]) {
    const value = server[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, spec.env);
  env.TESSERA_JOB_ID = attempt.jobId;
  env.TESSERA_ATTEMPT = String(attempt.attempt);
  env.TESSERA_DEADLINE = attempt.deadlineAt.toISOString();
  env.TESSERA_OUTPUT_DIR = attempt.outputDir;
  return env;
}
