/**
 * `createTessera({ jobs })` takes job definitions as `defineJob` and `defineCommandJob` return
 * them: a handler typed `run(input: { … })` needs no cast (this file is typechecked by `npm run
 * typecheck`), and what is not a job definition is still a type error. At run time the typed
 * handler gets only inputs its schema accepted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { createTessera, defineCommandJob, defineJob, type Tessera } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-create-"));
const open: Tessera[] = [];
afterAll(async () => {
  for (const tessera of open) await tessera.close();
  rmSync(dir, { recursive: true, force: true });
});

const add = defineJob({
  type: "math.add",
  input: {
    type: "object",
    properties: { a: { type: "integer" }, b: { type: "integer" } },
    required: ["a", "b"],
    additionalProperties: false,
  },
  run: (input: { a: number; b: number }) => ({ sum: input.a + input.b }),
});

const echo = defineCommandJob({
  type: "shell.echo",
  input: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  command: ["echo", "{input.text}"],
});

describe("createTessera({ jobs })", () => {
  it("accepts typed definitions without a cast and runs them on validated input", async () => {
    const tessera = await createTessera({
      jobs: [add, echo],
      config: { dev: true, db: join(dir, "typed.db") },
      logger: pino({ level: "silent" }),
    });
    open.push(tessera);
    await tessera.start();
    expect(tessera.registry.definitions().map((d) => d.type)).toEqual(["math.add", "shell.echo"]);

    const ok = await tessera.app.inject({
      method: "POST",
      url: "/v1/jobs",
      headers: { prefer: "wait=10" },
      payload: { type: "math.add", input: { a: 2, b: 3 } },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ sum: 5 });

    const bad = await tessera.app.inject({
      method: "POST",
      url: "/v1/jobs",
      payload: { type: "math.add", input: { a: "2", b: 3 } },
    });
    expect(bad.statusCode).toBe(400);
  });

  it("still refuses, as a type error, what is not a job definition", async () => {
    const notAJob = { type: "x.y", run: () => null };
    const options = {
      // @ts-expect-error: no input schema, limits or description; not made by defineJob
      jobs: [notAJob],
      config: { dev: true, db: join(dir, "never.db") },
    } satisfies Parameters<typeof createTessera>[0];
    expect(options.jobs).toHaveLength(1);
  });
});
