/**
 * Triggers: a job type's `on`, the events that start a job of it. A trigger names an event
 * type and, optionally, a filter on the event's attributes (each one given must match: exactly,
 * or by `prefix` / `suffix`, as the CloudEvents Subscriptions API's dialects do).
 */
import type { NewEvent } from "../store/store.js";

/** An attribute's name, the CloudEvents rule: 1-20 of a-z and 0-9. */
export const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;
/** An event type a job may trigger on or emit: printable ASCII, no spaces. */
export const EVENT_TYPE = /^[\x21-\x7e]{1,256}$/;
// No imports but types: jobs/define.ts (shared with the client's types) reads this file.

export type AttributeFilter = string | { prefix: string } | { suffix: string };

export interface EventTrigger {
  /** The event type that starts the job (`orders.created`). */
  type: string;
  /** Attributes the event must have: `source`, `subject`, or an extension's name. */
  filter?: Readonly<Record<string, AttributeFilter>>;
}

/** What `defineJob({ on })` takes: an event type, a trigger, or several. */
export type TriggerSpec = string | EventTrigger | readonly (string | EventTrigger)[];

/** The triggers of `spec`, checked (a TypeError names the job type and what is wrong). */
export function triggersOf(jobType: string, spec: TriggerSpec | undefined): readonly EventTrigger[] {
  if (spec === undefined) return [];
  const list = (Array.isArray(spec) ? spec : [spec]) as (string | EventTrigger)[];
  return Object.freeze(
    list.map((item) => {
      const trigger = typeof item === "string" ? { type: item } : item;
      if (typeof trigger.type !== "string" || !EVENT_TYPE.test(trigger.type))
        throw new TypeError(`job type "${jobType}": on.type must be 1-256 printable ASCII characters`);
      for (const [name, filter] of Object.entries(trigger.filter ?? {})) {
        const valid =
          typeof filter === "string" ||
          (typeof filter === "object" &&
            filter !== null &&
            (typeof (filter as { prefix?: unknown }).prefix === "string" ||
              typeof (filter as { suffix?: unknown }).suffix === "string"));
        if (!ATTRIBUTE_NAME.test(name) || !valid)
          throw new TypeError(
            `job type "${jobType}": on.filter.${name} must name an attribute (a-z, 0-9) and be a string, { prefix } or { suffix }`,
          );
      }
      return Object.freeze({ ...trigger });
    }),
  );
}

/** The value of an event's attribute, as a string (what filters compare). */
function attribute(event: NewEvent, name: string): string | undefined {
  switch (name) {
    case "id":
      return event.id;
    case "source":
      return event.source;
    case "subject":
      return event.subject ?? undefined;
    case "type":
      return event.type;
    case "datacontenttype":
      return event.datacontenttype ?? undefined;
    default: {
      const value = event.extensions[name];
      return value === undefined ? undefined : String(value);
    }
  }
}

export function matches(trigger: EventTrigger, event: NewEvent): boolean {
  if (trigger.type !== event.type) return false;
  for (const [name, filter] of Object.entries(trigger.filter ?? {})) {
    const value = attribute(event, name);
    if (value === undefined) return false;
    if (
      typeof filter === "string"
        ? value !== filter
        : "prefix" in filter
          ? !value.startsWith(filter.prefix)
          : !value.endsWith(filter.suffix)
    )
      return false;
  }
  return true;
}
