// The wire shapes of intermediate mode's certification request (docs/intermediate.md): the
// coordinator's view of a CSR proposal, and a custodian's signed decision on it. The decision travels
// in an `approval` envelope scoped to the proposal, under its own domain, so it can never count as an
// approval of a certificate request (src/protocol/approval.ts) nor the other way round.
import { z } from "zod";

/** The domain of a custodian's decision on the CA's certification request (never a request's). */
export const CA_CSR_APPROVAL_DOMAIN = "tca/ca-csr-approval/v1";

/** Body of the `approval` envelope a custodian sends about a CSR proposal (scope: the proposal id). */
export const CaCsrDecisionSchema = z
  .object({
    domain: z.literal(CA_CSR_APPROVAL_DOMAIN),
    caKeyId: z.string().regex(/^[0-9a-f]{64}$/),
    proposalId: z.string().uuid(),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    configDigest: z.string().regex(/^[0-9a-f]{64}$/),
    decision: z.enum(["approve", "reject"]),
    reason: z.string().max(1000).optional(),
    issuedAt: z.string().datetime(),
    expiresAt: z.string().datetime(),
  })
  .strict();
export type CaCsrDecision = z.infer<typeof CaCsrDecisionSchema>;

/** The coordinator's view of the current CSR proposal (GET /api/v1/ca/csr). */
export const CaCsrViewSchema = z
  .object({
    id: z.string().uuid(),
    status: z.enum(["pending", "signing", "signed", "failed", "rejected"]),
    subject: z.string(),
    caKeyId: z.string(),
    builder: z.string(),
    tbs: z.string().regex(/^[0-9a-f]*$/),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    threshold: z.number().int(),
    approvals: z.array(z.string()),
    rejection: z.object({ by: z.string(), reason: z.string() }).strict().nullable(),
    jobId: z.string().nullable(),
    failure: z.string().nullable(),
    /** The signed CSR, PEM, once status is `signed`. */
    csr: z.string().nullable(),
    createdAt: z.string(),
  })
  .strict();
export type CaCsrView = z.infer<typeof CaCsrViewSchema>;

/** POST /api/v1/ca/certificate: the certificate the external CA issued, and its chain (PEM). */
export const InstallCaCertBodySchema = z
  .object({
    /** The CA certificate for the tca key, PEM. */
    certificate: z.string().min(1).max(64_000),
    /** Its issuer first, up to and including the self-signed root, PEM concatenated. */
    chain: z.string().min(1).max(256_000),
  })
  .strict();
export type InstallCaCertBody = z.infer<typeof InstallCaCertBodySchema>;

/** What an install answers: the certificate now in force and the root it chains to. */
export const CaInstalledSchema = z
  .object({
    subject: z.string(),
    issuer: z.string(),
    root: z.string(),
    rootSha256: z.string().regex(/^[0-9a-f]{64}$/),
    notAfter: z.string(),
  })
  .strict();
export type CaInstalled = z.infer<typeof CaInstalledSchema>;
