// The audit page's verdict (docs/console.md, "The audit page"): verifyAuditChain is synchronous and
// costs about a third of a millisecond an entry, so running it on every load of /ui/audit would
// stall the coordinator's event loop for seconds on a long chain. The verdict is computed over the
// first `limit` entries only (the whole chain is `tca audit verify`'s job, docs/audit.md), kept
// keyed by the chain head it was computed at, computed again only when the head has moved and the
// last computation is at least `minIntervalMs` old, and never twice at once: loads that arrive
// while one runs wait for it.
import type { AuditVerdict } from "../protocol/audit.ts";

export interface AuditHead {
  seq: number;
  hash: string;
}

export interface AuditCheck {
  /** The head when this check started (the entries checked are 1…min(limit, head.seq)). */
  head: AuditHead;
  verdict: AuditVerdict;
  /** Entries read and handed to the verifier. */
  read: number;
  /** When the check finished (ms since the epoch, the coordinator's clock). */
  at: number;
}

export interface AuditCheckOptions {
  /** Reads and verifies the first entries up to `head` (at most the page's limit). */
  compute: (head: AuditHead) => Promise<Omit<AuditCheck, "at" | "head">>;
  now: () => number;
  minIntervalMs: number;
}

export class AuditCheckCache {
  #last: AuditCheck | undefined;
  #running: Promise<AuditCheck> | undefined;
  constructor(private readonly o: AuditCheckOptions) {}

  /** The verdict for `head`: the last one while the head is unchanged or it is recent, else a new one. */
  get(head: AuditHead): Promise<AuditCheck> {
    if (this.#running) return this.#running;
    const last = this.#last;
    if (
      last &&
      ((last.head.seq === head.seq && last.head.hash === head.hash) ||
        this.o.now() - last.at < this.o.minIntervalMs)
    )
      return Promise.resolve(last);
    const running = this.o
      .compute(head)
      .then((r) => (this.#last = { ...r, head, at: this.o.now() }))
      .finally(() => {
        this.#running = undefined;
      });
    this.#running = running;
    return running;
  }
}
