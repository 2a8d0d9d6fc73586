/**
 * A store put together from its parts, one per concern: each driver implements the parts in
 * files of its own (beside their SQL) and this class answers the Store interface from them, so
 * the drivers differ only where their SQL does.
 */
import type { CompleteParams, Store, StoreEvent, StoreParams } from "../store.js";

/** Submits, reads, watch, cancel, delete. */
export type JobsPart = Pick<Store, "submit" | "watch" | "get" | "list" | "cancel" | "delete" | "terminalIds">;
/** Results: where their bytes live and how they are read. */
export type ResultsPart = Pick<Store, "getResult">;
/** Claims, progress, completions, failures. */
export type ClaimsPart = Pick<
  Store,
  "claim" | "nextRunAt" | "progress" | "complete" | "completeMany" | "fail"
>;
/** Heartbeats, releases, the sweeps of expired leases and deadlines. */
export type LeasesPart = Pick<Store, "heartbeat" | "release" | "sweepExpiredLeases" | "sweepDeadlines">;
/** Retention. */
export type RetentionPart = Pick<Store, "purgeExpired">;
/** The outbox's deliveries and webhook secrets. */
export type CallbacksPart = Pick<
  Store,
  | "claimDeliveries"
  | "recordDelivery"
  | "listDeliveries"
  | "nextDeliveryAt"
  | "webhookSecrets"
  | "rotateWebhookSecret"
>;
/** Tenants, API keys, limits. */
export type TenantsPart = Pick<
  Store,
  | "ensureTenant"
  | "createApiKey"
  | "lookupApiKey"
  | "rotateApiKey"
  | "listApiKeys"
  | "revokeApiKey"
  | "listTenants"
  | "tenantLimits"
  | "setTenantLimits"
  | "countQueued"
>;

/** Saga journals. */
export type SagasPart = Pick<Store, "listSteps" | "recordStep" | "deliverEvent" | "sagaEvent" | "wake">;
export type EventsPart = Pick<
  Store,
  "appendEvents" | "getEvent" | "listEvents" | "undispatchedEvents" | "markDispatched"
>;
export type RelayPart = Pick<
  Store,
  "holdRelayLease" | "releaseRelayLease" | "unpublishedEvents" | "markPublished" | "oldestUnpublished"
>;

/** Subscriptions and their deliveries' enqueueing. */
export type SubscriptionsPart = Pick<
  Store,
  | "createSubscription"
  | "getSubscription"
  | "listSubscriptions"
  | "deleteSubscription"
  | "enqueueEventDeliveries"
>;

export interface StoreParts {
  jobs: JobsPart;
  results: ResultsPart;
  claims: ClaimsPart;
  leases: LeasesPart;
  retention: RetentionPart;
  callbacks: CallbacksPart;
  tenants: TenantsPart;
  sagas: SagasPart;
  events: EventsPart;
  relay: RelayPart;
  subscriptions: SubscriptionsPart;
}

export abstract class ComposedStore implements Store {
  protected constructor(private readonly parts: StoreParts) {}

  abstract migrate(): Promise<void>;
  abstract ping(): Promise<void>;
  abstract close(): Promise<void>;
  abstract subscribe(listener: (event: StoreEvent) => void): () => void;

  // --- jobs: submits, reads, watch, cancel, delete

  submit(params: StoreParams<"submit">) {
    return this.parts.jobs.submit(params);
  }

  watch(params: StoreParams<"watch">) {
    return this.parts.jobs.watch(params);
  }

  get(params: StoreParams<"get">) {
    return this.parts.jobs.get(params);
  }

  list(params: StoreParams<"list">) {
    return this.parts.jobs.list(params);
  }

  cancel(params: StoreParams<"cancel">) {
    return this.parts.jobs.cancel(params);
  }

  delete(params: StoreParams<"delete">) {
    return this.parts.jobs.delete(params);
  }

  terminalIds(params: StoreParams<"terminalIds">) {
    return this.parts.jobs.terminalIds(params);
  }

  // --- results: results: where their bytes live and how they are read

  getResult(params: StoreParams<"getResult">) {
    return this.parts.results.getResult(params);
  }

  // --- claims: claims, progress, completions, failures

  claim(params: StoreParams<"claim">) {
    return this.parts.claims.claim(params);
  }

  nextRunAt(params: StoreParams<"nextRunAt">) {
    return this.parts.claims.nextRunAt(params);
  }

  progress(params: StoreParams<"progress">) {
    return this.parts.claims.progress(params);
  }

  complete(params: StoreParams<"complete">) {
    return this.parts.claims.complete(params);
  }

  completeMany(items: readonly CompleteParams[]) {
    return this.parts.claims.completeMany(items);
  }

  fail(params: StoreParams<"fail">) {
    return this.parts.claims.fail(params);
  }

  // --- leases: heartbeats, releases, the sweeps of expired leases and deadlines

  heartbeat(params: StoreParams<"heartbeat">) {
    return this.parts.leases.heartbeat(params);
  }

  release(params: StoreParams<"release">) {
    return this.parts.leases.release(params);
  }

  sweepExpiredLeases(params: StoreParams<"sweepExpiredLeases">) {
    return this.parts.leases.sweepExpiredLeases(params);
  }

