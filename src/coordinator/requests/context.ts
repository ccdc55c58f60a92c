// What the request use cases share: the store, the configuration, the signing service, the public CA
// material, the hooks, the custodian roster and a cache of parsed CSRs. Each use case is a function
// of this context (intake.ts, decisions.ts, publishing.ts, review.ts, views.ts); index.ts is the
// RequestService facade the HTTP routes and the exchange call.
import type { LoadedConfig } from "../../config/load.ts";
import { parseCsr, type ParsedCsr } from "../../x509/csr.ts";
import type { CaMaterial } from "../ca-material.ts";
import { CoordinatorError } from "../errors.ts";
import type { CoordinatorHooks } from "../hooks.ts";
import type { SigningService } from "../signing.ts";
import type { RequestRecord, Store } from "../store/types.ts";

export interface RequestContext {
  readonly store: Store;
  readonly config: LoadedConfig;
  readonly signing: SigningService;
  readonly ca: CaMaterial;
  readonly hooks: CoordinatorHooks;
  /** Custodian name → pinned identity key (base64url), for opening approval envelopes. */
  readonly roster: ReadonlyMap<string, string>;
  readonly csrs: CsrCache;
  /**
   * Names of the roster in force (docs/key-lifecycle.md), null while the CA has no key. After a
   * reshare or repair it can differ from ca-config's: only its members' approvals count towards t.
   */
  readonly rosterInForce?: () => Promise<ReadonlySet<string> | null>;
}

/** A request by id, or NOT_FOUND (also for an id that cannot be one). */
export async function requireRequest(ctx: RequestContext, id: string): Promise<RequestRecord> {
  const r = /^[0-9a-f-]{36}$/.test(id) ? await ctx.store.getRequest(id) : undefined;
  if (!r) throw new CoordinatorError("NOT_FOUND", `no request ${id}`);
  return r;
}

/**
 * A request's CSR never changes and was verified at submission; views are read on every agent
 * poll, so keep the parsed form instead of re-verifying its signature each time.
 */
export class CsrCache {
  readonly #csrs = new Map<string, ParsedCsr>();
  constructor(private readonly max = 1_000) {}

  of(r: RequestRecord): ParsedCsr {
    return this.#csrs.get(r.id) ?? this.remember(r.id, parseCsr(r.csr));
  }
  remember(id: string, csr: ParsedCsr): ParsedCsr {
    if (this.#csrs.size >= this.max) this.#csrs.delete(this.#csrs.keys().next().value!);
    this.#csrs.set(id, csr);
    return csr;
  }
}
