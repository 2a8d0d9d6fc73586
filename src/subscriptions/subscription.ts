/**
 * Subscriptions: a tenant's webhook for the events of some types (`POST /v1/subscriptions`).
 * Each type is matched as a trigger's is (events/triggers.ts), with the subscription's filter;
 * a matching event is delivered through the callback outbox and its deliverer, signed per
 * Standard Webhooks, as `{ type, timestamp, data: <the CloudEvent> }`.
 */
import { randomUUID } from "node:crypto";
import { Type, type Static } from "@sinclair/typebox";
import { toCloudEvent } from "../events/cloud-event.js";
import { ATTRIBUTE_NAME, EVENT_TYPE, matches } from "../events/triggers.js";
import { findUnsafeString } from "../http/json-body.js";
import { receiverUrlProblem } from "../http/receiver-check.js";
import { createAjv, toIssues, type ValidationIssue } from "../jobs/registry.js";
import type { NewEvent, NewSubscription, SubscriptionRecord } from "../store/store.js";

const MAX_TYPES = 20;
const Text = Type.String({ maxLength: 1024 });

/** What a client sends. Unknown members are refused. */
export const SubscriptionBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: "The receiver (http or https)" }),
    types: Type.Array(Type.String({ pattern: EVENT_TYPE.source, description: "An event type" }), {
      minItems: 1,
      maxItems: MAX_TYPES,
      uniqueItems: true,
    }),
    filter: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Union([
          Text,
          Type.Object({ prefix: Text }, { additionalProperties: false }),
          Type.Object({ suffix: Text }, { additionalProperties: false }),
        ]),
        {
          propertyNames: { pattern: ATTRIBUTE_NAME.source },
          maxProperties: 20,
          description: "Attributes a matching event must have (exactly, or by prefix or suffix)",
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type SubscriptionBody = Static<typeof SubscriptionBody>;

const validate = createAjv().compile<SubscriptionBody>(SubscriptionBody);

/** The subscription to keep, or the issues that make `body` none this server takes. */
export function parseSubscription(
  body: unknown,
  tenantId: string,
): { subscription: NewSubscription } | { issues: ValidationIssue[] } {
  if (!validate(body)) return { issues: toIssues(validate.errors, "") };
  const issues: ValidationIssue[] = [];
  const unsafe = findUnsafeString(body.filter ?? {}, "/filter");
  if (unsafe) issues.push({ path: unsafe, message: "must not contain NUL characters or lone surrogates" });
  const problem = receiverUrlProblem(body.url);
  if (problem) issues.push({ path: "/url", message: problem });
  if (issues.length > 0) return { issues };
  return {
    subscription: {
      id: newSubscriptionId(),
      tenantId,
      url: body.url,
      types: body.types,
      filter: body.filter ?? null,
    },
  };
}

const SUBSCRIPTION_ID = /^sub_[0-9a-f]{32}$/;

export function newSubscriptionId(): string {
  return `sub_${randomUUID().replaceAll("-", "")}`;
}

/** Whether `id` could name a subscription (anything else is not looked up). */
export function isSubscriptionId(id: string): boolean {
  return SUBSCRIPTION_ID.test(id);
}

export function subscriptionMatches(subscription: SubscriptionRecord, event: NewEvent): boolean {
  return subscription.types.some((type) =>
    matches(subscription.filter ? { type, filter: subscription.filter } : { type }, event),
  );
}

/**
 * The webhook body of an event: the same bytes however often it is rendered (a dispatch done
 * again), and the same for every subscription.
 */
export function webhookBody(event: NewEvent): string {
  return JSON.stringify({
    type: event.type,
    timestamp: new Date(event.time).toISOString(),
    data: toCloudEvent(event),
  });
}
