import type { JobRegistry } from "../jobs/registry.js";
import type { ClaimedJob } from "../store/store.js";
import type { Attempt } from "./attempt.js";
import type { WorkerOptions } from "./runtime.js";

/**
 * The worker's capacity: the attempts running here, the jobs claimed ahead and waiting for a
 * slot, and the room left under `concurrency`, each type's own limit and the shared one.
 */
export class Slots {
  /** The attempt running here per job id. */
  readonly running = new Map<string, Attempt>();
  /** Claimed ahead (see `prefetch`), in claim order, waiting for a slot. */
  private prefetched: ClaimedJob[] = [];
  private readonly runningByType = new Map<string, number>();
  /** Running jobs of the sharedLimit's types. */
  private sharedRunning = 0;
  /** Slots promised to jobs being submitted through `submit` (see there). */
  reserved = 0;

  constructor(
    private readonly registry: JobRegistry,
    private readonly options: Pick<WorkerOptions, "concurrency" | "prefetch" | "sharedLimit">,
  ) {}

  get waiting(): readonly ClaimedJob[] {
    return this.prefetched;
  }

  addWaiting(jobs: readonly ClaimedJob[]): void {
    this.prefetched.push(...jobs);
  }

  /** Keep only the waiting jobs `keep` accepts (a replaced buffer: a loop over it keeps its own). */
  keepWaiting(keep: (job: ClaimedJob) => boolean): void {
    this.prefetched = this.prefetched.filter(keep);
  }

  /** Empty the buffer; the jobs that were in it. */
  takeWaiting(): ClaimedJob[] {
    const jobs = this.prefetched;
    this.prefetched = [];
    return jobs;
  }

  /** The waiting job at `index`, taken out of the buffer to start. */
  takeWaitingAt(index: number): ClaimedJob {
    return this.prefetched.splice(index, 1)[0]!;
  }

  /** The attempt takes a slot (and a place under its type's limits). */
  occupy(attempt: Attempt): void {
    const { job } = attempt;
    this.running.set(job.id, attempt);
    this.runningByType.set(job.type, (this.runningByType.get(job.type) ?? 0) + 1);
    if (this.options.sharedLimit?.types.has(job.type)) this.sharedRunning++;
  }

  /** The attempt ended: its slot is free. */
  vacate(attempt: Attempt): void {
    const { job } = attempt;
    // A newer attempt of the same job may have replaced this one (lease lost, claimed again).
    if (this.running.get(job.id) === attempt) this.running.delete(job.id);
    this.runningByType.set(job.type, (this.runningByType.get(job.type) ?? 1) - 1);
    if (this.options.sharedLimit?.types.has(job.type)) this.sharedRunning--;
  }

  /** Jobs of `type` this process may still start: its own limit and the shared one. */
  typeFree(type: string): number {
    const limit = this.registry.get(type)?.definition.concurrency;
    const own = limit === undefined ? Infinity : limit - (this.runningByType.get(type) ?? 0);
    const shared = this.options.sharedLimit;
    return shared?.types.has(type) ? Math.min(own, shared.limit - this.sharedRunning) : own;
  }

  free(): number {
    return this.options.concurrency - this.running.size - this.reserved;
  }

  /**
   * The claims to make, each computed from the slots free at that moment (so a type with its
   * own limit never reserves slots it has no work for). A type whose limit is tighter than the
   * free slots claims alone, up to its limit; then every type that cannot overshoot its limit
   * shares one claim, highest priority first.
   */
  *claimGroups(): Generator<{ types: string[]; limit: number }> {
    const definitions = this.registry.definitions();
    const typeFree = (d: (typeof definitions)[number]) => this.typeFree(d.type);
    const shared = this.options.sharedLimit;
    if (shared) {
      // The shared types claim together, up to the cap less those already waiting here.
      const waiting = this.prefetched.filter((j) => shared.types.has(j.type)).length;
      const own = shared.limit - this.sharedRunning - waiting;
      const free = this.free() - this.prefetched.length;
      const types = definitions.filter((d) => shared.types.has(d.type) && typeFree(d) > 0).map((d) => d.type);
      if (own > 0 && free > 0 && types.length > 0) yield { types, limit: Math.min(own, free) };
    }
    for (const definition of definitions) {
      if (shared?.types.has(definition.type)) continue;
      const free = this.free() - this.prefetched.length;
      if (free <= 0) break;
      const own = typeFree(definition);
      if (own > 0 && own < free) yield { types: [definition.type], limit: own };
    }
    const free = Math.max(0, this.free());
    // Claim ahead up to `prefetch` jobs beyond the free slots (fewer while some still wait).
    const limit = free + (this.options.prefetch ?? 0) - this.prefetched.length;
    if (limit <= 0) return;
    const types = definitions
      .filter((d) => !shared?.types.has(d.type) && typeFree(d) >= Math.max(1, free))
      .map((d) => d.type);
    if (types.length > 0) yield { types, limit };
  }
}
