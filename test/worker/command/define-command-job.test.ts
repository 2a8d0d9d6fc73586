/**
 * defineCommandJob outside a server (runJobOnce): the definition's checks, the process contract
 * (stdin, TESSERA_* variables, scrubbed environment, output dir), the result rules and the
 * mapping of exits to problems. Real processes; the store's side is in test/e2e/command-tasks.
 */
import { existsSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { JobError } from "../../../src/jobs/errors.js";
import { BytesResult, FileResult } from "../../../src/jobs/result.js";
import { JobRegistry } from "../../../src/jobs/registry.js";
import {
  defineCommandJob,
  type DefineCommandJobOptions,
} from "../../../src/worker/command/define-command-job.js";
import { runJobOnce } from "../../../src/worker/testing.js";

const TASK = resolve("test/fixtures/tasks/task.mjs");
const task = (type: string, args: string[], extra: Partial<DefineCommandJobOptions> = {}) =>
  defineCommandJob({ type, command: [process.execPath, TASK, ...args], ...extra });

afterEach(() => {
  delete process.env.TESSERA_TEST_SERVER_SECRET;
  delete process.env.TASK_PASSED_X;
});

describe("defineCommandJob: the definition", () => {
  it.each<[string, Partial<DefineCommandJobOptions>, RegExp]>([
    ["an empty command", { command: [] }, /non-empty array/],
    ["a templated executable", { command: ["{input.x}"] }, /fixed, non-empty/],
    ["an unknown placeholder", { command: ["echo", "{nope}"] }, /not a placeholder/],
    ["an unclosed brace", { command: ["echo", "{input.x"] }, /never closed/],
    [
      "an undeclared input field",
      { command: ["echo", "{input.x}"], input: { type: "object" } },
      /required string/,
    ],
    [
      "an optional input field",
      { command: ["echo", "{input.x}"], input: { type: "object", properties: { x: { type: "string" } } } },
      /required string/,
    ],
    [
      "an object field",
      {
        command: ["echo", "{input.x}"],
        input: { type: "object", properties: { x: { type: "object" } }, required: ["x"] },
      },
      /required string/,
    ],
    ["a bad env name", { command: ["true"], env: { "A-B": "1" } }, /not a variable name/],
    ["a TESSERA_ variable", { command: ["true"], inheritEnv: ["TESSERA_SECRET"] }, /set by Tessera/],
    [
      "an exit code mapped to a non-error status",
      { command: ["true"], exitCodes: { 2: 200 } },
      /HTTP error status/,
    ],
  ])("refuses %s", (_label, options, message) => {
    expect(() => defineCommandJob({ type: "t.bad", command: ["true"], ...options })).toThrow(message);
  });

  it("argument placeholders: a lone one refuses option-like values at submit, unless after --", () => {
    const definition = defineCommandJob({
      type: "t.args",
      input: {
        type: "object",
        properties: { voice: { type: "string" }, text: { type: "string" }, n: { type: "integer" } },
        required: ["voice", "text", "n"],
      },
      command: ["speak", "{input.voice}", "--rate={input.n}", "{input.n}", "--", "{input.text}"],
    });
    const registered = new JobRegistry([definition]).get("t.args")!;
    expect(registered.check({ voice: "en", text: "-5 degrees", n: 3 }, "/input")).toEqual([]);
    expect(registered.check({ voice: "-rf", text: "x", n: 3 }, "/input").map((i) => i.path)).toEqual([
      "/input/voice",
    ]);
    expect(registered.check({ voice: "en", text: "x", n: -3 }, "/input").map((i) => i.path)).toEqual([
      "/input/n",
    ]);
  });
});

describe("defineCommandJob: an attempt", () => {
  it("gets its input on stdin, TESSERA_* in its env, its output dir as cwd; the dir is removed after", async () => {
    const definition = task("t.echo", ["echo", "{jobId}/{attempt}", "{{literal}}"]);
    const { result } = await runJobOnce(definition, { hello: "world" }, { attempt: 2 });
    const got = result as { input: unknown; args: string[]; env: Record<string, string>; cwd: string };
    expect(got.input).toEqual({ hello: "world" });
    expect(got.args).toEqual(["00000000-0000-4000-8000-000000000000/2", "{literal}"]);
    expect(got.env.TESSERA_JOB_ID).toBe("00000000-0000-4000-8000-000000000000");
    expect(got.env.TESSERA_ATTEMPT).toBe("2");
    expect(Date.parse(got.env.TESSERA_DEADLINE!)).toBeGreaterThan(Date.now());
    expect(got.cwd).toBe(got.env.TESSERA_OUTPUT_DIR);
    expect(existsSync(got.env.TESSERA_OUTPUT_DIR!)).toBe(false);
  });

  it("sees no variable of the server's environment but PATH, HOME, LANG, TZ and those it names", async () => {
    process.env.TESSERA_TEST_SERVER_SECRET = "s3cr3t";
    process.env.TASK_PASSED_X = "passed";
    const scrubbed = (await runJobOnce(task("t.env", ["env"]), null)).result as Record<string, string>;
    expect(JSON.stringify(scrubbed)).not.toContain("s3cr3t");
    const names = Object.keys(scrubbed).filter((n) => !n.startsWith("TESSERA_"));
    for (const name of names) expect(["PATH", "HOME", "LANG", "TZ"]).toContain(name);
    const named = task("t.env2", ["env"], { env: { MODE: "fast" }, inheritEnv: ["TASK_PASSED_X"] });
    const seen = (await runJobOnce(named, null)).result as Record<string, string>;
    expect(seen.MODE).toBe("fast");
    expect(seen.TASK_PASSED_X).toBe("passed");
    expect(scrubbed.TASK_PASSED_X).toBeUndefined();
  });

  it("stdout that is not JSON is text; nothing is no result", async () => {
    const text = (await runJobOnce(task("t.text", ["text", "plain", "words"]), null)).result;
    expect(text).toBeInstanceOf(BytesResult);
    expect((text as BytesResult).contentType).toBe("text/plain; charset=utf-8");
    expect(Buffer.from((text as BytesResult).data).toString()).toBe("plain words");
    expect(
      (await runJobOnce(defineCommandJob({ type: "t.true", command: ["true"] }), null)).result,
    ).toBeNull();
  });

  it("one file left in the output dir is the result, typed by result.json or its extension, staged outside the dir", async () => {
    const typed = (await runJobOnce(task("t.file", ["file", "out.bin", "1000", "audio/wav"]), null)).result;
    expect(typed).toBeInstanceOf(FileResult);
    expect((typed as FileResult).contentType).toBe("audio/wav");
    expect(statSync((typed as FileResult).path).size).toBe(1000);
    const guessed = (await runJobOnce(task("t.file2", ["file", "page.pdf", "10"]), null))
      .result as FileResult;
    expect(guessed.contentType).toBe("application/pdf");
    // The caller owns a staged file (a server's store takes it over).
    for (const staged of [typed as FileResult, guessed]) rmSync(staged.path);
  });

  it("several files and no result.json: command-output-invalid, not retried", async () => {
    const failure = await runJobOnce(task("t.two", ["two-files"]), null).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(JobError);
    expect((failure as JobError).slug).toBe("command-output-invalid");
  });

  it("exit codes: mapped ones fail at once with their status; others are retried with stderr's tail", async () => {
    const mapped = await runJobOnce(task("t.exit", ["exit", "65"]), null).catch((e: unknown) => e);
    expect(mapped).toBeInstanceOf(JobError);
    expect((mapped as JobError).status).toBe(422);
    expect((mapped as JobError).message).toMatch(/exited with code 65; stderr: failing with 65/);
    const own = await runJobOnce(task("t.exit2", ["exit", "3"], { exitCodes: { 3: 409 } }), null).catch(
      (e: unknown) => e,
    );
    expect((own as JobError).status).toBe(409);
    const retried = await runJobOnce(task("t.exit3", ["exit", "4"]), null).catch((e: unknown) => e);
    expect(retried).not.toBeInstanceOf(JobError);
    expect((retried as Error).message).toMatch(/exited with code 4; stderr: failing with 4/);
    const crashed = await runJobOnce(task("t.crash", ["crash"]), null).catch((e: unknown) => e);
    expect(crashed).not.toBeInstanceOf(JobError);
    expect((crashed as Error).message).toMatch(/killed by SIGSEGV; stderr: about to crash/);
  });

  it("a missing executable is command-not-found, not retried", async () => {
    const missing = defineCommandJob({ type: "t.missing", command: ["tessera-no-such-program"] });
    const failure = await runJobOnce(missing, null).catch((e: unknown) => e);
    expect((failure as JobError).slug).toBe("command-not-found");
    expect((failure as JobError).message).toMatch(/no such executable/);
  });

  it("a stdout flood is command-output-too-large", async () => {
    const flood = task("t.flood", ["flood"], { maxOutputBytes: 100_000 });
    const failure = await runJobOnce(flood, null).catch((e: unknown) => e);
    expect((failure as JobError).slug).toBe("command-output-too-large");
  });

  it("progress lines become ctx.progress reports", async () => {
    const { progress } = await runJobOnce(task("t.progress", ["progress"]), null);
    expect(progress).toEqual([
      { percent: 10, message: "starting" },
      { percent: 50, message: "halfway" },
      { percent: 90, message: "almost" },
    ]);
  });

  it("the handler's signal stops the task; the attempt rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const running = runJobOnce(task("t.sleep", ["sleep", "30000"]), null, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("canceled by the test")), 300);
    await expect(running).rejects.toThrow("canceled by the test");
  });
});
