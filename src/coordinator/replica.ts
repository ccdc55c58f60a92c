// This coordinator process as one replica among several on one database (docs/storage.md): its
// identity, the row it keeps fresh in `replicas` (for /health), and leases on periodic work.
import { randomUUID } from "node:crypto";
import type { Store } from "./store/types.ts";
import { clock, followDatabaseClock } from "./clock.ts";

/** How often a replica writes that it is alive; /health counts a replica live for 3 × this. */
export const REPLICA_REPORT_MS = 5_000;

export class Replica {
  readonly id = randomUUID();
  readonly startedAt = clock.iso();
  #url = "";
  #timer: NodeJS.Timeout | undefined;
  constructor(private readonly store: Store) {}

  get url(): string {
    return this.#url;
  }

  /** Starts reporting this replica (at `url`) every REPLICA_REPORT_MS. */
  async start(url: string): Promise<void> {
    this.#url = url;
    await this.report();
    this.#timer = setInterval(() => void this.report().catch(() => undefined), REPLICA_REPORT_MS);
    this.#timer.unref();
  }
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
  /** A replica shutting down cleanly leaves the list; a killed one shows as not live. */
  async retire(): Promise<void> {
    this.stop();
    await this.store.removeReplica(this.id);
  }
  private async report(): Promise<void> {
    // Keep this replica on the database's clock (src/coordinator/clock.ts).
    await followDatabaseClock(() => this.store.databaseTime()).catch(() => undefined);
    return this.store.reportReplica({
      id: this.id,
      url: this.#url,
      startedAt: this.startedAt,
      lastSeen: clock.iso(),
    });
  }

  /** A lease on one piece of periodic work, held by this replica while it keeps renewing it. */
  lease(name: string, ttlMs: number): Lease {
    return new Lease(this.store, name, this.id, ttlMs);
  }
}

/**
 * Periodic work (re-forming sessions, CRL reissue) needs doing once, not once per replica. The
 * holder renews its lease while it runs; if it dies, another replica takes the work over when the
 * lease expires. The work itself stays correct if two replicas ever overlap (clock skew): it runs in
 * write transactions, one at a time; the lease only saves the duplicate effort.
 */
export class Lease {
  #until = 0;
  constructor(
    private readonly store: Store,
    readonly name: string,
    readonly holder: string,
    private readonly ttlMs: number,
  ) {}

  /** Whether this replica holds the lease now (renewing it when a third of its time is left). */
  async held(now = clock.now()): Promise<boolean> {
    if (now < this.#until - this.ttlMs / 3) return true;
    const until = now + this.ttlMs;
    const ok = await this.store.claimLease(
      this.name,
      this.holder,
      new Date(now).toISOString(),
      new Date(until).toISOString(),
    );
    this.#until = ok ? until : 0;
    return ok;
  }
}
