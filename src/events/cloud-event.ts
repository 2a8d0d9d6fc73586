/**
 * CloudEvents 1.0 in structured JSON mode (https://github.com/cloudevents/spec): what a client
 * may send to `POST /v1/events`, and how a kept event is shown. Extension attributes are kept as
 * sent; `tenant` is the server's (the caller's tenant id), `traceparent` the W3C trace context.
 */
import { createHash } from "node:crypto";
import { Type, type Static } from "@sinclair/typebox";
import { canonicalJson, RESERVED_KEY_PREFIX } from "../http/idempotency.js";
import { findUnsafeString } from "../http/json-body.js";
import { createAjv, toIssues, type ValidationIssue } from "../jobs/registry.js";
import type { JobRecord, NewEvent } from "../store/store.js";
import { LIFECYCLE_TYPE_PREFIX } from "./lifecycle.js";
import { ATTRIBUTE_NAME, EVENT_TYPE } from "./triggers.js";

/** An event type (and id): printable ASCII, no spaces; the schema bounds the length. */
const PRINTABLE = "^[\\x21-\\x7e]+$";
/** Events one attempt may emit, and the JSON of one emitted event's data. */
export const MAX_EMITTED = 100;
const MAX_EMITTED_BYTES = 1_048_576;

/** An event as a client sends it. Attribute names are a-z and 0-9 (the spec's rule). */
export const CloudEventBody = Type.Object(
  {
    specversion: Type.Literal("1.0"),
    id: Type.String({ minLength: 1, maxLength: 256, pattern: PRINTABLE }),
    source: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: "A URI-reference naming the producer",
    }),
    type: Type.String({ minLength: 1, maxLength: 256, pattern: PRINTABLE }),
    subject: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    time: Type.Optional(Type.String({ format: "date-time", maxLength: 40 })),
    datacontenttype: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    dataschema: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    data: Type.Optional(Type.Unknown()),
    traceparent: Type.Optional(Type.String({ pattern: "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$" })),
    tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  {
    // CloudEvents' Integer is 32-bit; there are no other numbers among its types.
    additionalProperties: Type.Union([
      Type.String({ maxLength: 1024 }),
      Type.Integer({ minimum: -2147483648, maximum: 2147483647 }),
      Type.Boolean(),
    ]),
    propertyNames: { pattern: ATTRIBUTE_NAME.source },
    maxProperties: 40,
  },
);
export type CloudEventBody = Static<typeof CloudEventBody>;

/** A kept event as it is shown and handed to a triggered job (its input). */
export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  datacontenttype?: string;
  data?: unknown;
  traceparent?: string;
  tenant: string;
  [extension: string]: unknown;
}

const validate = createAjv().compile<CloudEventBody>(CloudEventBody);
const CORE = new Set(["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"]);

/** The event to keep, or the issues that make `body` no CloudEvent this server takes. */
export function parseCloudEvent(
  body: unknown,
  ctx: {
    tenantId: string;
    now: number;
    /** It came from the broker: another Tessera's own events (ids `tessera:…`, types `tessera.job.…`) are taken too. */
    fromBroker?: boolean;
  },
): { event: NewEvent } | { issues: ValidationIssue[] } {
  if (!validate(body)) {
    const errors = validate.errors ?? [];
    // A bad attribute name is reported twice (the name, and its pattern): once, at the name.
    const names = errors
      .filter((e) => e.keyword === "propertyNames")
      .map((e) => ({
        path: `/${(e.params as { propertyName: string }).propertyName}`,
        message: "is not an attribute name: 1-20 of a-z and 0-9",
      }));
    const rest = toIssues(
      errors.filter((e) => e.keyword !== "propertyNames" && e.propertyName === undefined),
      "",
    );
    return { issues: [...names, ...rest] };
  }
  if (body.tenant !== undefined && body.tenant !== ctx.tenantId)
    return { issues: [{ path: "/tenant", message: "must be the caller's own tenant (or left out)" }] };
  if (body.id.startsWith(RESERVED_KEY_PREFIX) && !ctx.fromBroker)
    return {
      issues: [
        { path: "/id", message: `may not begin with "${RESERVED_KEY_PREFIX}": those are Tessera's own` },
      ],
    };
  // The job lifecycle's events are the store's, kept with each job's end: a forged one would
  // start what only a job's real end may. From the broker they are another Tessera's own.
  if (body.type.startsWith(LIFECYCLE_TYPE_PREFIX) && !ctx.fromBroker)
    return {
      issues: [
        {
          path: "/type",
          message: `may not begin with "${LIFECYCLE_TYPE_PREFIX}": those are the job lifecycle's own events`,
        },
      ],
    };
  const unsafe = findUnsafeString(body);
  if (unsafe)
    return { issues: [{ path: unsafe, message: "must not contain NUL characters or lone surrogates" }] };
  const time = body.time === undefined ? ctx.now : Date.parse(body.time);
  // RFC 3339 allows a leap second (:60), which Date cannot hold.
  if (Number.isNaN(time))
    return { issues: [{ path: "/time", message: "must be a time this server can keep (no leap second)" }] };
  const extensions: NewEvent["extensions"] = {};
  for (const [name, value] of Object.entries(body)) {
    if (CORE.has(name) || name === "traceparent" || name === "tenant") continue;
    extensions[name] = value as string | number | boolean;
  }
  const { tenant: _tenant, ...attributes } = body;
  return {
    event: {
      tenantId: ctx.tenantId,
      id: body.id,
      source: body.source,
      type: body.type,
      subject: body.subject ?? null,
      time,
      datacontenttype: body.datacontenttype ?? (body.data === undefined ? null : "application/json"),
      data: body.data === undefined ? null : body.data,
      traceparent: body.traceparent ?? null,
      extensions,
      hash: eventHash(attributes),
    },
  };
}

