// Review: which pending requests one custodian is shown. Each goes at once to t of the custodians
// (a ranking by request id that spreads the work evenly), and to the others once it has waited
// REVIEW_FALLBACK_MS or its signing job starves for signers: t reviews per certificate in the common
// case, and no request left waiting for a custodian that is down or says no.
import { createHash } from "node:crypto";
import { z } from "zod";
import type { ReviewItem } from "../../protocol/signing-messages.ts";
import { CoordinatorError } from "../errors.ts";
import { STARVED_MS } from "../signing.ts";
import type { RequestRecord } from "../store/types.ts";
import type { RequestContext } from "./context.ts";
import { clock } from "../clock.ts";

/** How long a request waits for its preferred reviewers before every custodian is shown it. */
export const REVIEW_FALLBACK_MS = STARVED_MS;

export interface ReviewPage {
  items: ReviewItem[];
  cursor: string;
  /** When a request not yet shown to this custodian will be (the end of a long-poll). */
  wakeAt?: number;
}

/** Requests for one custodian to review, oldest first, from where its cursor stands. */
export async function reviewItems(
  ctx: RequestContext,
  custodian: string,
  cursorText: string | null,
  limit: number,
  now = clock.now(),
  viewer?: string,
): Promise<ReviewPage> {
  const cursor = parseCursor(cursorText);
  const out = new Map<string, RequestRecord>();
  const page = 256;
  for (let more = true; more && out.size < limit;) {
    const rows = await ctx.store.listRequestsAfter("pending", cursor.p, page);
    more = rows.length === page;
    for (const r of rows) {
      cursor.p = r.seq;
      if (preferred(ctx, custodian, r.id)) out.set(r.id, r);
      if (out.size >= limit) break;
    }
  }
  const cutoff = new Date(now - REVIEW_FALLBACK_MS).toISOString();
  let wakeAt: number | undefined;
  for (let more = true; more && out.size < limit;) {
    const rows = await ctx.store.listRequestsAfter("pending", cursor.f, page);
    more = rows.length === page;
    for (const r of rows) {
      if (r.createdAt >= cutoff) {
        // Not yet for everyone: the caller's long-poll should end when it is.
        wakeAt = Date.parse(r.createdAt) + REVIEW_FALLBACK_MS;
        more = false;
        break;
      }
      cursor.f = r.seq;
      if (!preferred(ctx, custodian, r.id)) out.set(r.id, r);
      if (out.size >= limit) break;
    }
  }
  for (const id of ctx.signing.starvedFor(viewer ?? custodian, REVIEW_FALLBACK_MS, limit - out.size, now)) {
    const r = await ctx.store.getRequest(id);
    if (r?.status === "signing") out.set(r.id, r);
  }
  const renewals = new Map<string, ReviewItem["renewal"]>();
  for (const r of out.values()) {
    const ren = await ctx.store.getRenewal(r.id);
    if (ren) renewals.set(r.id, { of: ren.renewalOf, proof: ren.proof });
  }
  const items = [...out.values()].map((r): ReviewItem => ({
    id: r.id,
    requester: r.requester,
    profile: r.profile,
    csr: Buffer.from(r.csr).toString("base64"),
    serial: r.serial,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    tbs: Buffer.from(r.tbs).toString("hex"),
    tbsSha256: r.tbsSha256,
    status: r.status as ReviewItem["status"],
    createdAt: r.createdAt,
    ...(renewals.has(r.id) ? { renewal: renewals.get(r.id)! } : {}),
    ...(r.origin ? { origin: r.origin } : {}),
  }));
  return { items, cursor: JSON.stringify(cursor), ...(wakeAt !== undefined ? { wakeAt } : {}) };
}

/** Whether this custodian is among the t that review a request first. */
export function preferred(ctx: RequestContext, custodian: string, requestId: string): boolean {
  const rank = (name: string) => createHash("sha256").update(`${requestId}/${name}`).digest("hex");
  const mine = rank(custodian);
  let before = 0;
  for (const c of ctx.config.config.custodians) if (c.name !== custodian && rank(c.name) < mine) before++;
  return before < ctx.config.config.threshold;
}

/** Where a custodian's review stands: the last intake sequence number seen, for preferred (p) and fallback (f) reviews. */
type Cursor = { p: number; f: number };
const CursorSchema = z
  .object({ p: z.number().int().nonnegative(), f: z.number().int().nonnegative() })
  .strict();
function parseCursor(text: string | null): Cursor {
  if (!text) return { p: 0, f: 0 };
  try {
    return CursorSchema.parse(JSON.parse(text));
  } catch {
    throw new CoordinatorError("BAD_REQUEST", "reviewCursor is not a cursor this coordinator gave out");
  }
}
