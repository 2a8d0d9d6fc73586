/**
 * Child process: one system of the PostgreSQL comparison. Sets up its namespace, drains a
 * warm-up round and the measured round of no-op jobs, measures submit-to-start, and always
 * tears the namespace down (schemas dropped, queues obliterated).
 */
import { childOptions, runChild, sendLast } from "../protocol.js";
import { bullmq } from "./bullmq.js";
import { graphileWorker } from "./graphile-worker.js";
import { pgBoss } from "./pg-boss.js";
import { tesseraPg } from "./tessera-pg.js";
import type { Peer, PeerName, PeerOptions, PeerResult } from "./types.js";

export interface PeerChildOptions extends PeerOptions {
  peer: PeerName;
}

const PEERS: Record<PeerName, Peer> = {
  "tessera-pg": tesseraPg,
  "pg-boss": pgBoss,
  "graphile-worker": graphileWorker,
  bullmq,
};

runChild(async () => {
  const options = childOptions<PeerChildOptions>();
  const peer = PEERS[options.peer];
  let result: PeerResult;
  try {
    await peer.setUp(options);
    if (options.warmupJobs > 0) await peer.drain(options, options.warmupJobs);
    const drain = await peer.drain(options, options.jobs);
    const latency = await peer.latency(options);
    result = {
      system: peer.name,
      version: peer.version,
      tuning: peer.tuning,
      jobs: options.jobs,
      concurrency: options.concurrency,
      insertMs: drain.insertMs,
      drainMs: drain.drainMs,
      jobsPerSec: (options.jobs / drain.drainMs) * 1000,
      cpuUsPerJob: drain.cpuUs / options.jobs,
      serverCpuUsPerJob: drain.serverCpuUs / options.jobs,
      handled: drain.handled,
      repeated: drain.repeated,
      lost: drain.lost,
      finalStates: drain.finalStates,
      latency,
    };
  } finally {
    await peer.tearDown(options);
  }
  await sendLast({ kind: "peer", result });
});
