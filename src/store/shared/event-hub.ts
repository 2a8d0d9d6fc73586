import type { StoreEvent } from "../store.js";

/** Fan-out of committed store events to this process's listeners (workers, waits). */
export class EventHub {
  private readonly listeners = new Set<(event: StoreEvent) => void>();

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not break the write path that already committed.
      }
    }
  }
}
