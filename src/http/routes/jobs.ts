import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isJobId } from "../../jobs/ids.js";
import { isJobStatus, isTerminal } from "../../jobs/states.js";
import { compensationKey, SAGA_COMPENSATION_TYPE } from "../../sagas/compensation-job.js";
import { isSaga } from "../../sagas/define-saga.js";
import type { CallbackSpec, JobRecord, StepRecord } from "../../store/store.js";
import { auditJob } from "../auth.js";
import { buildJob, submitOwnJob } from "../envelope.js";
import { InFlightKeys, isValidIdempotencyKey, requestHash, RESERVED_KEY_PREFIX } from "../idempotency.js";
import { preferredWait } from "../prefer.js";
import { decodeCursor, encodeCursor, listingQuery, refuseIssues } from "../listing.js";
import { ProblemError, storeUnavailable } from "../problems.js";
import { checkReceiver } from "../receiver-check.js";
import { represent, signedResultUrl } from "../representation.js";
import { sendResult } from "../result-response.js";
import type { ServerDeps } from "../server.js";
import { jobPath, origin } from "../urls.js";

const EVENT_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const LIST_PARAMETERS = new Set(["status", "type", "limit", "cursor"]);

/**
 * A long poll of the status monitor also ends when the job's progress changes, after being held
 * this long at least: a client sees progress within about a second, at about one request a second.
 */
const PROGRESS_HOLD_MS = 1000;

const notFound = () => new ProblemError("not-found", "no such job");

/** The caller's job, or 404 for an unknown id and another tenant's job alike. */
export async function findJob(request: FastifyRequest, deps: ServerDeps, id: string): Promise<JobRecord> {
  // Anything that cannot be a job id is not looked up.
  if (!isJobId(id)) throw notFound();
  const job = await deps.store.get({ tenantId: request.tenantId, id });
  if (!job) throw notFound();
  return job;
}

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  throw new ProblemError("invalid-parameter", `${name} must be one of ${allowed.join(", ")}`, {
    errors: [{ path: name, message: `must be one of ${allowed.join(", ")}` }],
  });
}

function idempotencyKey(request: FastifyRequest): string | null {
  const raw = request.raw.rawHeaders;
  const values: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.toLowerCase() === "idempotency-key") values.push(raw[i + 1]!);
  if (values.length === 0) return null;
  if (values.length > 1 || !isValidIdempotencyKey(values[0]!)) {
    throw new ProblemError(
      "invalid-idempotency-key",
      "Idempotency-Key must be one header of 1-255 visible ASCII characters",
    );
  }
  // Tessera's own keys (a saga's compensation job): a client's could take one and stop it.
  if (values[0]!.startsWith(RESERVED_KEY_PREFIX)) {
    throw new ProblemError(
      "invalid-idempotency-key",
      `Idempotency-Key may not begin with "${RESERVED_KEY_PREFIX}": those are Tessera's own`,
    );
  }
  return values[0]!;
}

interface HoldOptions {
  /** Hold one of the tenant's wait slots while waiting. @default true */
  needsSlot?: boolean;
  /** The job was submitted watched: its end is announced to every node already. */
  watched?: boolean;
  /** Also answer when the job's progress changes (after PROGRESS_HOLD_MS). */
  untilProgress?: boolean;
}

/** Hold the request until the job is terminal, `seconds` pass or the client goes away. */
async function waitForTerminal(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  job: JobRecord,
  seconds: number,
  { watched = false, untilProgress = false }: HoldOptions,
): Promise<JobRecord> {
  if (seconds <= 0 || isTerminal(job.status)) return job;
  // Before the status is read again below: an end after this is announced to this node too.
  // If that fails the wait goes on: the fallback poll still ends it.
  if (!watched) {
    await deps.store
      .watch({ tenantId: job.tenantId, id: job.id })
      .catch((error: unknown) => request.log.warn({ err: error }, "could not mark the job watched"));
  }
  const gone = new AbortController();
  const onClose = () => gone.abort();
  reply.raw.once("close", onClose);
  let latest = job;
  let deleted = false;
  const reread = async () => {
    const current = await deps.store.get({ tenantId: job.tenantId, id: job.id });
    // Deleted while we waited (DELETE cancels, then removes): stop waiting, answer 404 below.
    if (current === null) deleted = true;
    else latest = current;
    return deleted || isTerminal(latest.status);
  };
  try {
    await deps.waits.wait(
      job.id,
      seconds * 1000,
      reread,
      gone.signal,
      untilProgress ? { progressAfterMs: PROGRESS_HOLD_MS } : {},
    );
    if (!deleted && !isTerminal(latest.status)) await reread();
  } finally {
    reply.raw.off("close", onClose);
  }
  if (deleted) throw notFound();
  return latest;
}

