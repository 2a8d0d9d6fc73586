/**
 * The progress buffer against a store whose writes finish when the test says: reports coalesce
 * per attempt, and one attempt never has two writes in flight (they could commit in either
 * order and leave an older report as the job's last).
 */
import { setImmediate as turn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { ClaimedJob, Store } from "../../src/store/store.js";
import { Attempt } from "../../src/worker/attempt.js";
import { ProgressBuffer } from "../../src/worker/progress-buffer.js";

interface Write {
  message: string | null;
  finish: (applied: boolean) => void;
}

function setUp() {
  const writes: Write[] = [];
  const lost: Attempt[] = [];
  const store = {
    progress: ({ message }: { message: string | null }) =>
      new Promise<boolean>((finish) => writes.push({ message, finish })),
  } as unknown as Store;
  const buffer = new ProgressBuffer({ store, now: () => 0, onLost: (a) => lost.push(a) });
  const job = { id: "job_1", leaseToken: "t1" } as ClaimedJob;
  const attempt = new Attempt(job, 0, () => undefined);
  return { writes, lost, buffer, attempt };
}

describe("ProgressBuffer", () => {
  it("coalesces one turn's reports of an attempt into one write of the latest", async () => {
    const { writes, buffer, attempt } = setUp();
    buffer.queue(attempt, 10, "a");
    buffer.queue(attempt, 20, "b");
    await turn();
    expect(writes.map((w) => w.message)).toEqual(["b"]);
  });

  it("holds a report while the attempt's previous write is on its way, then writes the latest", async () => {
    const { writes, buffer, attempt } = setUp();
    buffer.queue(attempt, 33, "one");
    await turn();
    buffer.queue(attempt, 66, "two");
    await turn();
    buffer.queue(attempt, 100, "three");
    await turn();
    expect(writes.map((w) => w.message)).toEqual(["one"]); // no second write beside the first
    expect(buffer.has(attempt)).toBe(true);

    writes[0]!.finish(true);
    await turn();
    await turn();
    expect(writes.map((w) => w.message)).toEqual(["one", "three"]);
    const written = buffer.written(attempt);
    writes[1]!.finish(true);
    await written;
    await turn();
    expect(writes).toHaveLength(2);
    expect(buffer.has(attempt)).toBe(false);
  });

  it("a report taken for the outcome while a write is on its way is not written by a flush", async () => {
    const { writes, buffer, attempt } = setUp();
    buffer.queue(attempt, 50, "first");
    await turn();
    buffer.queue(attempt, 100, "last");
    await turn();
    const written = buffer.written(attempt);
    writes[0]!.finish(true);
    await written;
    expect(buffer.take(attempt)).toEqual({ percent: 100, message: "last" });
    await turn();
    await turn();
    expect(writes).toHaveLength(1);
  });

  it("a refused write reports the attempt lost and drops what it held", async () => {
    const { writes, lost, buffer, attempt } = setUp();
    buffer.queue(attempt, 10, "x");
    await turn();
    writes[0]!.finish(false);
    await turn();
    expect(lost).toEqual([attempt]);
  });
});
