import { JOB_STATUSES } from "../jobs/states.js";
import { PROBLEMS } from "../jobs/problems.js";
import { CloudEventBody } from "../events/cloud-event.js";
import { SubscriptionBody } from "../subscriptions/subscription.js";
import { SubmitEnvelope } from "./envelope.js";
import type { ServerDeps } from "./server.js";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });
const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ref("Problem") } },
});
const header = (description: string, schema: object = { type: "string" }) => ({ description, schema });

const idParam = {
  name: "id",
  in: "path",
  required: true,
  description:
    "`job_`, 8 base32 digits of the tenant's code, 10 of the creation time, 26 random ones (UUIDv4 for jobs created before)",
  schema: { type: "string", maxLength: 48 },
};
const preferParam = {
  name: "Prefer",
  in: "header",
  required: false,
  description: "RFC 7240; `wait=N` holds the request up to N seconds (capped) for a terminal state",
  schema: { type: "string" },
};
const pending = {
  description: "Queued or running: poll `Location` after `Retry-After` seconds",
  headers: {
    Location: header("Status monitor URL"),
    "Retry-After": header("Seconds", { type: "integer", minimum: 1 }),
  },
  content: json(ref("Job")),
};
/** 429 of the rate limits (src/http/rate-limit.ts); every answer of these routes has the RateLimit headers. */
const limited = {
  description: "rate-limited (or quota-exceeded on submit): Retry-After, RateLimit-Policy, RateLimit",
  headers: {
    "Retry-After": header("Seconds", { type: "integer", minimum: 1 }),
    "RateLimit-Policy": header('e.g. "poll";q=5000;w=1'),
    RateLimit: header('e.g. "poll";r=4987;t=1'),
  },
  content: { "application/problem+json": { schema: ref("Problem") } },
};
const common = {
  "401": problem("Missing or invalid API key"),
  "404": problem("No such job (or another tenant's)"),
};

/** A listing's page parameters, and its answer: items of `schema`, and the next cursor. */
const pageParams = [
  { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 500, default: 50 } },
  { name: "cursor", in: "query", schema: { type: "string" } },
];
const page = (description: string, schema: string) => ({
  description,
  content: json({
    type: "object",
    properties: { items: { type: "array", items: ref(schema) }, nextCursor: { type: ["string", "null"] } },
  }),
});

