// An approval is a durable signed statement about one TBS hash (docs/architecture.md §3.3, §3.6): it travels
// as the body of an "approval" envelope signed by the custodian's identity key.
import { z } from "zod";

export const APPROVAL_DOMAIN = "tca/approval/v1";

export const ApprovalStatementSchema = z
  .object({
    domain: z.literal(APPROVAL_DOMAIN),
    caKeyId: z.string().regex(/^[0-9a-f]{64}$/),
    requestId: z.string().uuid(),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    configDigest: z.string().regex(/^[0-9a-f]{64}$/),
    builderVersion: z.string(),
    decision: z.enum(["approve", "reject"]),
    reason: z.string().max(500).optional(),
    issuedAt: z.string().datetime(),
    expiresAt: z.string().datetime(),
  })
  .strict();
export type ApprovalStatement = z.infer<typeof ApprovalStatementSchema>;

/** Parameters of a leaf signing job: with its own ca-config and CA certificate, enough to re-derive. */
export const LeafParamsSchema = z
  .object({
    requestId: z.string().uuid(),
    requester: z.string(),
    profile: z.string(),
    csr: z.string().regex(/^[A-Za-z0-9+/=]+$/),
    serial: z.string().regex(/^(?:[0-9a-f]{2}){1,21}$/, "even-length lowercase hex"),
    notBefore: z.string().datetime(),
    notAfter: z.string().datetime(),
  })
  .strict();
export type LeafParams = z.infer<typeof LeafParamsSchema>;

// The request view is a coordinator answer: defined with the others in ./views.ts.
export { RequestViewSchema, type RequestView } from "./views.ts";
import type { RequestView } from "./views.ts";

/**
 * A request's visible state for long-polls (GET /api/v1/requests/{id}?since=STATE&wait=S): its
 * status and how many decisions it has, e.g. `pending/1`.
 */
export function requestState(v: Pick<RequestView, "status" | "approvals">): string {
  return `${v.status}/${v.approvals.length}`;
}