  sweepDeadlines(params: StoreParams<"sweepDeadlines">) {
    return this.parts.leases.sweepDeadlines(params);
  }

  // --- retention: retention

  purgeExpired(params: StoreParams<"purgeExpired">) {
    return this.parts.retention.purgeExpired(params);
  }

  // --- callbacks: the outbox's deliveries and webhook secrets

  claimDeliveries(params: StoreParams<"claimDeliveries">) {
    return this.parts.callbacks.claimDeliveries(params);
  }

  recordDelivery(params: StoreParams<"recordDelivery">) {
    return this.parts.callbacks.recordDelivery(params);
  }

  listDeliveries(params: StoreParams<"listDeliveries">) {
    return this.parts.callbacks.listDeliveries(params);
  }

  nextDeliveryAt() {
    return this.parts.callbacks.nextDeliveryAt();
  }

  webhookSecrets(params: StoreParams<"webhookSecrets">) {
    return this.parts.callbacks.webhookSecrets(params);
  }

  rotateWebhookSecret(params: StoreParams<"rotateWebhookSecret">) {
    return this.parts.callbacks.rotateWebhookSecret(params);
  }

  // --- tenants: tenants, API keys, limits

  ensureTenant(params: StoreParams<"ensureTenant">) {
    return this.parts.tenants.ensureTenant(params);
  }

  createApiKey(params: StoreParams<"createApiKey">) {
    return this.parts.tenants.createApiKey(params);
  }

  lookupApiKey(params: StoreParams<"lookupApiKey">) {
    return this.parts.tenants.lookupApiKey(params);
  }

  rotateApiKey(params: StoreParams<"rotateApiKey">) {
    return this.parts.tenants.rotateApiKey(params);
  }

  listApiKeys() {
    return this.parts.tenants.listApiKeys();
  }

  revokeApiKey(params: StoreParams<"revokeApiKey">) {
    return this.parts.tenants.revokeApiKey(params);
  }

  listTenants() {
    return this.parts.tenants.listTenants();
  }

  tenantLimits(params: StoreParams<"tenantLimits">) {
    return this.parts.tenants.tenantLimits(params);
  }

  setTenantLimits(params: StoreParams<"setTenantLimits">) {
    return this.parts.tenants.setTenantLimits(params);
  }

  countQueued(params: StoreParams<"countQueued">) {
    return this.parts.tenants.countQueued(params);
  }

  // --- sagas: their journals

  listSteps(params: StoreParams<"listSteps">) {
    return this.parts.sagas.listSteps(params);
  }

  recordStep(params: StoreParams<"recordStep">) {
    return this.parts.sagas.recordStep(params);
  }

  deliverEvent(params: StoreParams<"deliverEvent">) {
    return this.parts.sagas.deliverEvent(params);
  }

  sagaEvent(params: StoreParams<"sagaEvent">) {
    return this.parts.sagas.sagaEvent(params);
  }

  wake(params: StoreParams<"wake">) {
    return this.parts.sagas.wake(params);
  }

  // --- events: kept once per id, dispatched to triggers

  async appendEvent({ event, ...params }: StoreParams<"appendEvent">) {
    return (await this.parts.events.appendEvents({ events: [event], ...params }))[0]!;
  }

  appendEvents(params: StoreParams<"appendEvents">) {
    return this.parts.events.appendEvents(params);
  }

  getEvent(params: StoreParams<"getEvent">) {
    return this.parts.events.getEvent(params);
  }

  listEvents(params: StoreParams<"listEvents">) {
    return this.parts.events.listEvents(params);
  }

  undispatchedEvents(params: StoreParams<"undispatchedEvents">) {
    return this.parts.events.undispatchedEvents(params);
  }

  markDispatched(params: StoreParams<"markDispatched">) {
    return this.parts.events.markDispatched(params);
  }

  // --- the outbox relay: one node at a time sends events to the broker

  holdRelayLease(params: StoreParams<"holdRelayLease">) {
    return this.parts.relay.holdRelayLease(params);
  }

  releaseRelayLease(params: StoreParams<"releaseRelayLease">) {
    return this.parts.relay.releaseRelayLease(params);
  }

  unpublishedEvents(params: StoreParams<"unpublishedEvents">) {
    return this.parts.relay.unpublishedEvents(params);
  }

  markPublished(params: StoreParams<"markPublished">) {
    return this.parts.relay.markPublished(params);
  }

  oldestUnpublished() {
    return this.parts.relay.oldestUnpublished();
  }

  // --- subscriptions: webhooks for events

  createSubscription(params: StoreParams<"createSubscription">) {
    return this.parts.subscriptions.createSubscription(params);
  }

  getSubscription(params: StoreParams<"getSubscription">) {
    return this.parts.subscriptions.getSubscription(params);
  }

  listSubscriptions(params: StoreParams<"listSubscriptions">) {
    return this.parts.subscriptions.listSubscriptions(params);
  }

  deleteSubscription(params: StoreParams<"deleteSubscription">) {
    return this.parts.subscriptions.deleteSubscription(params);
  }

  enqueueEventDeliveries(params: StoreParams<"enqueueEventDeliveries">) {
    return this.parts.subscriptions.enqueueEventDeliveries(params);
  }
}
