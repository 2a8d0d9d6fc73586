import type { Store } from "../store/store.js";

/** One held request: woken by the job's end, and by its progress if it asked. */
interface Waiter {
  wake: () => void;
  progress?: () => void;
}

/**
 * Waiting without polling: `jobId → waiters`, fed by the store's terminal and progress events
 * (this process's commits, and other nodes' where the driver relays them). A waiter costs a
 * map entry and a timer, no query.
 */
export class WaitRegistry {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private count = 0;
  private readonly unsubscribe: () => void;

  private readonly fallback: NodeJS.Timeout;
  /** Held requests (not waiters: one request is one slot however often it re-waits), per tenant. */
  private readonly held = new Map<string, number>();
  private heldTotal = 0;

  constructor(
    private readonly store: Store,
    /** Slow fallback poll for notifications that never came (another node's, a lost LISTEN). */
    fallbackMs: number,
    private readonly onCountChanged: (count: number) => void = () => undefined,
    /** Caps on requests held at once; beyond them `admit` says no. */
    private readonly limits: { perTenant: number; total: number } = {
      perTenant: Infinity,
      total: Infinity,
    },
  ) {
    this.unsubscribe = store.subscribe((event) => {
      if (event.kind === "terminal") this.wakeAll(event.jobId);
      else if (event.kind === "progress") this.progressed(event.jobId);
      else if (event.kind === "resync") void this.recheck();
    });
    this.fallback = setInterval(() => void this.recheck(), fallbackMs);
    this.fallback.unref();
  }

  /** One query for every waited-on job, however many waiters: their count never multiplies queries. */
  private async recheck(): Promise<void> {
    if (this.waiters.size === 0) return;
    const done = await this.store.terminalIds({ ids: [...this.waiters.keys()] }).catch(() => []);
    for (const id of done) this.wakeAll(id);
  }

  get size(): number {
    return this.count;
  }

  /**
   * A slot for holding one request of `tenantId`, or null when the tenant (or the process)
   * already holds as many as allowed. Call the returned release exactly once when done.
   */
  admit(tenantId: string): (() => void) | null {
    const mine = this.held.get(tenantId) ?? 0;
    if (mine >= this.limits.perTenant || this.heldTotal >= this.limits.total) return null;
    this.held.set(tenantId, mine + 1);
    this.heldTotal++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.heldTotal--;
      const left = (this.held.get(tenantId) ?? 1) - 1;
      if (left <= 0) this.held.delete(tenantId);
      else this.held.set(tenantId, left);
    };
  }

  /**
   * Resolve when the job reaches a terminal state, `ms` pass, or `signal` aborts; with
   * `progressAfterMs`, also when its progress changes, though not before that many ms have
   * passed (a job reporting every few ms must not turn a held poll into a request storm).
   * Register first, then re-read the job (the caller's `check`) to close the race with a
   * completion that committed in between.
   */
  async wait(
    jobId: string,
    ms: number,
    check: () => Promise<boolean>,
    signal?: AbortSignal,
    { progressAfterMs }: { progressAfterMs?: number } = {},
  ): Promise<void> {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const started = Date.now();
    let early: NodeJS.Timeout | undefined;
    const waiter: Waiter = { wake };
    if (progressAfterMs !== undefined) {
      waiter.progress = () => {
        if (early) return; // already due
        early = setTimeout(wake, Math.max(0, started + progressAfterMs - Date.now()));
      };
    }
    let set = this.waiters.get(jobId);
    if (!set) this.waiters.set(jobId, (set = new Set()));
    set.add(waiter);
    this.onCountChanged(++this.count);
    const timer = setTimeout(wake, ms);
    const onAbort = () => wake();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted || (await check())) return;
      await woken;
    } finally {
      clearTimeout(timer);
      clearTimeout(early);
      signal?.removeEventListener("abort", onAbort);
      set.delete(waiter);
      if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
      this.onCountChanged(--this.count);
    }
  }

  private wakeAll(jobId: string): void {
    const set = this.waiters.get(jobId);
    if (set) for (const waiter of set) waiter.wake();
  }

  private progressed(jobId: string): void {
    const set = this.waiters.get(jobId);
    if (set) for (const waiter of set) waiter.progress?.();
  }

  close(): void {
    clearInterval(this.fallback);
    this.unsubscribe();
    for (const set of this.waiters.values()) for (const waiter of set) waiter.wake();
  }
}
