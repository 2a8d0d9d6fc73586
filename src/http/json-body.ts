import secureJson from "secure-json-parse";
import { ProblemError } from "./problems.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Nesting depth of a JSON text, counted without parsing (strings skipped), so a 10,000-deep
 * body is refused in linear time before JSON.parse or any recursive walk sees it.
 */
export function jsonDepthExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped char
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > maxDepth) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/**
 * Parse a request body as strict JSON: UTF-8 only (invalid bytes are 400, not U+FFFD),
 * bounded depth, and `__proto__` / `constructor.prototype` keys refused (prototype poisoning).
 * An empty body parses to `undefined` (bodyless POSTs such as cancel).
 */
export function parseJsonBody(raw: Buffer, contentType: string | undefined, maxDepth: number): unknown {
  const charset = /;\s*charset=("?)([^";]+)\1/i.exec(contentType ?? "")?.[2]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new ProblemError("unsupported-media-type", `charset ${charset} is not supported; send UTF-8`);
  }
  if (raw.length === 0) return undefined;
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new ProblemError("invalid-json", "the body is not valid UTF-8");
  }
  if (jsonDepthExceeds(text, maxDepth)) {
    throw new ProblemError("input-too-deep", `JSON nesting is deeper than ${maxDepth} levels`);
  }
  try {
    return secureJson.parse(text, undefined, { protoAction: "error", constructorAction: "error" });
  } catch (error) {
    const message = (error as Error).message;
    if (/prototype/i.test(message)) {
      throw new ProblemError("bad-request", "__proto__ and constructor.prototype keys are not allowed");
    }
    throw new ProblemError("invalid-json", `malformed JSON: ${message.slice(0, 200)}`);
  }
}

/** Strings a store may not keep the same way on every driver: NUL and lone surrogates. */
export function findUnsafeString(value: unknown, path = ""): string | null {
  if (typeof value === "string") {
    return value.includes("\u0000") || !value.isWellFormed() ? path || "/" : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnsafeString(value[i], `${path}/${i}`);
      if (found) return found;
    }
  } else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const found =
        findUnsafeString(key, `${path}/${key}`) ??
        findUnsafeString(item, `${path}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`);
      if (found) return found;
    }
  }
  return null;
}
