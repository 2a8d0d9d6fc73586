import { randomUUID } from "node:crypto";
import { jobIdTime, newJobId } from "../../src/jobs/ids.js";

/** The digits of a job id, in the order of their values (Crockford base32, lower case). */
export const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";
const HEX = "0123456789abcdef";

/** A well-formed id one step (`delta`) from `id` in its last digit: its closest neighbour. */
export function neighbourId(id: string, delta: number): string {
  const digits = id.startsWith("job_") ? BASE32 : HEX;
  const last = digits.indexOf(id.slice(-1));
  return id.slice(0, -1) + digits[(last + delta + digits.length) % digits.length]!;
}

/** The last 26 digits of a fresh id: a random part no real job has. */
const freshRandom = () => newJobId(Date.now(), "guess").slice(-26);

/**
 * Ids an attacker who has seen `id` would try: its neighbours, its tenant's code and creation
 * time with another random part, its random part zeroed, and well-formed ids of both forms.
 */
export function guessesFrom(id: string): [label: string, id: string][] {
  if (jobIdTime(id) === null) throw new Error(`${id} is not an id of the current form`);
  const tenantAndTime = id.slice(0, -26);
  return [
    ["a real id + 1 in its last digit", neighbourId(id, 1)],
    ["a real id - 1 in its last digit", neighbourId(id, -1)],
    ["a real id's tenant and creation time, another random part", tenantAndTime + freshRandom()],
    ["a real id's tenant and creation time, random part zeroed", `${tenantAndTime}${"0".repeat(26)}`],
    ["a real id's tenant, made now", id.slice(0, 12) + newJobId(Date.now(), "guess").slice(12)],
    ["a random well-formed job id", newJobId(Date.now(), randomUUID())],
    ["a random well-formed UUIDv4 (the earlier form)", randomUUID()],
  ];
}
