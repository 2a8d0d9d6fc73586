#!/usr/bin/env node
/** The `tessera` command. */
import { keys } from "./cli/keys.js";
import { migrate } from "./cli/migrate.js";
import { webhooks } from "./cli/webhooks.js";
import { serve } from "./cli/serve.js";

const USAGE = `usage: tessera <command>

  serve [--port N] [--host H] [--db FILE] [--demo] [--dev] [--jobs PATH] …   run the API and workers
  keys create --tenant NAME | keys list | keys revoke ID|PREFIX              manage API keys
  webhooks secret --tenant NAME [--rotate]                                   show or rotate a tenant's webhook secret
  migrate [--db FILE]                                                        apply database migrations

Every serve flag is also a TESSERA_* environment variable; see the README.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const env = process.env;
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
