import type { Logger } from "pino";

/**
 * A background task run every `intervalMs`, never overlapping itself, its timer unref'd so it
 * never keeps the process alive, its errors logged and survived.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly task: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {
    if (!(intervalMs > 0)) throw new RangeError(`${name}: interval must be > 0 ms`);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runNow(), this.intervalMs);
    this.timer.unref();
  }

  /** Run once now (or join the run in progress). */
  runNow(): Promise<void> {
    this.running ??= this.task()
      .then(() => undefined)
      .catch((error: unknown) => this.logger.warn({ err: error, task: this.name }, "background task failed"))
      .finally(() => (this.running = null));
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
