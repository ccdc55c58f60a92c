// Views: what a requester or custodian reads about requests: one request's view (with a long-poll
// on its state), the list, and the issued certificate's PEM chain (RFC 7468), leaf first.
import { requestState, type RequestView } from "../../protocol/approval.ts";
import { toPem } from "../../x509/der.ts";
import { CoordinatorError } from "../errors.ts";
import type { RequestRecord, RequestStatus } from "../store/types.ts";
import { requireRequest, type RequestContext } from "./context.ts";
import { clock } from "../clock.ts";
import { displaySerial } from "../../x509/serial.ts";
import { issuerChainPem } from "../intermediate.ts";

export interface WaitOptions {
  waitMs?: number;
  signal?: AbortSignal;
  /**
   * The requester reading (docs/security-model.md): someone else's request is "not found", exactly
   * as one that does not exist. Absent for admins and custodians, who read every request.
   */
  owner?: string;
}

/** The newest requests (with `owner`, only that requester's). */
export async function list(
  ctx: RequestContext,
  status?: RequestStatus,
  owner?: string,
): Promise<RequestView[]> {
  const rows = await ctx.store.listRequests({
    ...(status ? { status } : {}),
    ...(owner !== undefined ? { requester: owner } : {}),
    limit: 200,
  });
  return Promise.all(rows.map((r) => render(ctx, r)));
}

/** A request `owner` may see (any request without one); else the same 404 as a missing id. */
async function requireVisible(ctx: RequestContext, id: string, owner?: string): Promise<RequestRecord> {
  const r = await requireRequest(ctx, id);
  if (owner !== undefined && r.requester !== owner)
    throw new CoordinatorError("NOT_FOUND", `no request ${id}`);
  return r;
}

/**
 * A request's view. With `waitMs` and `since` (a state as `requestState` writes it), waits that
 * long for the state to differ from `since` — a long-poll for progress lines and the outcome.
 */
export async function view(
  ctx: RequestContext,
  id: string,
  o: WaitOptions & { since?: string } = {},
): Promise<RequestView> {
  const waiting = (v: RequestView) => o.since !== undefined && requestState(v) === o.since;
  return whileOpen(ctx, id, async () => render(ctx, await requireVisible(ctx, id, o.owner)), waiting, o);
}

/**
 * Reads a request, and while `still(value)` holds and the request is open, waits for this
 * request's own notifications (not every change: many requesters may be waiting) up to `waitMs`.
 */
export async function whileOpen<T extends { status: RequestStatus }>(
  ctx: RequestContext,
  id: string,
  read: () => Promise<T>,
  still: (value: T) => boolean,
  o: WaitOptions,
): Promise<T> {
  const key = `request:${id}`;
  let mark = ctx.hooks.feed.mark(key);
  let v = await read();
  const deadline = clock.now() + (o.waitMs ?? 0);
  while (
    still(v) &&
    (v.status === "pending" || v.status === "signing") &&
    clock.now() < deadline &&
    !o.signal?.aborted
  ) {
    await ctx.hooks.feed.waitFor(key, mark, deadline - clock.now(), o.signal);
    mark = ctx.hooks.feed.mark(key);
    v = await read();
  }
  return v;
}

/** The PEM chain, leaf first. With `waitMs`, waits that long for a pending request to finish. */
export async function certificateChain(
  ctx: RequestContext,
  id: string,
  waitMs = 0,
  signal?: AbortSignal,
  owner?: string,
): Promise<string> {
  const r = await whileOpen(
    ctx,
    id,
    () => requireVisible(ctx, id, owner),
    () => true,
    { waitMs, ...(signal ? { signal } : {}) },
  );
  if (r.status !== "issued" || !r.certificate)
    throw new CoordinatorError(
      "CONFLICT",
      `request ${id} is ${r.status}; the certificate exists once it is issued`,
      { requestStatus: r.status },
    );
  const ca = await ctx.ca.certificate();
  // Intermediate mode: the CA certificate that issued it and the chain above it up to the
  // external root, an earlier one for a certificate issued before an install (docs/intermediate.md).
  return toPem(r.certificate, "CERTIFICATE") + (await issuerChainPem(ctx.store, ca, r.certificate));
}

export async function render(ctx: RequestContext, r: RequestRecord): Promise<RequestView> {
  const csr = ctx.csrs.of(r);
  const approvals = await ctx.store.listApprovals(r.id);
  const approved = approvals.filter((a) => a.decision === "approve").length;
  const outcome = r.outcome;
  let signing: RequestView["signing"] = null;
  if (r.signingJob) {
    const job = await ctx.signing.record(r.signingJob);
    if (job) {
      const events = job.events;
      signing = {
        job: job.id,
        attempt: job.attempt,
        signers: await ctx.signing.signers(job),
        culprits: events
          .filter((e) => (e.kind === "bad-share" || e.kind === "refusal") && e.custodian)
          .map((e) => ({
            custodian: e.custodian!,
            reason:
              e.kind === "bad-share"
                ? `invalid signature share: ${e.detail ?? ""}`.trim()
                : `refused: ${e.detail ?? ""}`,
          })),
        events: events.map((e) => ({
          at: e.at,
          kind: e.kind,
          ...(e.custodian ? { custodian: e.custodian } : {}),
          ...(e.detail ? { detail: e.detail } : {}),
        })),
      };
    }
  }
  const threshold = ctx.config.config.threshold;
  const renewal = await ctx.store.getRenewal(r.id);
  return {
    id: r.id,
    status: r.status,
    requester: r.requester,
    profile: r.profile,
    subject: csr.subjectString,
    sans: csr.sans,
    keyType: csr.keyType === "rsa" ? `rsa-${csr.keyBits}` : csr.keyType,
    keyFingerprint: csr.keyFingerprint,
    // Shown as tca shows every serial (src/x509/serial.ts); custodians map it back to the DER
    // content octets (storedSerial) before they build or compare anything with it.
    serial: displaySerial(r.serial),
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    tbsSha256: r.tbsSha256,
    tbs: Buffer.from(r.tbs).toString("hex"),
    csr: toPem(r.csr, "CERTIFICATE REQUEST"),
    threshold,
    approvals: approvals.map((a) => ({
      custodian: a.custodian,
      decision: a.decision,
      at: a.createdAt,
      expiresAt: a.expiresAt,
      reason: a.reason,
    })),
    missing: Math.max(0, threshold - approved),
    rejection: r.status === "rejected" && outcome?.by ? { by: outcome.by, reason: outcome.reason } : null,
    failure: r.status === "failed" && outcome ? outcome.reason : null,
    signing,
    renewalOf: renewal ? displaySerial(renewal.renewalOf) : null,
    // No secret in it (src/protocol/origin.ts): shown to whoever may read the request.
    origin: r.origin,
    createdAt: r.createdAt,
  };
}
