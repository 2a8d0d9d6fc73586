/** The statements of results (see statements.ts). */
export const RESULTS_SQL = {
  getResult: `SELECT status, result_kind, result_type, result_data, result_location, result_size, result_purged
       FROM jobs WHERE tenant_id = ? AND id = ?`,
} as const;
