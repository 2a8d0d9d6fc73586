#!/usr/bin/env node
/** The `tessera` command. */
import type { ClientIo } from "./cli/client-io.js";
import { cancelCommand, resultCommand, statusCommand, waitCommand } from "./cli/job.js";
import { jobsCommand } from "./cli/jobs.js";
import { keys } from "./cli/keys.js";
import { migrate } from "./cli/migrate.js";
import { submitCommand } from "./cli/submit.js";
import { webhooks } from "./cli/webhooks.js";
import { serve } from "./cli/serve.js";
import { tenants } from "./cli/tenants.js";

const USAGE = `usage: tessera <command>

  serve [--port N] [--host H] [--db FILE] [--demo] [--dev] [--jobs PATH] …   run the API and workers
  keys create --tenant NAME [--expires-in 90d] | keys list                   manage API keys
  keys rotate ID|PREFIX [--overlap 24h] [--expires-in D] | keys revoke ID|PREFIX
  webhooks secret --tenant NAME [--rotate]                                   show or rotate a tenant's webhook secret
  tenants list | tenants limits --tenant NAME [--submit-rate N]               tenants and their own rate limits and quota
          [--poll-rate N] [--max-queued N]
  migrate [--db FILE]                                                        apply database migrations

Client commands (server from --url or TESSERA_URL, key from --api-key or TESSERA_API_KEY):
  submit TYPE [--input JSON|@FILE|@-] [--wait [-o FILE]] [--callback URL]     submit a job; prints its id, or with --wait its result
         [--timeout-seconds N] [--max-attempts N] [--priority N] [--idempotency-key KEY] [--metadata K=V] [--run-at DATE]
  status ID                                                                  show a job
  result ID [-o FILE]                                                        wait for a job and print (or save) its result
  wait ID                                                                    wait for a job, showing its progress
  cancel ID                                                                  cancel a job
  jobs [--status S] [--type T] [--limit N]                                   list jobs, newest first
  Waits take [--timeout SECONDS] [--cancel-on-interrupt]; all take [--json] [--quiet] [--retries N].
  Exit codes: 0 succeeded, 1 failed, 2 usage, 3 timed out, 4 canceled, 5 connection, 6 refused, 7 wait timeout.

Every serve flag is also a TESSERA_* environment variable; see the README.
`;

const CLIENT_COMMANDS: Record<
  string,
  (args: string[], env: Record<string, string | undefined>, io: ClientIo) => Promise<number>
> = {
  submit: submitCommand,
  status: statusCommand,
  result: resultCommand,
  wait: waitCommand,
  cancel: cancelCommand,
  jobs: jobsCommand,
};

/** The process's streams; the first Ctrl-C stops a wait (exit 130), a second one exits at once. */
function processIo(): ClientIo {
  const interrupt = new AbortController();
  process.on("SIGINT", () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort(new DOMException("interrupted", "AbortError"));
  });
  return {
    out: process.stdout,
    err: process.stderr,
    signal: interrupt.signal,
    readStdin: async () => {
      let text = "";
      for await (const chunk of process.stdin) text += String(chunk);
      return text;
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const env = process.env;
  const clientCommand = command === undefined ? undefined : CLIENT_COMMANDS[command];
  if (clientCommand) return clientCommand(args, env, processIo());
  switch (command) {
    case "serve":
      await serve(args, env, process.stdout);
      return -1; // keeps running
    case "keys":
      return keys(args, env, process.stdout);
    case "migrate":
      return migrate(args, env, process.stdout);
    case "webhooks":
      return webhooks(args, env, process.stdout);
    case "tenants":
      return tenants(args, env, process.stdout);
    case "help":
    case "--help":
    case "-h":
    case undefined:
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tessera: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
