import { Type, type Static } from "@sinclair/typebox";
import type { Config } from "../config.js";
import { newJobId } from "../jobs/ids.js";
import { createAjv, toIssues, type JobRegistry, type ValidationIssue } from "../jobs/registry.js";
import { CALLBACK_EVENTS, type NewJob, type Store, type SubmitOutcome } from "../store/store.js";
import { RESERVED_KEY_PREFIX, requestHash } from "./idempotency.js";
import { findUnsafeString } from "./json-body.js";
import { ProblemError, validationProblem } from "./problems.js";
import { receiverUrlProblem } from "./receiver-check.js";

/** The submit body. Unknown members are refused (no mass assignment of id, status, tenant…). */
export const SubmitEnvelope = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 128, description: "A registered job type" }),
    input: Type.Unknown({
      description: "The job's input, checked against the type's JSON Schema; may be null",
    }),
    callback: Type.Optional(
      Type.Object(
        {
          url: Type.String({ minLength: 1, maxLength: 2048 }),
          events: Type.Optional(
            Type.Array(Type.Union(CALLBACK_EVENTS.map((e) => Type.Literal(e))), {
              uniqueItems: true,
              maxItems: 5,
            }),
          ),
          verify: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, description: "Deadline from submission" })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    priority: Type.Optional(Type.Integer({ minimum: -100, maximum: 100, description: "Higher runs first" })),
    runAt: Type.Optional(Type.String({ format: "date-time", maxLength: 40 })),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 1024 }), {
        maxProperties: 64,
        propertyNames: { minLength: 1, maxLength: 64 },
      }),
    ),
  },
  { additionalProperties: false },
);
export type SubmitEnvelope = Static<typeof SubmitEnvelope>;

const validateEnvelope = createAjv().compile<SubmitEnvelope>(SubmitEnvelope);

/**
 * Validate a submit body completely (envelope, then the type's input schema) and build the
 * job to insert. Throws a 400 problem whose `errors[].path` points into the body.
 */
export function buildJob(
  body: unknown,
  ctx: { tenantId: string; registry: JobRegistry; config: Config; now: number },
): NewJob {
  if (!validateEnvelope(body)) {
    const envelopeIssues = toIssues(validateEnvelope.errors, "");
    // A string type refused only for its length (empty, or longer than any type name may be)
    // names no registered type: the same answer as for any other unknown type.
    const type = (body as { type?: unknown } | null)?.type;
    if (typeof type === "string" && envelopeIssues.every((i) => i.path === "/type")) throw unknownType(type);
    throw validationProblem(envelopeIssues);
  }
  const registered = ctx.registry.get(body.type);
  if (!registered) throw unknownType(body.type);
  const maxInputBytes = registered.definition.maxInputBytes;
  if (maxInputBytes !== undefined) {
    const size = Buffer.byteLength(JSON.stringify(body.input ?? null), "utf8");
    if (size > maxInputBytes) {
      throw new ProblemError(
        "payload-too-large",
        `the input is ${size} bytes of JSON; job type "${body.type}" accepts at most ${maxInputBytes}`,
        {
          maxInputBytes,
          errors: [{ path: "/input", message: `must be at most ${maxInputBytes} bytes of JSON` }],
        },
      );
    }
  }
  const issues: ValidationIssue[] = registered.check(body.input, "/input");
  const unsafe = findUnsafeString(body.input, "/input") ?? findUnsafeString(body.metadata ?? {}, "/metadata");
  if (unsafe) issues.push({ path: unsafe, message: "must not contain NUL characters or lone surrogates" });

  const definition = registered.definition;
  const timeoutSeconds = body.timeoutSeconds ?? definition.timeoutSeconds;
  if (timeoutSeconds > ctx.config.maxTimeoutSeconds) {
    issues.push({ path: "/timeoutSeconds", message: `must be <= ${ctx.config.maxTimeoutSeconds}` });
  }
  const deadlineAt = ctx.now + timeoutSeconds * 1000;
  let runAt = ctx.now;
  if (body.runAt !== undefined) {
    const at = Date.parse(body.runAt);
    if (Number.isNaN(at)) issues.push({ path: "/runAt", message: "must be a valid date-time" });
    // A runAt past the deadline is accepted: the deadline counts from submission, so such a
    // job waits queued and is timed out at its deadline without running (the contract sets
    // no rule between the two; clients hold jobs queued this way).
    else runAt = Math.max(at, ctx.now); // a runAt in the past means now
  }
  if (body.callback) {
    const problem = receiverUrlProblem(body.callback.url);
    if (problem) issues.push({ path: "/callback/url", message: problem });
  }
  if (issues.length > 0) throw validationProblem(issues);

  return {
    id: newJobId(ctx.now, ctx.tenantId),
    tenantId: ctx.tenantId,
    type: body.type,
    input: body.input ?? null,
    priority: body.priority ?? 0,
    runAt,
    deadlineAt,
    maxAttempts: body.maxAttempts ?? definition.maxAttempts,
    metadata: body.metadata ?? {},
    callback: body.callback
      ? {
          url: body.callback.url,
          ...(body.callback.events ? { events: body.callback.events } : {}),
          ...(body.callback.verify !== undefined ? { verify: body.callback.verify } : {}),
        }
      : null,
  };
}

function unknownType(type: string): ProblemError {
  return new ProblemError("unknown-job-type", `no job type is registered as "${type.slice(0, 128)}"`, {
    errors: [{ path: "/type", message: "is not a registered job type" }],
  });
}

/**
 * Submit a job of Tessera's own making (a saga's compensation, an event's triggered job) under
 * an idempotency key of Tessera's own (`tessera:<key>`, refused from clients): however often the
 * same work is asked for, on any node, it is one job. `work` identifies the request behind the
 * key. Throws buildJob's 400 problem when the type's schema refuses the input.
 */
export function submitOwnJob(
  deps: { registry: JobRegistry; config: Config; submit: Store["submit"]; now: () => number },
  own: {
    tenantId: string;
    envelope: { type: string; input: unknown; timeoutSeconds?: number };
    key: string;
    work: unknown;
  },
): Promise<SubmitOutcome> {
  const now = deps.now();
  const job = buildJob(own.envelope, {
    tenantId: own.tenantId,
    registry: deps.registry,
    config: deps.config,
    now,
  });
  const key = `${RESERVED_KEY_PREFIX}${own.key}`;
  const idempotency = { key, requestHash: requestHash(own.tenantId, "OWN", key, own.work) };
  return deps.submit({ job, idempotency, now });
}