/**
 * `waitForTerminal` for a request that asked to wait (`preferred`: its `Prefer: wait`, if any),
 * holding one of the tenant's wait slots while it waits when `needsSlot`. Over the cap it
 * returns null: the request is answered at once, as without the preference (no
 * Preference-Applied), since a wait is optional (RFC 7240) and so no error.
 */
async function holdForTerminal(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  job: JobRecord,
  seconds: number,
  preferred: number | null,
  options: HoldOptions = {},
): Promise<JobRecord | null> {
  const release = options.needsSlot !== false ? deps.waits.admit(request.tenantId) : () => undefined;
  if (release === null) return null;
  try {
    if (preferred !== null)
      reply.header("preference-applied", `wait=${Math.min(preferred, deps.config.maxWaitSeconds)}`);
    return await waitForTerminal(request, reply, deps, job, seconds, options);
  } finally {
    release();
  }
}

function sendPending(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  job: JobRecord,
  steps?: readonly StepRecord[],
) {
  return reply
    .code(202)
    .header("location", `${origin(request, deps.config)}${jobPath(job.id)}`)
    .header("retry-after", String(deps.estimator.seconds(job, deps.now())))
    .header("cache-control", "no-store")
    .send(represent(job, request, deps, steps));
}

/** A saga's journal for its status monitor; nothing for other jobs (no query). */
async function stepsOf(deps: ServerDeps, job: JobRecord): Promise<StepRecord[] | undefined> {
  const definition = deps.registry.get(job.type)?.definition;
  if (!definition || !isSaga(definition)) return undefined;
  return deps.store.listSteps({ tenantId: job.tenantId, jobId: job.id });
}

