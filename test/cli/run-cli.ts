/** Run `tessera` as a process (`node --import tsx src/main.ts …`), optionally under a pseudo-terminal. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment without the caller's Tessera settings, plus `env`. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TESSERA_")));
  return { ...base, NO_COLOR: "1", ...env };
}

export function startCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): { child: ChildProcess; done: Promise<CliRun> } {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: ROOT,
    env: cleanEnv(options.env ?? {}),
    stdio: ["pipe", "pipe", "pipe"],
  });
  return { child, done: collect(child, options.input) };
}

export function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<CliRun> {
  return startCli(args, options).done;
}

/**
 * Run under a pseudo-terminal with util-linux `script` (stdin, stdout and stderr are all the
 * terminal; `-e` returns the command's exit code). Output is what the terminal received.
 */
export function runCliInPty(args: string[], options: { env?: Record<string, string> } = {}): Promise<CliRun> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, "--import", "tsx", "src/main.ts", ...args].map(quote).join(" ");
  const child = spawn("script", ["-qefc", command, "/dev/null"], {
    cwd: ROOT,
    env: cleanEnv(options.env ?? {}),
    stdio: ["pipe", "pipe", "pipe"],
  });
  return collect(child, undefined, false);
}

function collect(child: ChildProcess, input: string | undefined, endInput = true): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  if (input !== undefined) child.stdin?.write(input);
  if (endInput) child.stdin?.end();
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      child.stdin?.destroy();
      resolve({ code, signal, stdout, stderr });
    });
  });
}
