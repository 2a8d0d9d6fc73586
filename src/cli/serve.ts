import { loadConfig } from "../config.js";
import { demoJobs } from "../demo/jobs.js";
import { loadTlsFiles } from "../http/tls.js";
import { createTessera } from "../tessera.js";
import { parseServeFlags } from "./args.js";
import { loadJobModules } from "./load-jobs.js";

/** `tessera serve`: the API, the workers and the background services in one process. */
export async function serve(
  args: string[],
  env: Record<string, string | undefined>,
  out: NodeJS.WritableStream,
): Promise<void> {
  const config = loadConfig(parseServeFlags(args), env);
  loadTlsFiles(config); // unreadable or mismatched files: refuse before anything is opened
  const jobs = [...(config.demo ? demoJobs : []), ...(await loadJobModules(config.jobs))];
  if (jobs.length === 0) throw new Error("no job types to serve: pass --demo and/or --jobs PATH");
  const tessera = await createTessera({ jobs, config });
  const address = await tessera.listen();
  if (config.dev) {
    out.write("\n  !!! DEVELOPMENT MODE: authentication is OFF. Do not expose this server. !!!\n\n");
  }
  out.write(
    `tessera listening on ${address} (db ${config.db}; types: ${jobs.map((j) => j.type).join(", ")})\n`,
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      out.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    out.write(`${signal}: stopping (grace ${config.shutdownGraceMs} ms)\n`);
    tessera.close().then(
      () => process.exit(0),
      (error: unknown) => {
        out.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  // A renewed certificate is picked up without a restart; without TLS, SIGHUP keeps its default.
  if (config.tlsCert !== null) process.on("SIGHUP", () => tessera.reloadTls());
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
