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

/**
 * Ids an attacker who has seen `id` would try: its neighbours, the same creation time with
 * another random part, its random part zeroed, and well-formed ids of both forms.
 */
export function guessesFrom(id: string): [label: string, id: string][] {
  const time = jobIdTime(id) ?? Date.now();
  return [
    ["a real id + 1 in its last digit", neighbourId(id, 1)],
    ["a real id - 1 in its last digit", neighbourId(id, -1)],
    ["a new id with a real id's creation time", newJobId(time)],
    ["a real id's creation time, random part zeroed", `${id.slice(0, 14)}${"0".repeat(26)}`],
    ["a random well-formed job id", newJobId(Date.now())],
    ["a random well-formed UUIDv4 (the earlier form)", randomUUID()],
  ];
}
