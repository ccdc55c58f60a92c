// The body of POST /api/v1/requests as JSON (a raw PEM/DER body takes the same fields as query
// parameters). The coordinator checks submissions with it; the OpenAPI document is generated from it.
import { z } from "zod";

/** A profile name as ca-config spells it. */
export const ProfileNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "profile must be a profile name");
/** The longest validity anyone may ask for (a profile's own limit is usually far lower). */
export const MAX_VALIDITY_HOURS = 876_000;
export const ValidityHoursSchema = z.number().int().positive().max(MAX_VALIDITY_HOURS);

export const SubmitBodySchema = z
  .object({
    csr: z.string().min(1).max(60_000).meta({ description: "a PKCS#10 CSR in PEM (at most 16 KiB)" }),
    profile: ProfileNameSchema.meta({
      description: "a profile from ca-config that the requester is granted",
    }),
    validityHours: ValidityHoursSchema.optional().meta({
      description: "default: the profile's defaultValidityHours; at most its maxValidityHours",
    }),
  })
  .strict();
export type SubmitBody = z.infer<typeof SubmitBodySchema>;
