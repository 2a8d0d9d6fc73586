/**
 * `Retry-After` (RFC 9110 §10.2.3), parsed strictly: delay-seconds (digits only) or an
 * IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). Anything else (a sign, a fraction, spaces,
 * obsolete date forms) is ignored rather than guessed at, as sindresorhus/ky does.
 */

const DELAY_SECONDS = /^\d{1,10}$/;
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/**
 * Milliseconds to wait, or `undefined` when the header is absent or malformed.
 * A date in the past means 0.
 *
 * @example
 * parseRetryAfter("3") // 3000
 * parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.UTC(2015, 9, 21, 7, 27, 58)) // 2000
 * parseRetryAfter("1.5") // undefined
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (DELAY_SECONDS.test(value)) return Number(value) * 1000;
  const m = IMF_FIXDATE.exec(value);
  if (!m) return undefined;
  const [, day, date, month, year, hour, minute, second] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const at = Date.UTC(
    Number(year),
    MONTHS.indexOf(month),
    Number(date),
    Number(hour),
    Number(minute),
    Number(second),
  );
  const check = new Date(at);
  // Reject impossible dates (31 Feb) and a weekday that does not match the date.
  if (check.getUTCDate() !== Number(date) || check.getUTCHours() !== Number(hour) || Number(second) > 59)
    return undefined;
  if (DAYS[check.getUTCDay()] !== day) return undefined;
  return Math.max(0, at - now);
}

/** `Preference-Applied: wait=N` (RFC 7240): N seconds, or `undefined` when absent or malformed. */
export function parseAppliedWait(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  for (const part of value.split(",")) {
    const m = /^\s*wait\s*=\s*"?(\d{1,9})"?\s*$/i.exec(part.split(";")[0] ?? "");
    if (m) return Number(m[1]);
  }
  return undefined;
}
