/** Rows and helpers for per-tenant limits, shared by the drivers (migrations 004_tenant_limits). */
import type { TenantLimits, TenantRecord } from "../store.js";

export interface TenantRow {
  id: string;
  name: string;
  created_at: number | string;
  submit_rate: number | null;
  poll_rate: number | null;
  max_queued: number | null;
}

export const TENANT_COLUMNS = "id, name, created_at, submit_rate, poll_rate, max_queued";

export const NO_LIMITS: TenantLimits = Object.freeze({ submitRate: null, pollRate: null, maxQueued: null });

export function toLimits(row: Pick<TenantRow, "submit_rate" | "poll_rate" | "max_queued">): TenantLimits {
  return { submitRate: row.submit_rate, pollRate: row.poll_rate, maxQueued: row.max_queued };
}

export function toTenant(row: TenantRow): TenantRecord {
  return { id: row.id, name: row.name, createdAt: Number(row.created_at), limits: toLimits(row) };
}

/** The SET list and its values for the members given (undefined: unchanged). */
export function limitUpdates(limits: Partial<TenantLimits>): {
  columns: string[];
  values: (number | null)[];
} {
  const columns: string[] = [];
  const values: (number | null)[] = [];
  const pairs: [keyof TenantLimits, string][] = [
    ["submitRate", "submit_rate"],
    ["pollRate", "poll_rate"],
    ["maxQueued", "max_queued"],
  ];
  for (const [member, column] of pairs) {
    const value = limits[member];
    if (value === undefined) continue;
    if (value !== null && (!Number.isSafeInteger(value) || value < 0))
      throw new RangeError(`${member} must be an integer >= 0, got ${value}`);
    columns.push(column);
    values.push(value);
  }
  return { columns, values };
}

/** A tenant's limits, or none for a tenant without a row. */
export function limitsOf(row: TenantRow | undefined): TenantLimits {
  return row ? toLimits(row) : { ...NO_LIMITS };
}
