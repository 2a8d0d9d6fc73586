/**
 * `Prefer` (RFC 7240): the `wait` preference in seconds, or null. Repeated headers arrive
 * joined by commas; the first valid `wait` wins. Malformed values are ignored, as the RFC asks.
 */
export function preferredWait(header: string | string[] | undefined): number | null {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  for (const part of text.split(",")) {
    const [token] = part.split(";");
    const m = /^\s*wait\s*=\s*"?(\d{1,9})"?\s*$/i.exec(token ?? "");
    if (m) return Number(m[1]);
  }
  return null;
}
