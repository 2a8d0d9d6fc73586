/** `tessera jobs [--status S] [--type T] [--limit N]`: the caller's jobs, newest first. */
import { isJobStatus } from "../jobs/states.js";
import type { JobRepresentation } from "../client/index.js";
import {
  clientFrom,
  CONNECTION_USAGE,
  EXIT,
  integer,
  parseCommand,
  runCommand,
  UsageError,
  writeJson,
  type ClientIo,
} from "./client-io.js";

const USAGE = `tessera jobs [--status STATUS] [--type TYPE] [--limit N] ${CONNECTION_USAGE}`;
const PAGE_MAX = 500;

export async function jobsCommand(
  args: string[],
  env: Record<string, string | undefined>,
  io: ClientIo,
): Promise<number> {
  return runCommand(io, args.includes("--json"), USAGE, async () => {
    const { values, positionals } = parseCommand(args, {
      status: { type: "string" },
      type: { type: "string" },
      limit: { type: "string" },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (values.status !== undefined && !isJobStatus(values.status)) {
      throw new UsageError(
        `--status must be one of queued, running, succeeded, failed, canceled, timed_out; got "${values.status}"`,
      );
    }
    const limit = values.limit === undefined ? 50 : integer(values.limit, "--limit", 1, 1_000_000);
    const client = clientFrom(values, env, io);
    const jobs: JobRepresentation[] = [];
    const pages = client.list({
      limit: Math.min(limit, PAGE_MAX),
      ...(values.status !== undefined && isJobStatus(values.status) ? { status: values.status } : {}),
      ...(values.type !== undefined ? { type: values.type } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    });
    for await (const page of pages) {
      jobs.push(...page.items.slice(0, limit - jobs.length));
      if (jobs.length >= limit) break;
    }
    if (values.json) {
      writeJson(io.out, jobs);
      return EXIT.ok;
    }
    if (jobs.length === 0) {
      io.out.write("no jobs\n");
      return EXIT.ok;
    }
    // Ids of both forms (48 characters, or 36 for a job from before time-ordered ids) line up.
    const idWidth = Math.max(...jobs.map((job) => job.id.length));
    io.out.write(
      `${"ID".padEnd(idWidth)}  ${"TYPE".padEnd(20)}  ${"STATUS".padEnd(9)}  ${"PROGRESS".padEnd(8)}  CREATED\n`,
    );
    for (const job of jobs) {
      const progress = job.progress?.percent != null ? `${Math.floor(job.progress.percent)}%` : "-";
      io.out.write(
        `${job.id.padEnd(idWidth)}  ${job.type.padEnd(20)}  ${job.status.padEnd(9)}  ${progress.padEnd(8)}  ${job.createdAt}\n`,
      );
    }
    return EXIT.ok;
  });
}