export function jobRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { store, config } = deps;
  const inFlight = new InFlightKeys();

  app.post("/v1/jobs", async (request, reply) => {
    const key = idempotencyKey(request);
    const wait = preferredWait(request.headers.prefer);
    if (request.body === undefined) throw new ProblemError("invalid-json", "a JSON body is required");
    const now = deps.now();
    const job = buildJob(request.body, { tenantId: request.tenantId, registry: deps.registry, config, now });
    // Its end is announced to every node, as this request will wait for it on this one.
    if (wait !== null && wait > 0 && config.maxWaitSeconds > 0) job.watched = true;

    if (job.callback) await checkCallback(request, deps, job.callback, job.type);
    await deps.limiter?.admitQueued(request.tenantId); // 429 quota-exceeded

    const release = key === null ? null : inFlight.tryAcquire(request.tenantId, key);
    if (key !== null && release === null) {
      throw new ProblemError(
        "idempotency-in-flight",
        "a request with this Idempotency-Key is still being processed",
        {},
        { "retry-after": "1" },
      );
    }
    let outcome;
    try {
      const idempotency =
        key === null
          ? null
          : { key, requestHash: requestHash(request.tenantId, "POST", "/v1/jobs", request.body) };
      outcome = await deps.submit({ job, idempotency, now });
    } catch (error) {
      request.log.error({ err: error }, "submit could not be committed");
      throw storeUnavailable("the job could not be stored; it was not accepted");
    } finally {
      release?.();
    }

    if (outcome.kind === "key-mismatch") {
      throw new ProblemError(
        "idempotency-key-mismatch",
        "this Idempotency-Key was used with a different request",
      );
    }
    if (outcome.kind === "replayed") {
      // A replay is never held: same Location, current representation.
      reply.header("idempotent-replayed", "true");
      return sendPending(request, reply, deps, outcome.job);
    }
    deps.metrics.jobsSubmitted.inc({ type: job.type });
    const latest =
      wait === null
        ? null
        : await holdForTerminal(
            request,
            reply,
            deps,
            outcome.job,
            Math.min(wait, config.maxWaitSeconds),
            wait,
            { watched: true },
          );
    if (latest && isTerminal(latest.status))
      return sendResult(request, reply, latest, deps, { contentLocation: true });
    return sendPending(request, reply, deps, latest ?? outcome.job);
  });

  app.get("/v1/jobs/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    const query = request.query as Record<string, unknown>;
    const onComplete = oneOf(
      query.onComplete,
      "onComplete",
      ["redirect", "stream", "status"] as const,
      "redirect",
    );
    const onPending = oneOf(
      query.onPending,
      "onPending",
      ["synchronous", "respond-async"] as const,
      "respond-async",
    );
    const preferred = preferredWait(request.headers.prefer);
    // Polled before the Retry-After given for this job: 429 before the store is asked. Long polls are exempt.
    if (preferred === null && onPending !== "synchronous")
      deps.limiter?.checkPollBudget(request.tenantId, id);
    let job = await findJob(request, deps, id);

    // With both onPending=synchronous and Prefer: wait, the shorter bound wins.
    const bounds = [onPending === "synchronous" ? config.maxWaitSeconds : null, preferred];
    const wait = Math.min(config.maxWaitSeconds, ...bounds.filter((b): b is number => b !== null));
    if (bounds.some((b) => b !== null)) {
      const holds = wait > 0 && !isTerminal(job.status);
      // A long poll (not the synchronous facade, which waits for the outcome) sees progress too.
      const untilProgress = onPending !== "synchronous";
      job =
        (await holdForTerminal(request, reply, deps, job, wait, preferred, {
          needsSlot: holds,
          untilProgress,
        })) ?? job;
    }
    const steps = onComplete === "stream" && isTerminal(job.status) ? undefined : await stepsOf(deps, job);
    if (!isTerminal(job.status)) {
      sendPending(request, reply, deps, job, steps);
      deps.limiter?.notePollAnswer(request.tenantId, job.id, Number(reply.getHeader("retry-after")));
      return reply;
    }
    deps.limiter?.forgetJob(request.tenantId, job.id);
    reply.header("cache-control", "no-store");
    if (onComplete === "stream") return sendResult(request, reply, job, deps, { contentLocation: true });
    if (onComplete === "status") return reply.code(200).send(represent(job, request, deps, steps));
    return reply
      .code(303)
      .header("location", signedResultUrl(origin(request, config), job, deps))
      .send(represent(job, request, deps, steps));
  });

  app.get("/v1/jobs", async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { issues, limit } = listingQuery(query, LIST_PARAMETERS);
    const status = query.status;
    if (status !== undefined && !isJobStatus(status))
      issues.push({ path: "status", message: "is not a job status" });
    const type = query.type;
    if (type !== undefined && (typeof type !== "string" || type.length < 1 || type.length > 128))
      issues.push({ path: "type", message: "must be one job type" });
    let before: { createdAt: number; id: string } | undefined;
    if (query.cursor !== undefined) {
      before = decodeCursor(query.cursor, isJobId);
      if (!before) issues.push({ path: "cursor", message: "is not a cursor this server issued" });
    }
    refuseIssues(issues);
    const rows = await store.list({
      tenantId: request.tenantId,
      limit: limit + 1,
      ...(status !== undefined ? { status: status as JobRecord["status"] } : {}),
      ...(typeof type === "string" ? { type } : {}),
      ...(before ? { before } : {}),
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    reply.header("cache-control", "no-store");
    return {
      items: page.map((job) => represent(job, request, deps)),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
    };
  });

  app.post("/v1/jobs/:id/cancel", async (request, reply) => {
    const { id } = request.params as { id: string };
    const job = await findJob(request, deps, id);
    const definition = deps.registry.get(job.type)?.definition;
    if (definition && isSaga(definition) && !isTerminal(job.status))
      await submitCompensation(request, deps, job);
    const outcome = await store.cancel({ tenantId: request.tenantId, id, now: deps.now() });
    reply.header("cache-control", "no-store");
    switch (outcome.kind) {
      case "not-found":
        throw notFound();
      case "finished":
        throw new ProblemError(
          "job-already-finished",
          `the job already ${outcome.job.status.replace("_", " ")}`,
          {
            job: represent(outcome.job, request, deps),
          },
        );
      default:
        auditJob(request, deps, "job.canceled", id);
        return reply.code(200).send(represent(outcome.job, request, deps));
    }
  });

  app.get("/v1/jobs/:id/deliveries", async (request, reply) => {
    const { id } = request.params as { id: string };
    await findJob(request, deps, id);
    reply.header("cache-control", "no-store");
    return { items: await store.listDeliveries({ tenantId: request.tenantId, jobId: id }) };
  });

  // An event for a saga's `waitForEvent`: kept once per name (its Idempotency-Key is its id).
  app.post("/v1/jobs/:id/events/:name", async (request, reply) => {
    const { id, name } = request.params as { id: string; name: string };
    if (!EVENT_NAME.test(name)) {
      throw new ProblemError("invalid-parameter", "an event name is 1-128 of A-Z a-z 0-9 . _ : -", {
        errors: [{ path: "name", message: "must be 1-128 of A-Z a-z 0-9 . _ : -" }],
      });
    }
    if (request.body === undefined) throw new ProblemError("invalid-json", "a JSON body is required");
    const job = await findJob(request, deps, id);
    const definition = deps.registry.get(job.type)?.definition;
    if (!definition || !isSaga(definition)) throw new ProblemError("not-found", `job ${id} is not a saga`);
    const eventId = idempotencyKey(request) ?? randomUUID();
    const outcome = await store.deliverEvent({
      tenantId: request.tenantId,
      jobId: id,
      name,
      eventId,
      data: request.body,
      now: deps.now(),
    });
    reply.header("cache-control", "no-store");
    switch (outcome) {
      case "not-found":
        throw notFound();
      case "finished":
        throw new ProblemError("job-already-finished", `the saga already ended`, {
          job: represent(job, request, deps),
        });
      case "conflict":
        throw new ProblemError(
          "saga-event-exists",
          `the saga was sent a "${name}" event with another id already`,
        );
      case "duplicate":
        reply.header("idempotent-replayed", "true");
        return reply.code(200).send({ event: name, eventId, status: "duplicate" });
      default:
        return reply
          .code(202)
          .header("location", `${origin(request, config)}${jobPath(id)}`)
          .send({ event: name, eventId, status: "delivered" });
    }
  });

  app.delete("/v1/jobs/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    await findJob(request, deps, id);
    if (!(await store.delete({ tenantId: request.tenantId, id, now: deps.now() }))) throw notFound();
    auditJob(request, deps, "job.deleted", id);
    return reply.code(204).send();
  });
}

