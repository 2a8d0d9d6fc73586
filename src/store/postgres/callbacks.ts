/** Callbacks on PostgreSQL: the outbox's deliveries (SKIP LOCKED), their attempts, webhook secrets. */
import { randomUUID } from "node:crypto";
import { generateWebhookSecret } from "../../callbacks/signature.js";
import { leasedDeliveries, secretsOf, toAttempt } from "../shared/outbox.js";
import type { AttemptRow, OutboxRow, SecretRow } from "../shared/outbox.js";
import type { ClaimedDelivery, DeliveryAttempt, Store, StoreParams } from "../store.js";
import type { PgDb } from "./db.js";
import type { PgTenants } from "./tenants.js";

export class PgCallbacks {
  constructor(
    private readonly db: PgDb,
    private readonly tenants: PgTenants,
  ) {}

  async claimDeliveries(params: StoreParams<"claimDeliveries">): Promise<ClaimedDelivery[]> {
    const { limit, leaseMs, now, skipTenants = [] } = params;
    const token = randomUUID();
    const rows = await this.db.query<OutboxRow>(
      `UPDATE {{s}}.webhook_events SET lease_token = $1, lease_expires_at = $2
       WHERE id IN (
         SELECT id FROM {{s}}.webhook_events
         WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3)
           AND NOT (tenant_id = ANY($5::text[]))
         ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [token, now + leaseMs, now, limit, skipTenants],
    );
    return leasedDeliveries(rows, token);
  }

  async recordDelivery(params: StoreParams<"recordDelivery">): Promise<boolean> {
    const { eventId, leaseToken, body, attempt, outcome } = params;
    const rows = await this.db.query<{ event_id: string }>(
      `WITH upd AS (
         UPDATE {{s}}.webhook_events SET body = coalesce(body, $3), attempts = $4, status = $5,
           next_attempt_at = coalesce($6, next_attempt_at), lease_token = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_token = $2 RETURNING id, job_id)
       INSERT INTO {{s}}.webhook_attempts (event_id, attempt, job_id, event, at, status_code, latency_ms, error, next_attempt_at)
       SELECT id, $4, job_id, $7, $8, $9, $10, $11, $6 FROM upd RETURNING event_id`,
      [
        eventId,
        leaseToken,
        body,
        attempt.attempt,
        outcome === "retry" ? "pending" : outcome,
        attempt.nextAttemptAt,
        attempt.event,
        attempt.at,
        attempt.statusCode,
        attempt.latencyMs,
        attempt.error,
      ],
    );
    if (rows.length > 0 && attempt.nextAttemptAt !== null)
      this.db.events.emit({ kind: "outbox", at: attempt.nextAttemptAt });
    return rows.length > 0;
  }

  async listDeliveries({ tenantId, jobId }: { tenantId: string; jobId: string }): Promise<DeliveryAttempt[]> {
    const rows = await this.db.query<AttemptRow>(
      `SELECT a.* FROM {{s}}.webhook_attempts a JOIN {{s}}.webhook_events e ON e.id = a.event_id
       WHERE a.job_id = $1 AND e.tenant_id = $2 ORDER BY a.at, a.event_id, a.attempt`,
      [jobId, tenantId],
    );
    return rows.map(toAttempt);
  }

  async nextDeliveryAt(): Promise<number | null> {
    const [row] = await this.db.query<{ at: number | null }>(
      `SELECT min(next_attempt_at) AS at FROM {{s}}.webhook_events WHERE status = 'pending'`,
    );
    return row?.at ?? null;
  }

  async webhookSecrets({ tenantId, now }: { tenantId: string; now: number }): Promise<string[]> {
    // As in ensureTenant: a concurrent first use's row is invisible to this statement's
    // snapshot, so an empty answer means "ask again", and the next statement sees it.
    for (let attempt = 1; ; attempt++) {
      const [row] = await this.db.query<SecretRow>(
        `WITH ins AS (
           INSERT INTO {{s}}.webhook_secrets (tenant_id, secret, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id) DO NOTHING RETURNING secret, previous_secret, previous_until)
         SELECT * FROM ins UNION ALL
         SELECT secret, previous_secret, previous_until FROM {{s}}.webhook_secrets WHERE tenant_id = $1`,
        [tenantId, generateWebhookSecret(), now],
      );
      if (row) return secretsOf(row, now);
      if (attempt === 3)
        throw new Error(`the webhook secret of tenant ${tenantId} could be neither created nor read`);
    }
  }

  async rotateWebhookSecret(params: Parameters<Store["rotateWebhookSecret"]>[0]): Promise<string[]> {
    const tenantId = await this.tenants.ensureTenant({ name: params.tenantName, now: params.now });
    const [row] = await this.db.query<SecretRow>(
      `INSERT INTO {{s}}.webhook_secrets (tenant_id, secret, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id) DO UPDATE SET previous_secret = webhook_secrets.secret, previous_until = $4,
         secret = $2, updated_at = $3
       RETURNING secret, previous_secret, previous_until`,
      [tenantId, params.secret, params.now, params.previousUntil],
    );
    return secretsOf(row!, params.now);
  }
}
