// When each custodian was last heard from, by a message it signed (heartbeats, approvals, signing
// messages), on any replica. Reported by /api/v1/health. Kept in the database, written at most once
// a second per custodian by each replica.
import type { Store } from "./store/types.ts";
import { outsideTransactions } from "./async-scope.ts";
import { clock } from "./clock.ts";

export interface ContactReport {
  name: string;
  lastContact: string | null;
  secondsAgo: number | null;
  via: string | null;
}

export class CustodianContacts {
  readonly #written = new Map<string, number>();
  constructor(
    private readonly store: Store,
    private readonly roster: string[],
  ) {}

  seen(name: string, via: string, now = clock.now()): void {
    if (!this.roster.includes(name)) return;
    if (now - (this.#written.get(name) ?? 0) < 1_000) return;
    this.#written.set(name, now);
    // Not part of the caller's transaction: a contact is true even if what it sent was refused.
    outsideTransactions(
      () =>
        void this.store.recordContact(name, new Date(now).toISOString(), via).catch(() => {
          this.#written.delete(name);
        }),
    );
  }

  async report(now = clock.now()): Promise<ContactReport[]> {
    const rows = new Map((await this.store.listContacts()).map((c) => [c.custodian, c]));
    return this.roster.map((name) => {
      const c = rows.get(name);
      return {
        name,
        lastContact: c?.at ?? null,
        secondsAgo: c ? Math.round((now - Date.parse(c.at)) / 1000) : null,
        via: c?.via ?? null,
      };
    });
  }
}
