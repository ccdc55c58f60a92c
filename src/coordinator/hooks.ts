// What domain services report as they work: a change (agents and requesters waiting on the feed
// wake up, on every replica), a custodian heard from (health), and metrics. One object, handed to
// every service.
import { ChangeFeed } from "./feed.ts";
import { CustodianContacts } from "./contacts.ts";
import { CoordinatorMetrics } from "./metrics.ts";
import type { Store } from "./store/types.ts";
import { WAKE_ALL } from "./store/sql-store.ts";

/** Topic of "something changed": every feed waiter looks again. */
const ANY = "*";

export class CoordinatorHooks {
  readonly feed = new ChangeFeed();
  readonly contacts: CustodianContacts;
  readonly metrics: CoordinatorMetrics;
  readonly #unsubscribe: () => void;
  constructor(
    private readonly store: Store,
    roster: string[],
  ) {
    this.contacts = new CustodianContacts(store, roster);
    this.metrics = new CoordinatorMetrics(store);
    // Changes published by any replica (this one included) drive this replica's waiters.
    this.#unsubscribe = store.subscribe((topic) => {
      if (topic === ANY) this.feed.bump();
      else if (topic === WAKE_ALL) this.feed.wakeAll();
      else this.feed.notify(topic);
    });
  }
  /** Something agents may want to look at changed (sent with the transaction's commit). */
  changed(): void {
    this.#publish(ANY);
  }
  /** A request reached issued, rejected or failed (wakes the requester waiting for it). */
  finished(requestId: string): void {
    this.#publish(ANY);
    this.#publish(`request:${requestId}`);
  }
  /** A request moved without ending (an approval came in): its long-pollers look again. */
  moved(requestId: string): void {
    this.#publish(`request:${requestId}`);
  }
  heard(custodian: string, via: string): void {
    this.contacts.seen(custodian, via);
  }
  close(): void {
    this.#unsubscribe();
  }
  #publish(topic: string): void {
    // Inside a transaction the topic is queued (no I/O); outside it is sent now. A lost
    // notification only delays waiters until their long-poll ends: never fail the caller for it.
    void this.store.publish(topic).catch(() => undefined);
  }
}