/** Of an event's attributes as sent: a resend of the same event is told from another with its id. */
function eventHash(attributes: object): string {
  return createHash("sha256").update(canonicalJson(attributes)).digest("base64url");
}

/**
 * The event a job's attempt emits (`ctx.emit`), checked (a TypeError or RangeError for the
 * handler) and its data copied as JSON now. Its id is in Tessera's own namespace, refused from
 * clients, and names the attempt: `tessera:<job id>-<attempt>-<n>`.
 */
export function emittedEvent(
  job: Pick<JobRecord, "id" | "type" | "tenantId" | "attempt">,
  n: number,
  emit: { type: unknown; data: unknown; subject?: unknown; now: number },
): NewEvent {
  const { type, data } = emit;
  if (typeof type !== "string" || !EVENT_TYPE.test(type))
    throw new TypeError("ctx.emit: the event type must be 1-256 printable ASCII characters");
  if (type.startsWith(LIFECYCLE_TYPE_PREFIX))
    throw new TypeError(`ctx.emit: "${LIFECYCLE_TYPE_PREFIX}*" are the job lifecycle's own events`);
  const subject = emit.subject ?? job.id;
  if (typeof subject !== "string" || subject.length < 1 || subject.length > 1024 || findUnsafeString(subject))
    throw new TypeError(
      "ctx.emit: subject must be a string of 1-1024 characters, without NUL or lone surrogates",
    );
  const json = data === undefined ? "null" : JSON.stringify(data);
  if (json === undefined) throw new TypeError("ctx.emit: data must be JSON");
  if (json.length > MAX_EMITTED_BYTES)
    throw new RangeError(`ctx.emit: data is ${json.length} characters of JSON; at most ${MAX_EMITTED_BYTES}`);
  if (findUnsafeString(data))
    throw new TypeError("ctx.emit: data must not contain NUL characters or lone surrogates");
  const id = `${RESERVED_KEY_PREFIX}${job.id}-${job.attempt}-${n}`;
  const source = `/jobs/${job.type}`;
  const copy = JSON.parse(json) as unknown;
  return {
    tenantId: job.tenantId,
    id,
    source,
    type,
    subject,
    time: emit.now,
    datacontenttype: "application/json",
    data: copy,
    traceparent: null,
    extensions: {},
    hash: eventHash({ id, source, type, subject, data: copy }),
  };
}

/** A kept event in structured JSON mode. */
export function toCloudEvent(event: NewEvent): CloudEvent {
  return {
    specversion: "1.0",
    id: event.id,
    source: event.source,
    type: event.type,
    ...(event.subject !== null ? { subject: event.subject } : {}),
    time: new Date(event.time).toISOString(),
    ...(event.datacontenttype !== null ? { datacontenttype: event.datacontenttype } : {}),
    ...(event.data !== null ? { data: event.data } : {}),
    ...(event.traceparent !== null ? { traceparent: event.traceparent } : {}),
    ...event.extensions,
    tenant: event.tenantId,
  };
}
