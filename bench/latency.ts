/**
 * Sequential latency: submit-to-start of a probe job on an idle worker (one job at a time,
 * the next submitted only after the previous one finished), and the plain HTTP round trip
 * of the reference server, with the same keep-alive client.
 */
import { Agent, request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { PROBE_TYPE } from "./bench-jobs.js";
import type { Child } from "./children.js";
import { distribution, sharedNow, type Distribution } from "./stats.js";

export interface SubmitToStart {
  /**
   * From the submit request being sent to the handler starting (other process, shared clock):
   * an idle worker starts a job before its 202 is even on the wire.
   */
  fromRequest: Distribution;
  /** From the submit's commit resolving in the server to the handler starting (one process). */
  afterCommit: Distribution;
  /** The submit request's own round trip. */
  submitRoundTrip: Distribution;
  /** Probe jobs that did not end `succeeded`. */
  notSucceeded: number;
}

interface Answer {
  status: number;
  body: string;
}

/** One request over a single kept-alive connection. */
class Client {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  send(url: string, method: "GET" | "POST", body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers = body === undefined ? {} : { "content-type": "application/json" };
      const req = request(url, { method, agent: this.agent, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function measureSubmitToStart(
  server: Child,
  baseUrl: string,
  samples: number,
  warmup: number,
): Promise<SubmitToStart> {
  const client = new Client();
  const fromRequest: number[] = [];
  const afterCommit: number[] = [];
  const roundTrip: number[] = [];
  let notSucceeded = 0;
  const body = JSON.stringify({ type: PROBE_TYPE, input: {} });
  try {
    for (let i = 0; i < warmup + samples; i++) {
      const sentAt = sharedNow();
      const answer = await client.send(`${baseUrl}/v1/jobs`, "POST", body);
      const arrivedAt = sharedNow();
      if (answer.status !== 202) throw new Error(`submit answered ${answer.status}: ${answer.body}`);
      const { id } = JSON.parse(answer.body) as { id: string };
      const started = await server.next("started", (m) => m.jobId === id);
      const committed = await server.next("committed", (m) => m.jobId === id);
      const finished = await server.next("finished", (m) => m.jobId === id);
      // Let the worker settle (its after-completion claim finds nothing) so each submit meets an idle worker.
      await sleep(1);
      if (i < warmup) continue;
      fromRequest.push(started.at - sentAt);
      afterCommit.push(started.at - committed.at);
      roundTrip.push(arrivedAt - sentAt);
      if (finished.status !== "succeeded") notSucceeded++;
    }
  } finally {
    client.close();
  }
  return {
    fromRequest: distribution(fromRequest),
    afterCommit: distribution(afterCommit),
    submitRoundTrip: distribution(roundTrip),
    notSucceeded,
  };
}

/** Round trips of `POST url` (the reference's submit route), one after another. */
export async function measureRoundTrip(url: string, samples: number, warmup: number): Promise<Distribution> {
  const client = new Client();
  const times: number[] = [];
  const body = JSON.stringify({ type: PROBE_TYPE, input: {} });
  try {
    for (let i = 0; i < warmup + samples; i++) {
      const sentAt = sharedNow();
      const answer = await client.send(url, "POST", body);
      const arrivedAt = sharedNow();
      if (answer.status !== 202) throw new Error(`reference answered ${answer.status}`);
      if (i >= warmup) times.push(arrivedAt - sentAt);
    }
  } finally {
    client.close();
  }
  return distribution(times);
}
