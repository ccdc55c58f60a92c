// Parameters of a CRL signing job: with its own ca-config and CA certificate, what a custodian needs
// to re-derive the TBSCertList it is asked to sign (docs/architecture.md §3.9).
import { z } from "zod";
import { REVOCATION_REASONS, type RevocationReason } from "../x509/crl.ts";

export const CrlParamsSchema = z
  .object({
    crlNumber: z.string().regex(/^[0-9]{1,40}$/),
    thisUpdate: z.string().datetime(),
    nextUpdate: z.string().datetime(),
    entries: z
      .array(
        z
          .object({
            serial: z.string().regex(/^(?:[0-9a-f]{2}){1,21}$/),
            revokedAt: z.string().datetime(),
            reason: z.enum(REVOCATION_REASONS as [string, ...string[]]),
          })
          .strict(),
      )
      .max(100_000),
  })
  .strict();
export type CrlParams = z.infer<typeof CrlParamsSchema>;

/**
 * The reasons tca offers when revoking: every CRLReason of RFC 5280 §5.3.1 that tca can write except
 * certificateHold. A hold is meant to be released (removeFromCRL), but custodians sign a CRL only if
 * it keeps every serial of the previous one (docs/revocation.md), so nothing could ever release it: a
 * revocation is final (docs/revocation.md). CRL entries still accept certificateHold, so a hold an
 * older tca stored keeps appearing in every CRL.
 */
export const OFFERED_REVOCATION_REASONS = REVOCATION_REASONS.filter(
  (r): r is Exclude<RevocationReason, "certificateHold"> => r !== "certificateHold",
);

export const RevokeBodySchema = z
  .object({
    reason: z.enum(OFFERED_REVOCATION_REASONS as [string, ...string[]]).default("unspecified"),
  })
  .strict();