/**
 * A saga being canceled: the job that will compensate it, committed before the cancel (it
 * cancels the saga itself if the cancel never comes, after a crash). One per saga, by its key.
 */
async function submitCompensation(request: FastifyRequest, deps: ServerDeps, saga: JobRecord): Promise<void> {
  const input = { saga: saga.id };
  let outcome;
  try {
    outcome = await submitOwnJob(deps, {
      tenantId: saga.tenantId,
      envelope: {
        type: SAGA_COMPENSATION_TYPE,
        input,
        timeoutSeconds: Math.min(3600, deps.config.maxTimeoutSeconds),
      },
      key: compensationKey(saga.id),
      // The same request whatever this node's limits: a cancel on any node finds the first one.
      work: input,
    });
  } catch (error) {
    request.log.error({ err: error }, "the compensation job could not be committed");
    throw storeUnavailable("the saga's compensation could not be stored; it was not canceled");
  }
  if (outcome.kind === "key-mismatch") {
    request.log.error({ saga: saga.id }, "the saga's compensation key holds another request");
    throw storeUnavailable("the saga's compensation could not be stored; it was not canceled");
  }
}

/** The callback's receiver is checked as every webhook receiver is (receiver-check.ts). */
async function checkCallback(
  request: FastifyRequest,
  deps: ServerDeps,
  callback: CallbackSpec,
  jobType: string,
): Promise<void> {
  await checkReceiver(request, deps, {
    url: callback.url,
    path: "/callback/url",
    verify: callback.verify ?? deps.config.callbackVerify,
    ping: { jobType },
  });
  callback.origin = origin(request, deps.config);
}
