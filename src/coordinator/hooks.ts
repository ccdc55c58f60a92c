// What domain services report as they work: a change (agents waiting on the feed wake up), a
// custodian heard from (health), and metrics. One object, handed to every service.
import { ChangeFeed } from "./feed.ts";
import { CustodianContacts } from "./contacts.ts";
import { CoordinatorMetrics } from "./metrics.ts";
import type { Store } from "./store/types.ts";

export class CoordinatorHooks {
  readonly feed = new ChangeFeed();
  readonly contacts: CustodianContacts;
  readonly metrics: CoordinatorMetrics;
  constructor(store: Store, roster: string[]) {
    this.contacts = new CustodianContacts(roster);
    this.metrics = new CoordinatorMetrics(store);
  }
  changed(): void {
    this.feed.bump();
  }
  /** A request reached issued, rejected or failed (wakes the requester waiting for it). */
  finished(requestId: string): void {
    this.feed.bump();
    this.feed.notify(`request:${requestId}`);
  }
  heard(custodian: string, via: string): void {
    this.contacts.seen(custodian, via);
  }
}
