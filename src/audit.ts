/**
 * The audit log: one structured line per security-relevant event, on a pino child logger with
 * `audit: true` so a log shipper can route them apart. A line names the event, the tenant, the
 * key's prefix (its first 12 characters, never more), the client address (`request.ip`, which
 * honours `--trust-proxy`) and the request id. It never holds a key, a hash, a job's input or
 * its result.
 *
 * Authentication failures are sampled: at most `failuresPerSecond` lines per client address
 * per second and `failuresPerSecondTotal` in all; the lines left out are counted and the count
 * is written as `suppressed` on that address's next line (`suppressedElsewhere` for addresses
 * forgotten meanwhile), so a flood of bad keys cannot fill the disk yet stays visible.
 */
import type { Logger } from "pino";
import { keyPrefix } from "./auth/api-keys.js";

export type AuditEvent =
  "auth.failed" | "key.created" | "key.rotated" | "key.revoked" | "job.canceled" | "job.deleted";

/** Why a request was refused; written to the audit line only, never in the HTTP answer. */
export type AuthFailureReason = "missing" | "malformed" | "unknown" | "revoked" | "expired";

export interface AuditFields {
  /** Tenant id (HTTP) or name (CLI). */
  tenant?: string | null;
  /** A key's first 12 characters; longer values are cut. */
  keyPrefix?: string | null;
  address?: string | null;
  requestId?: string | null;
  reason?: AuthFailureReason;
  job?: string | undefined;
  /** key.rotated: the new key's prefix and the old key's new expiry. */
  newKeyPrefix?: string;
  expiresAt?: string | null;
  /** Key events: the key's id, and who ran the command (the OS user). */
  keyId?: string | undefined;
  actor?: string | undefined;
}

export interface AuditOptions {
  /** Auth-failure lines per client address per second. @default 10 */
  failuresPerSecond?: number;
  /** Auth-failure lines per second over all addresses. @default 100 */
  failuresPerSecondTotal?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

/** Addresses tracked at once; beyond it, ended windows are forgotten. */
const MAX_TRACKED = 10_000;

export class AuditLog {
  private readonly log: Logger;
  private readonly perAddress: number;
  private readonly total: number;
  private readonly now: () => number;
  private readonly windows = new Map<string, Window>();
  private readonly all = { start: 0, written: 0 };
  /** Suppressed lines of addresses forgotten before they wrote again. */
  private orphaned = 0;

  constructor(logger: Logger, options: AuditOptions = {}) {
    // Audit lines are written at info even when the log level is warn or error: only "silent"
    // turns them off.
    const level = logger.level === "silent" ? "silent" : "info";
    this.log = logger.child({ audit: true }, { level });
    this.perAddress = options.failuresPerSecond ?? 10;
    this.total = options.failuresPerSecondTotal ?? 100;
    this.now = options.now ?? Date.now;
  }

  /** One audit line. */
  record(event: AuditEvent, fields: AuditFields = {}): void {
    this.log.info(clean({ event, ...fields }), event);
  }

  /** An authentication failure, subject to sampling. */
  authFailed(fields: AuditFields & { reason: AuthFailureReason }): void {
    const now = this.now();
    const address = fields.address ?? "unknown";
    const window = this.windowOf(address, now);
    if (this.all.start + 1000 <= now) {
      this.all.start = now;
      this.all.written = 0;
    }
    if (window.written >= this.perAddress || this.all.written >= this.total) {
      window.suppressed++;
      return;
    }
    window.written++;
    this.all.written++;
    const { suppressed } = window;
    const elsewhere = this.orphaned;
    window.suppressed = 0;
    this.orphaned = 0;
    this.log.info(
      clean({
        event: "auth.failed",
        ...fields,
        ...(suppressed > 0 ? { suppressed } : {}),
        ...(elsewhere > 0 ? { suppressedElsewhere: elsewhere } : {}),
      }),
      "auth.failed",
    );
  }

  private windowOf(address: string, now: number): Window {
    let window = this.windows.get(address);
    if (window && window.start + 1000 <= now) {
      window.start = now;
      window.written = 0;
    }
    if (!window) {
      if (this.windows.size >= MAX_TRACKED) this.prune(now);
      window = { start: now, written: 0, suppressed: 0 };
      this.windows.set(address, window);
    }
    return window;
  }

  /** Forget addresses whose window has ended, keeping their suppressed counts. */
  private prune(now: number): void {
    for (const [address, window] of this.windows) {
      if (window.start + 1000 <= now) this.forget(address, window);
    }
    // Still full (a flood from many addresses within one second): start afresh.
    if (this.windows.size >= MAX_TRACKED) for (const [a, w] of this.windows) this.forget(a, w);
  }

  private forget(address: string, window: Window): void {
    this.orphaned += window.suppressed;
    this.windows.delete(address);
  }
}

/** A candidate key's prefix, fit for a log line: at most 12 characters, and only a `tsk_` one. */
export function candidatePrefix(candidate: string | undefined): string | null {
  if (!candidate || !/^tsk_[A-Za-z0-9_-]*$/.test(keyPrefix(candidate))) return null;
  return keyPrefix(candidate);
}

/** Drop absent fields and cut any prefix to 12 characters. */
function clean(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    out[name] =
      (name === "keyPrefix" || name === "newKeyPrefix") && typeof value === "string"
        ? keyPrefix(value)
        : value;
  }
  return out;
}