/** OpenAPI 3.1 of the whole HTTP API, built from the same schemas the server validates with. */
export function buildOpenApi(deps: ServerDeps): Record<string, unknown> {
  const { config } = deps;
  return {
    openapi: "3.1.0",
    info: {
      title: "Tessera",
      version: "1",
      description:
        "Asynchronous Request-Reply over HTTP. Limits: body " +
        `${config.bodyLimit} bytes (413), JSON depth ${config.maxJsonDepth} (400), Idempotency-Key 1-255 visible ASCII, ` +
        `idempotency records kept 24 hours, waits capped at ${config.maxWaitSeconds} s ` +
        `(at most ${config.maxWaitsPerTenant} held per tenant; beyond, answered at once without Preference-Applied), ` +
        `timeoutSeconds <= ${config.maxTimeoutSeconds}, request headers <= ${config.maxHeaderBytes} bytes (431), ` +
        "a job type's maxInputBytes (413, listed by /v1/job-types), " +
        `page size <= 500, signed URLs valid ${config.signedUrlTtl} s.`,
    },
    components: {
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "tsk_… API key" } },
      schemas: {
        SubmitEnvelope,
        CloudEvent: CloudEventBody,
        NewSubscription: SubscriptionBody,
        Subscription: {
          type: "object",
          required: ["id", "url", "types", "createdAt", "links"],
          properties: {
            id: { type: "string", description: "`sub_` and 32 hex digits" },
            url: { type: "string" },
            types: { type: "array", items: { type: "string" } },
            filter: { type: "object", description: "As sent, when it was" },
            createdAt: { type: "string", format: "date-time" },
            links: { type: "object", properties: { self: { type: "string" } } },
          },
        },
        Event: {
          type: "object",
          required: ["event", "receivedAt", "dispatchedAt", "triggered", "links"],
          properties: {
            event: { $ref: "#/components/schemas/CloudEvent" },
            receivedAt: { type: "string", format: "date-time" },
            dispatchedAt: { type: ["string", "null"], format: "date-time" },
            triggered: {
              type: ["array", "null"],
              description: "The jobs the event started, one per matching trigger (or why not)",
              items: {
                type: "object",
                required: ["type"],
                properties: {
                  type: { type: "string" },
                  jobId: { type: "string" },
                  error: { type: "string" },
                  links: { type: "object", properties: { job: { type: "string" } } },
                },
              },
            },
            links: { type: "object", properties: { self: { type: "string" } } },
          },
        },
        Job: {
          type: "object",
          required: [
            "id",
            "type",
            "status",
            "progress",
            "attempt",
            "maxAttempts",
            "createdAt",
            "startedAt",
            "finishedAt",
            "deadlineAt",
            "error",
            "links",
          ],
          properties: {
            id: { type: "string" },
            type: { type: "string" },
            status: { enum: [...JOB_STATUSES] },
            progress: {
              type: ["object", "null"],
              properties: { percent: { type: ["number", "null"] }, message: { type: ["string", "null"] } },
            },
            attempt: { type: "integer" },
            maxAttempts: { type: "integer" },
            createdAt: { type: "string", format: "date-time" },
            startedAt: { type: ["string", "null"], format: "date-time" },
            finishedAt: { type: ["string", "null"], format: "date-time" },
            deadlineAt: { type: "string", format: "date-time" },
            error: { oneOf: [{ type: "null" }, ref("Problem")] },
            metadata: { type: "object", additionalProperties: { type: "string" } },
            steps: {
              description: "A saga's steps, in order (its status monitor only)",
              type: "array",
              items: {
                type: "object",
                required: ["name", "status", "attempts", "startedAt", "finishedAt", "error", "compensatedAt"],
                properties: {
                  name: { type: "string" },
                  status: { enum: ["running", "succeeded", "failed", "compensated", "compensation_failed"] },
                  attempts: { type: "integer" },
                  startedAt: { type: "string", format: "date-time" },
                  finishedAt: { type: ["string", "null"], format: "date-time" },
                  error: { oneOf: [{ type: "null" }, ref("Problem")] },
                  compensatedAt: { type: ["string", "null"], format: "date-time" },
                },
              },
            },
            links: {
              type: "object",
              required: ["self"],
              properties: {
                self: { type: "string" },
                cancel: { type: "string" },
                result: { type: "string" },
              },
            },
          },
        },
        DeliveryAttempt: {
          type: "object",
          required: [
            "eventId",
            "event",
            "attempt",
            "at",
            "statusCode",
            "latencyMs",
            "error",
            "nextAttemptAt",
          ],
          properties: {
            eventId: { type: "string", description: "The webhook-id, the same on every attempt" },
            event: {
              type: "string",
              description: "job.succeeded, job.failed, job.canceled, job.timed_out, job.progress",
            },
            attempt: { type: "integer", minimum: 1 },
            at: { type: "integer", description: "When the attempt was made (unix epoch ms)" },
            statusCode: { type: ["integer", "null"], description: "The receiver's answer; null: no answer" },
            latencyMs: { type: "number" },
            error: { type: ["string", "null"] },
            nextAttemptAt: { type: ["integer", "null"], description: "Epoch ms; null: the delivery ended" },
          },
        },
        Problem: {
          type: "object",
          required: ["type", "title", "status", "detail", "instance"],
          properties: {
            type: {
              type: "string",
              description: `/problems/<slug>; slugs: ${Object.keys(PROBLEMS).join(", ")}`,
            },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            instance: { type: "string" },
            errors: {
              type: "array",
              items: {
                type: "object",
                properties: { path: { type: "string" }, message: { type: "string" } },
              },
            },
          },
        },
      },
    },
    security: config.dev ? [] : [{ apiKey: [] }],
    paths: {
      "/v1/jobs": {
        post: {
          summary: "Submit a job",
          parameters: [
            preferParam,
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              schema: { type: "string", minLength: 1, maxLength: 255 },
            },
          ],
          requestBody: { required: true, content: json(ref("SubmitEnvelope")) },
          responses: {
            "202": { ...pending, description: "Accepted: committed durably" },
            "200": { description: "Finished within Prefer: wait; answered as the result resource" },
            "400": problem("Invalid envelope or input (errors[].path is a JSON Pointer)"),
            "409": problem("A request with this Idempotency-Key is in flight"),
            "413": problem("Body too large"),
            "415": problem("Not application/json"),
            "422": problem("Idempotency-Key reused with a different request"),
            "429": limited,
            "401": common["401"],
          },
        },
        get: {
          summary: "List the caller's jobs, newest first",
          parameters: [
            { name: "status", in: "query", schema: { enum: [...JOB_STATUSES] } },
            { name: "type", in: "query", schema: { type: "string" } },
            ...pageParams,
          ],
          responses: {
            "200": page("A page", "Job"),
            "400": problem("Invalid parameter"),
            "429": limited,
            "401": common["401"],
          },
        },
      },
      "/v1/jobs/{id}": {
        get: {
          summary: "Status monitor",
          parameters: [
            idParam,
            preferParam,
            {
              name: "onComplete",
              in: "query",
              schema: { enum: ["redirect", "stream", "status"], default: "redirect" },
            },
            {
              name: "onPending",
              in: "query",
              schema: { enum: ["respond-async", "synchronous"], default: "respond-async" },
            },
          ],
          responses: {
            "202": pending,
            "303": { description: "Terminal: Location is the signed result URL", content: json(ref("Job")) },
            "200": { description: "Terminal with onComplete=status (the job) or stream (the result)" },
            "429": limited,
            ...common,
          },
        },
        delete: {
          summary: "Cancel if active, then delete the job and its result",
          parameters: [idParam],
          responses: { "204": { description: "Deleted" }, ...common },
        },
      },
      "/v1/jobs/{id}/cancel": {
        post: {
          summary: "Cancel a job",
          parameters: [idParam],
          responses: {
            "200": { description: "Canceled", content: json(ref("Job")) },
            "409": problem("Already succeeded, failed or timed out (the job is in `job`)"),
            ...common,
          },
        },
      },
      "/v1/jobs/{id}/result": {
        get: {
          summary: "The result, with credentials or at a signed URL",
          security: [{ apiKey: [] }, {}],
          parameters: [
            idParam,
            { name: "expires", in: "query", schema: { type: "integer" } },
            { name: "sig", in: "query", schema: { type: "string" } },
          ],
          responses: {
            "200": { description: "The result (JSON or the stored bytes)" },
            "201": { description: "The job created a resource: Location" },
            "204": { description: "The job returned nothing" },
            "202": pending,
            "403": problem("Signature missing, tampered or expired"),
            "409": problem("job-canceled"),
            "429": limited,
            "410": problem("Result removed by retention"),
            "422": problem("The job rejected its input (or the handler's own 4xx)"),
            "500": problem("job-failed"),
            "504": problem("job-timed-out"),
            ...common,
          },
        },
      },
      "/v1/jobs/{id}/deliveries": {
        get: {
          summary: "Every callback delivery attempt of the job, oldest first",
          parameters: [idParam],
          responses: {
            "200": {
              description: "The attempts (times are unix epoch milliseconds)",
              content: json({
                type: "object",
                required: ["items"],
                properties: { items: { type: "array", items: ref("DeliveryAttempt") } },
              }),
            },
            "429": limited,
            ...common,
          },
        },
      },
      "/v1/jobs/{id}/events/{name}": {
        post: {
          summary: "Send an event to a saga (saga.waitForEvent); the body, any JSON, is its data",
          parameters: [
            idParam,
            {
              name: "name",
              in: "path",
              required: true,
              schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" },
            },
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              description: "The event's id: the same again is a harmless resend (200)",
              schema: { type: "string" },
            },
          ],
          requestBody: { required: true, content: json({}) },
          responses: {
            "202": { description: "Kept for the saga (and the saga woken if it waits)" },
            "200": { description: "The same event again (same Idempotency-Key): nothing more done" },
            "409": { description: "Another event of this name was kept already, or the saga has ended" },
            "429": limited,
            ...common,
          },
        },
      },
      "/v1/events": {
        post: {
          summary:
            "Send a CloudEvent (structured JSON mode): kept once per id, it starts the jobs whose triggers match",
          requestBody: {
            required: true,
            content: {
              "application/cloudevents+json": { schema: ref("CloudEvent") },
              ...json(ref("CloudEvent")),
            },
          },
          responses: {
            "202": { description: "Kept (committed) and dispatched", content: json(ref("Event")) },
            "200": { description: "The same event again: nothing more done", content: json(ref("Event")) },
            "400": problem("Not a CloudEvent this server takes (errors[].path names the attribute)"),
            "409": problem("Another event with this id was sent before (event-id-conflict)"),
            "429": limited,
            "401": common["401"],
          },
        },
        get: {
          summary: "List the caller's events, newest first",
          parameters: [{ name: "type", in: "query", schema: { type: "string" } }, ...pageParams],
          responses: {
            "200": page("A page of events", "Event"),
            "400": problem("Invalid query parameter"),
            "401": common["401"],
          },
        },
      },
      "/v1/events/{id}": {
        get: {
          summary: "One of the caller's events, and the jobs it started",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": { description: "The event", content: json(ref("Event")) },
            "401": common["401"],
            "404": problem("No such event of the caller's"),
          },
        },
      },
      "/v1/subscriptions": {
        post: {
          summary:
            "Subscribe a webhook to events: each kept event of a listed type (and the filter) is POSTed to url, signed per Standard Webhooks, as { type, timestamp, data: <the CloudEvent> }",
          requestBody: { required: true, content: json(ref("NewSubscription")) },
          responses: {
            "201": {
              description: "Created",
              headers: { Location: header("The subscription's URL") },
              content: json(ref("Subscription")),
            },
            "400": problem(
              "Not a subscription this server takes (validation-failed), or its url is refused as a job's callback url is (callback-url-forbidden, callback-unreachable)",
            ),
            "429": limited,
            "401": common["401"],
          },
        },
        get: {
          summary: "List the caller's subscriptions, newest first",
          parameters: pageParams,
          responses: {
            "200": page("A page of subscriptions", "Subscription"),
            "400": problem("Invalid query parameter"),
            "401": common["401"],
          },
        },
      },
      "/v1/subscriptions/{id}": {
        get: {
          summary: "One of the caller's subscriptions",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", maxLength: 36 } }],
          responses: {
            "200": { description: "The subscription", content: json(ref("Subscription")) },
            "401": common["401"],
            "404": problem("No such subscription of the caller's"),
          },
        },
        delete: {
          summary: "Delete a subscription: its deliveries still pending are stopped",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", maxLength: 36 } }],
          responses: {
            "204": { description: "Deleted" },
            "429": limited,
            "401": common["401"],
            "404": problem("No such subscription of the caller's"),
          },
        },
      },
      "/v1/job-types": {
        get: {
          summary: "Registered job types with their input schemas",
          responses: { "200": { description: "Types" } },
        },
      },
      "/healthz": {
        get: { summary: "Process alive", security: [], responses: { "200": { description: "OK" } } },
      },
      "/readyz": {
        get: {
          summary: "Store reachable",
          security: [],
          responses: { "200": { description: "Ready" }, "503": problem("Store unreachable") },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          security: [],
          responses: { "200": { description: "Text format" } },
        },
      },
      "/problems/{slug}": {
        get: {
          summary: "What a problem type means (problem `type` URIs are dereferenceable)",
          security: [],
          parameters: [{ name: "slug", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": {
              description: "The problem type",
              content: json({
                type: "object",
                properties: {
                  type: { type: "string" },
                  title: { type: "string" },
                  status: { type: "integer" },
                },
              }),
            },
            "404": problem("No such problem type"),
          },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1" } } },
      },
    },
  };
}
