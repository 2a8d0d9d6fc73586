/** The query parameters every listing shares (`limit`, `cursor`, no unknown ones), checked alike. */
import { ProblemError } from "./problems.js";

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 50;

export interface ListingQuery {
  /** Problems found so far, by parameter: all are answered together (`400 invalid-parameter`). */
  issues: { path: string; message: string }[];
  limit: number;
}

/** Start checking a listing's query: unknown parameters (a misspelt `?stauts=`) and `limit`. */
export function listingQuery(query: Record<string, unknown>, allowed: ReadonlySet<string>): ListingQuery {
  const issues: ListingQuery["issues"] = [];
  // A misspelt parameter (`?stauts=failed`) must not silently list everything.
  for (const name of Object.keys(query))
    if (!allowed.has(name)) issues.push({ path: name, message: "is not a listing parameter" });
  let limit = DEFAULT_PAGE;
  if (query.limit !== undefined) {
    const n = typeof query.limit === "string" && /^\d{1,4}$/.test(query.limit) ? Number(query.limit) : NaN;
    if (!(n >= 1 && n <= MAX_PAGE))
      issues.push({ path: "limit", message: `must be an integer 1-${MAX_PAGE}` });
    else limit = n;
  }
  return { issues, limit };
}

/** Throw the listing's problems, if any. */
export function refuseIssues(issues: ListingQuery["issues"]): void {
  if (issues.length === 0) return;
  throw new ProblemError("invalid-parameter", issues.map((i) => `${i.path} ${i.message}`).join("; "), {
    errors: issues,
  });
}

/**
 * A listing's cursor: the (createdAt, id) of the last row shown, opaque to clients. The tenant
 * bound is applied by the query, so a forged cursor widens nothing.
 */
export function encodeCursor(row: { createdAt: number; id: string }): string {
  return Buffer.from(JSON.stringify([row.createdAt, row.id])).toString("base64url");
}

/** The place a cursor names; undefined for anything else (or an id `isId` refuses). */
export function decodeCursor(
  value: unknown,
  isId: (id: string) => boolean,
): { createdAt: number; id: string } | undefined {
  if (typeof value !== "string" || value.length > 200) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      Number.isSafeInteger(parsed[0]) &&
      typeof parsed[1] === "string" &&
      isId(parsed[1])
    )
      return { createdAt: parsed[0] as number, id: parsed[1] };
  } catch {
    // fall through: not a cursor
  }
  return undefined;
}
