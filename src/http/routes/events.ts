/**
 * Events over HTTP: `POST /v1/events` keeps a CloudEvent (structured JSON mode) of the caller's
 * tenant, idempotent by its `id`, and starts the jobs whose triggers match it; `GET /v1/events`
 * lists the tenant's events, newest first; `GET /v1/events/{id}` shows one and what it started.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseCloudEvent, toCloudEvent } from "../../events/cloud-event.js";
import type { EventRecord, TriggeredJob } from "../../store/store.js";
import { listingQuery, refuseIssues } from "../listing.js";
import { ProblemError, storeUnavailable, validationProblem } from "../problems.js";
import type { ServerDeps } from "../server.js";
import { jobPath, origin } from "../urls.js";

const LIST_PARAMETERS = new Set(["type", "limit", "cursor"]);
const eventPath = (id: string) => `/v1/events/${encodeURIComponent(id)}`;

export function eventRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { store } = deps;

  app.post("/v1/events", async (request, reply) => {
    if (request.body === undefined) throw new ProblemError("invalid-json", "a JSON body is required");
    const parsed = parseCloudEvent(request.body, { tenantId: request.tenantId, now: deps.now() });
    if ("issues" in parsed) throw validationProblem(parsed.issues);
    let outcome;
    try {
      outcome = await store.appendEvent({ event: parsed.event, now: deps.now() });
    } catch (error) {
      request.log.error({ err: error }, "an event could not be committed");
      throw storeUnavailable("the event could not be stored; it was not accepted");
    }
    if (outcome.kind === "conflict") {
      throw new ProblemError(
        "event-id-conflict",
        `another event with id ${parsed.event.id} was sent before`,
        {
          event: represent(outcome.event, request, deps),
        },
      );
    }
    let event = outcome.event;
    if (outcome.kind === "created") {
      // Kept: the jobs it triggers are started now; if that fails, the sweep starts them later.
      const triggered = await deps.dispatcher.dispatch(event).catch((error: unknown) => {
        request.log.error({ err: error, event: event.id }, "an event's triggers could not be run yet");
        return null;
      });
      if (triggered) event = { ...event, dispatchedAt: deps.now(), triggered };
    }
    reply
      .code(outcome.kind === "created" ? 202 : 200)
      .header("location", `${origin(request, deps.config)}${eventPath(event.id)}`)
      .header("cache-control", "no-store");
    if (outcome.kind === "duplicate") reply.header("idempotent-replayed", "true");
    return represent(event, request, deps);
  });

  app.get("/v1/events", async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { issues, limit } = listingQuery(query, LIST_PARAMETERS);
    const type = query.type;
    if (type !== undefined && (typeof type !== "string" || type.length < 1 || type.length > 256))
      issues.push({ path: "type", message: "must be an event type (1-256 characters)" });
    let beforeSeq: number | undefined;
    if (query.cursor !== undefined) {
      beforeSeq = decodeCursor(query.cursor);
      if (beforeSeq === undefined)
        issues.push({ path: "cursor", message: "is not a cursor this server issued" });
    }
    refuseIssues(issues);
    const rows = await store.listEvents({
      tenantId: request.tenantId,
      limit: limit + 1,
      ...(typeof type === "string" ? { type } : {}),
      ...(beforeSeq !== undefined ? { beforeSeq } : {}),
    });
    const page = rows.slice(0, limit);
    reply.header("cache-control", "no-store");
    return {
      items: page.map((event) => represent(event, request, deps)),
      nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.seq) : null,
    };
  });

  app.get("/v1/events/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    const event = await store.getEvent({ tenantId: request.tenantId, id });
    if (!event) throw new ProblemError("not-found", `no event ${id}`);
    reply.header("cache-control", "no-store");
    return represent(event, request, deps);
  });
}

/** An event as the API shows it: the CloudEvent, when it came, and the jobs it started. */
function represent(event: EventRecord, request: FastifyRequest, deps: ServerDeps): Record<string, unknown> {
  const base = origin(request, deps.config);
  return {
    event: toCloudEvent(event),
    receivedAt: new Date(event.receivedAt).toISOString(),
    dispatchedAt: event.dispatchedAt === null ? null : new Date(event.dispatchedAt).toISOString(),
    triggered:
      event.triggered?.map((t: TriggeredJob) =>
        "jobId" in t ? { ...t, links: { job: `${base}${jobPath(t.jobId)}` } } : t,
      ) ?? null,
    links: { self: `${base}${eventPath(event.id)}` },
  };
}

function encodeCursor(seq: number): string {
  return Buffer.from(`e${seq}`).toString("base64url");
}

function decodeCursor(value: unknown): number | undefined {
  if (typeof value !== "string" || value.length > 40) return undefined;
  const text = Buffer.from(value, "base64url").toString();
  return /^e\d{1,15}$/.test(text) ? Number(text.slice(1)) : undefined;
}
