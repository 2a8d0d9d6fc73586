/** Type inference users rely on: a job definition types the input and the result. */
import { describe, expectTypeOf, it } from "vitest";
import { createClient, jobRef, type JobHandle, type JobRef } from "../../src/client/index.js";
import type { echo, sleepJob } from "../../src/demo/jobs.js";
import { defineJob } from "../../src/jobs/define.js";
import { bytesResult } from "../../src/jobs/result.js";

const reportJob = defineJob({
  type: "report.generate",
  input: {},
  run: async (input: { month: string }) => ({ url: `https://example.com/${input.month}.pdf`, pages: 3 }),
});
const pdfJob = defineJob({
  type: "report.pdf",
  input: {},
  run: () => bytesResult("%PDF", "application/pdf"),
});
const quietJob = defineJob({ type: "quiet", input: {}, run: (_input: null): void => undefined });

describe("client types", () => {
  const client = createClient({ baseUrl: "http://127.0.0.1:1" });

  it("infers input and result from a definition", () => {
    expectTypeOf(client.run(reportJob, { month: "2025-01" })).resolves.toEqualTypeOf<{
      url: string;
      pages: number;
    }>();
    expectTypeOf(client.submit(reportJob, { month: "2025-01" })).resolves.toMatchTypeOf<
      JobHandle<{ url: string; pages: number }>
    >();
    // @ts-expect-error: the input is checked
    void client.run(reportJob, { month: 1 });
  });

  it("maps bytes results and empty results", () => {
    expectTypeOf(client.run(pdfJob, null)).resolves.toEqualTypeOf<Uint8Array>();
    expectTypeOf(client.run(quietJob, null)).resolves.toEqualTypeOf<null>();
  });

  it("types a jobRef from a definition imported with import type", () => {
    const report = jobRef<typeof reportJob>("report.generate");
    expectTypeOf(report).toEqualTypeOf<JobRef<{ month: string }, { url: string; pages: number }>>();
    expectTypeOf(client.run(report, { month: "2025-02" })).resolves.toEqualTypeOf<{
      url: string;
      pages: number;
    }>();
    const sleep = jobRef<typeof sleepJob>("demo.sleep");
    expectTypeOf(client.run(jobRef<typeof echo>("demo.echo"), 1)).resolves.toBeUnknown();
    // @ts-expect-error: ms is required
    void client.run(sleep, {});
  });

  it("takes a bare type name with unknown input and result", () => {
    expectTypeOf(client.run("demo.echo", { anything: true })).resolves.toBeUnknown();
  });
});
