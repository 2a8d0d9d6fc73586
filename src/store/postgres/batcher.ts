/**
 * Coalesces calls made during one turn of the event loop into one `flush` of all of them, so a
 * network database gets one round trip (one `INSERT … SELECT FROM unnest(…)` or
 * `UPDATE … FROM unnest(…)`) for many submits, progress reports or rate-counter hits.
 * `flush` returns one result per item, in order; if it throws, every caller is rejected.
 */
export class Batcher<In, Out> {
  private items: In[] = [];
  private waiters: { resolve: (value: Out) => void; reject: (error: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly flush: (items: In[]) => Promise<Out[]>,
    private readonly maxBatch = 1000,
  ) {}

  add(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.run);
      }
    });
  }

  private readonly run = (): void => {
    const items = this.items.splice(0, this.maxBatch);
    const waiters = this.waiters.splice(0, this.maxBatch);
    this.scheduled = this.items.length > 0;
    if (this.scheduled) setImmediate(this.run);
    this.flush(items).then(
      (results) => waiters.forEach((w, i) => w.resolve(results[i]!)),
      (error: unknown) => waiters.forEach((w) => w.reject(error)),
    );
  };
}
