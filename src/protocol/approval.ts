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

/** What GET /api/v1/requests/{id} returns. */
export const RequestViewSchema = z
  .object({
    id: z.string(),
    status: z.enum(["pending", "signing", "issued", "rejected", "failed"]),
    requester: z.string(),
    profile: z.string(),
    subject: z.string(),
    sans: z.array(z.object({ type: z.string(), value: z.string() })),
    keyType: z.string(),
    keyFingerprint: z.string(),
    serial: z.string(),
    notBefore: z.string(),
    notAfter: z.string(),
    tbsSha256: z.string(),
    tbs: z.string(),
    csr: z.string(),
    threshold: z.number(),
    approvals: z.array(
      z.object({
        custodian: z.string(),
        decision: z.string(),
        at: z.string(),
        expiresAt: z.string(),
        reason: z.string().nullable(),
      }),
    ),
    missing: z.number(),
    rejection: z.object({ by: z.string(), reason: z.string() }).nullable(),
    failure: z.string().nullable(),
    /** The serial (display form) of the certificate this request renews, if it is a renewal. */
    renewalOf: z.string().nullable().optional(),
    signing: z
      .object({
        job: z.string(),
        attempt: z.number(),
        /** While signing: signers that could sign now, how many more are needed, whose shares are awaited. */
        signers: z
          .object({ available: z.number(), missing: z.number(), waitingFor: z.array(z.string()) })
          .optional(),
        culprits: z.array(z.object({ custodian: z.string(), reason: z.string() })),
        events: z.array(
          z.object({
            at: z.string(),
            kind: z.string(),
            custodian: z.string().optional(),
            detail: z.string().optional(),
          }),
        ),
      })
      .nullable(),
    createdAt: z.string(),
  })
  .strict();
export type RequestView = z.infer<typeof RequestViewSchema>;

/**
 * A request's visible state for long-polls (GET /api/v1/requests/{id}?since=STATE&wait=S): its
 * status and how many decisions it has, e.g. `pending/1`.
 */
export function requestState(v: Pick<RequestView, "status" | "approvals">): string {
  return `${v.status}/${v.approvals.length}`;
}
