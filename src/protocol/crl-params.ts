// Parameters of a CRL signing job: with its own ca-config and CA certificate, what a custodian needs
// to re-derive the TBSCertList it is asked to sign (DESIGN §3.9).
import { z } from "zod";
import { REVOCATION_REASONS } from "../x509/crl.ts";

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

export const RevokeBodySchema = z
  .object({ reason: z.enum(REVOCATION_REASONS as [string, ...string[]]).default("unspecified") })
  .strict();
