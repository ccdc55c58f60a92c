// The state of a finalized order, read from its tca request (docs/acme.md): after finalize the order
// follows the request the custodians decide on. RFC 8555 §7.1.6 maps it as
//   pending | signing  → processing (with Retry-After, §7.4)
//   issued             → valid
//   rejected | failed  → invalid, with an error that says why (§7.1.3 "error").
import type { RequestRecord } from "../coordinator/store/types.ts";
import { clock } from "../coordinator/clock.ts";
import type { AcmeContext } from "./context.ts";
import { problemOf } from "./problems.ts";
import type { AcmeProblemDocument } from "./protocol.ts";

export interface IssuanceState {
  status: "processing" | "valid" | "invalid";
  error?: AcmeProblemDocument;
  /** Seconds a client should wait before asking again (processing). */
  retryAfter?: number;
}

/** Retry-After while custodians' agents decide or signers sign: they answer within seconds. */
export const PROCESSING_RETRY_SECONDS = 2;
/** Retry-After once the request looks like it waits for a person: polling every 2 s helps nobody. */
export const WAITING_FOR_PERSON_RETRY_SECONDS = 10;
/**
 * A request still short of approvals after this long is taken to wait for a person: agents decide on
 * what their policy approves within one exchange round, and leave the rest to a person
 * (src/custodian/policy.ts). The coordinator is not told that an agent left a request; this is the
 * sign it has.
 */
export const WAITING_FOR_PERSON_AFTER_MS = 30_000;

/** Requests already logged as waiting for a person (each logged once per process, not per poll). */
const loggedWaiting = new Set<string>();
const LOGGED_WAITING_MAX = 1_000;

export async function issuanceState(ctx: AcmeContext, requestId: string): Promise<IssuanceState> {
  const r = await ctx.services.store.getRequest(requestId);
  if (!r)
    // Requests are never deleted; a missing one is a broken database, not a client error.
    return {
      status: "invalid",
      error: problemOf("serverInternal", `the certificate request ${requestId} of this order is missing`),
    };
  switch (r.status) {
    case "issued":
      return { status: "valid" };
    case "signing":
      return { status: "processing", retryAfter: PROCESSING_RETRY_SECONDS };
    case "pending":
      return pendingState(ctx, r);
    case "rejected":
      // `unauthorized` rather than `rejectedIdentifier`: the custodians' approvals are this CA's
      // authorization to issue, and a custodian may reject for any reason (the key, the lifetime,
      // the time of day), not only for a name. rejectedIdentifier (RFC 8555 §6.7) says the server
      // will not issue for an identifier, which the custodian's reason may not say.
      return {
        status: "invalid",
        error: problemOf(
          "unauthorized",
          `custodian ${r.outcome?.by ?? "(unknown)"} rejected the request: ${r.outcome?.reason ?? "no reason given"}`,
        ),
      };
    case "failed":
      return {
        status: "invalid",
        error: problemOf(
          "serverInternal",
          `the certificate could not be issued: ${r.outcome?.reason ?? "signing failed"}`,
        ),
      };
  }
}

/**
 * RFC 8555 has no field for "a person must decide": the order stays processing. What tca can do is
 * space the polls out (Retry-After) and say so in its log, once per request, for the operator.
 */
async function pendingState(ctx: AcmeContext, r: RequestRecord): Promise<IssuanceState> {
  const waited = clock.now() - Date.parse(r.createdAt);
  if (waited < WAITING_FOR_PERSON_AFTER_MS)
    return { status: "processing", retryAfter: PROCESSING_RETRY_SECONDS };
  if (!loggedWaiting.has(r.id)) {
    if (loggedWaiting.size >= LOGGED_WAITING_MAX) loggedWaiting.clear();
    loggedWaiting.add(r.id);
    const approvals = await ctx.services.store.listApprovals(r.id);
    const approved = approvals.filter((a) => a.decision === "approve").map((a) => a.custodian);
    ctx.log.info(
      {
        request: r.id,
        approved,
        missing: Math.max(0, ctx.services.config.config.threshold - approved.length),
        waitedSeconds: Math.round(waited / 1000),
      },
      "ACME order waits for custodians: their agents did not approve it, so a person must (tca custodian requests)",
    );
  }
  return { status: "processing", retryAfter: WAITING_FOR_PERSON_RETRY_SECONDS };
}
