// The request lifecycle: submit (validate, fix serial and validity, build the TBS), collect signed
// approvals, start a signing job among approvers once t have approved, and publish the certificate
// only after it has been assembled from the exact signed bytes and verified (docs/architecture.md §3.8). Each
// step is a use case of its own (intake, decisions, publishing, review, views); RequestService is
// the one object the HTTP routes, the exchange and the signing service talk to.
import type { LoadedConfig } from "../../config/load.ts";
import type { Requester } from "../../config/schema.ts";
import type { RequestView } from "../../protocol/approval.ts";
import { rosterKeys, type EnvelopeHeader } from "../../protocol/envelope.ts";
import type { CaMaterial } from "../ca-material.ts";
import type { CoordinatorHooks } from "../hooks.ts";
import type { SigningService } from "../signing.ts";
import type { RequestStatus, SigningJobRecord, Store } from "../store/types.ts";
import { CsrCache, type RequestContext } from "./context.ts";
import * as decisions from "./decisions.ts";
import * as intake from "./intake.ts";
import { onLeafSigned } from "./publishing.ts";
import { reviewItems, type ReviewPage } from "./review.ts";
import * as views from "./views.ts";
import { clock } from "../clock.ts";

export { MAX_CSR_BYTES, type Submission } from "./intake.ts";
export { REVIEW_FALLBACK_MS, type ReviewPage } from "./review.ts";
export { sha256Hex } from "../../common/hash.ts";

export class RequestService {
  readonly #ctx: RequestContext;

  constructor(
    store: Store,
    config: LoadedConfig,
    signing: SigningService,
    ca: CaMaterial,
    hooks: CoordinatorHooks,
    rosterInForce?: () => Promise<ReadonlySet<string> | null>,
  ) {
    this.#ctx = {
      store,
      config,
      signing,
      ca,
      hooks,
      roster: rosterKeys(config.config.custodians),
      csrs: new CsrCache(),
      ...(rosterInForce ? { rosterInForce } : {}),
    };
  }

  requesterFor(name: string): Requester {
    return intake.requesterFor(this.#ctx, name);
  }

  async submit(s: intake.Submission): Promise<RequestView> {
    return this.view(await intake.submit(this.#ctx, s));
  }

  /** The newest requests; with `owner`, only that requester's own. */
  list(status?: RequestStatus, owner?: string): Promise<RequestView[]> {
    return views.list(this.#ctx, status, owner);
  }

  /**
   * A request's view; with `waitMs` and `since`, a long-poll for its state to move on from `since`.
   * With `owner`, another requester's request is not found.
   */
  view(
    id: string,
    o: { waitMs?: number; since?: string; signal?: AbortSignal; owner?: string } = {},
  ): Promise<RequestView> {
    return views.view(this.#ctx, id, o);
  }

  /** A custodian's signed approval or rejection of one request's exact TBS (one envelope on its own). */
  async decide(id: string, envelope: unknown): Promise<RequestView> {
    await decisions.decide(this.#ctx, id, envelope);
    return this.view(id);
  }

  /** An approval already opened and checked by the caller, inside transaction() (the batch exchange). */
  decideOpened(h: EnvelopeHeader, envelopeJson: string): Promise<void> {
    return decisions.decideOpened(this.#ctx, h, envelopeJson);
  }

  reviewItems(
    custodian: string,
    cursorText: string | null,
    limit: number,
    now = clock.now(),
    viewer?: string,
  ): Promise<ReviewPage> {
    return reviewItems(this.#ctx, custodian, cursorText, limit, now, viewer);
  }

  /** Signing job ended: assemble, parse again, verify against the CA key, then release. */
  onLeafSigned(job: SigningJobRecord, signature: Uint8Array | null, failure?: string): Promise<void> {
    return onLeafSigned(this.#ctx, job, signature, failure);
  }

  /** The PEM chain, leaf first. With `waitMs`, waits that long for a pending request to finish. */
  certificateChain(id: string, waitMs = 0, signal?: AbortSignal, owner?: string): Promise<string> {
    return views.certificateChain(this.#ctx, id, waitMs, signal, owner);
  }
}
