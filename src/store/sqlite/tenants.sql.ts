/** The statements of tenants and API keys (see statements.ts). */
import { KEY_COLUMNS } from "../shared/rows.js";

export const TENANTS_SQL = {
  getTenant: `SELECT id FROM tenants WHERE name = ?`,
  insertTenant: `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`,
  insertKey: `INSERT INTO api_keys (id, tenant_id, prefix, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
  getKeyById: `SELECT ${KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?`,
  // Any state: authentication tells live, revoked and expired apart (for the audit log only).
  getKeyByHash: `SELECT ${KEY_COLUMNS}, k.hash FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ?`,
  // The live key to rotate (not revoked, not expired at $now), or none.
  getLiveKey: `SELECT ${KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
       WHERE (k.id = $key OR k.prefix = $key) AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $now)`,
  // The rotated key expires at the end of the overlap, or sooner if it already did.
  shortenKey: `UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $until THEN $until ELSE expires_at END
       WHERE id = $id`,
  listKeys: `SELECT ${KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.created_at`,
  touchKey: `UPDATE api_keys SET last_used_at = ? WHERE id = ?`,
  revokeKey: `UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL`,
} as const;
