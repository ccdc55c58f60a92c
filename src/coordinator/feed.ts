// A change counter that agents long-poll (GET /api/v1/changes?after=N&wait=S), so they learn of new
// requests and signing packages within milliseconds instead of polling lists. In-process for one
// coordinator; several coordinators would drive it from the database (LISTEN/NOTIFY).
import { EventEmitter } from "node:events";

export class ChangeFeed {
  #seq = 0;
  readonly #events = new EventEmitter();

  constructor() {
    this.#events.setMaxListeners(0);
  }

  get seq(): number {
    return this.#seq;
  }

  /**
   * Announces a change. Waiters wake on the next turn of the event loop, after the store's open
   * transaction (a chain of microtasks) has committed, so they never read a state about to change.
   */
  bump(): void {
    setImmediate(() => {
      this.#seq += 1;
      this.#events.emit("change", this.#seq);
    });
  }

  /** Resolves with the current sequence as soon as it passes `after`, or after `waitMs`. */
  wait(after: number, waitMs: number, signal?: AbortSignal): Promise<number> {
    if (this.#seq > after || waitMs <= 0) return Promise.resolve(this.#seq);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#events.off("change", done);
        signal?.removeEventListener("abort", done);
        resolve(this.#seq);
      };
      const timer = setTimeout(done, waitMs);
      this.#events.on("change", done);
      signal?.addEventListener("abort", done);
    });
  }
}
