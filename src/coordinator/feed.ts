// A change counter that agents long-poll (GET /api/v1/changes?after=N&wait=S), so they learn of new
// requests and signing packages within milliseconds instead of polling lists, and keyed wake-ups
// for one request's waiters. Each replica has its own; the store's notifications (LISTEN/NOTIFY on
// PostgreSQL) drive it, so a change committed on any replica wakes waiters on all of them.
import { EventEmitter } from "node:events";

export class ChangeFeed {
  #seq = 0;
  #keyedSeq = 0;
  #wakeAllSeq = 0;
  readonly #keyed = new Map<string, number>();
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

  /**
   * Announces that one thing (say, a request) reached an end state. Waiters for that key alone
   * wake: a requester long-polling its certificate is not woken by every other change.
   */
  notify(key: string): void {
    setImmediate(() => {
      this.#keyed.delete(key); // re-insert: the Map's order is the eviction order
      this.#keyed.set(key, (this.#keyedSeq += 1));
      if (this.#keyed.size > 10_000) this.#keyed.delete(this.#keyed.keys().next().value!);
      this.#events.emit(`key:${key}`);
    });
  }

  /** Wakes every waiter, keyed or not (notifications may have been lost): each looks again. */
  wakeAll(): void {
    setImmediate(() => {
      this.#seq += 1;
      this.#events.emit("change", this.#seq);
      this.#wakeAllSeq += 1;
      this.#events.emit("wake-all");
    });
  }

  /** A marker to pass to waitFor: read it before looking at the thing's state. */
  mark(key: string): number {
    // Also moves when everyone is woken, so a wake-all between mark and waitFor is not missed.
    return (this.#keyed.get(key) ?? 0) + this.#wakeAllSeq * 2 ** 32;
  }

  /** Resolves once `key` was notified after `mark`, or after `waitMs`. */
  waitFor(key: string, mark: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    if (this.mark(key) > mark || waitMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#events.off(`key:${key}`, done);
        this.#events.off("wake-all", done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.#events.on(`key:${key}`, done);
      this.#events.on("wake-all", done);
      signal?.addEventListener("abort", done);
    });
  }
}
