/** Callbacks on SQLite: the outbox's deliveries, their attempts, webhook secrets. */
import { randomUUID } from "node:crypto";
import { generateWebhookSecret } from "../../callbacks/signature.js";
import { leasedDeliveries, secretsOf, toAttempt } from "../shared/outbox.js";
import type { AttemptRow, OutboxRow, SecretRow } from "../shared/outbox.js";
import type { ClaimedDelivery, DeliveryAttempt, Store, StoreParams } from "../store.js";
import type { SqliteDb } from "./db.js";
import type { SqliteTenants } from "./tenants.js";

export class SqliteCallbacks {
  constructor(
    private readonly db: SqliteDb,
    private readonly tenants: SqliteTenants,
  ) {}

  async claimDeliveries(params: StoreParams<"claimDeliveries">): Promise<ClaimedDelivery[]> {
    const { limit, leaseMs, now, skipTenants = [] } = params;
    const token = randomUUID();
    const skip = JSON.stringify(skipTenants);
    const rows = await this.db.writes.run(
      () => this.db.sql.claimDeliveries.all(token, now + leaseMs, now, now, skip, limit) as OutboxRow[],
    );
    return leasedDeliveries(rows, token);
  }

  async recordDelivery(params: StoreParams<"recordDelivery">): Promise<boolean> {
    const { eventId, leaseToken, body, attempt, outcome } = params;
    const applied = await this.db.writes.run(() => {
      const status = outcome === "retry" ? "pending" : outcome;
      // RETURNING: the update names the job too, no second read.
      const row = this.db.sql.recordDelivery.get(
        body,
        attempt.attempt,
        status,
        attempt.nextAttemptAt,
        eventId,
        leaseToken,
      ) as { job_id: string } | undefined;
      if (!row) return false;
      this.db.sql.insertAttempt.run(
        eventId,
        attempt.attempt,
        row.job_id,
        attempt.event,
        attempt.at,
        attempt.statusCode,
        attempt.latencyMs,
        attempt.error,
        attempt.nextAttemptAt,
      );
      return true;
    });
    if (applied && attempt.nextAttemptAt !== null)
      this.db.events.emit({ kind: "outbox", at: attempt.nextAttemptAt });
    return applied;
  }

  async listDeliveries({ tenantId, jobId }: { tenantId: string; jobId: string }): Promise<DeliveryAttempt[]> {
    return (this.db.sql.listDeliveries.all(jobId, tenantId) as AttemptRow[]).map(toAttempt);
  }

  async nextDeliveryAt(): Promise<number | null> {
    return (this.db.sql.nextDeliveryAt.get() as { at: number | null }).at;
  }

  async webhookSecrets({ tenantId, now }: { tenantId: string; now: number }): Promise<string[]> {
    let row = this.db.sql.getSecrets.get(tenantId) as SecretRow | undefined;
    if (!row) {
      await this.db.writes.run(() => this.db.sql.insertSecret.run(tenantId, generateWebhookSecret(), now));
      row = this.db.sql.getSecrets.get(tenantId) as SecretRow;
    }
    return secretsOf(row, now);
  }

  async rotateWebhookSecret(params: Parameters<Store["rotateWebhookSecret"]>[0]): Promise<string[]> {
    const tenantId = await this.tenants.ensureTenant({ name: params.tenantName, now: params.now });
    await this.db.writes.run(() =>
      this.db.sql.rotateSecret.run({
        tenant: tenantId,
        secret: params.secret,
        now: params.now,
        until: params.previousUntil,
      }),
    );
    return secretsOf(this.db.sql.getSecrets.get(tenantId) as SecretRow, params.now);
  }
}
