// Where a request came from, when not from a requester's own CSR submission: kept with the request,
// shown in its view and sent to the custodians with it, so each can decide on it (a policy rule may
// ask for ACME-validated names, docs/acme.md). It is the coordinator's statement: a custodian checks
// that it covers exactly the names it re-derives from the TBS, and trusts the validation itself as
// much as it trusts the coordinator (docs/security-model.md).
import { z } from "zod";

export const AcmeChallengeTypeSchema = z.enum(["http-01", "dns-01", "tls-alpn-01"]);
export type AcmeChallengeType = z.infer<typeof AcmeChallengeTypeSchema>;

/** One identifier an ACME order validated: how, and when. */
export const ValidatedIdentifierSchema = z
  .object({
    /** RFC 8555 §9.7.7 identifier types tca validates. */
    type: z.enum(["dns", "ip"]),
    /** As in the order: a wildcard DNS identifier keeps its "*." (validated by dns-01 on the base name). */
    value: z.string().min(1).max(253),
    challenge: AcmeChallengeTypeSchema,
    validatedAt: z.string().datetime(),
  })
  .strict();
export type ValidatedIdentifier = z.infer<typeof ValidatedIdentifierSchema>;

export const AcmeOriginSchema = z
  .object({
    kind: z.literal("acme"),
    /** The account's id (the last segment of its URL). */
    account: z.string().min(1).max(64),
    /** The order's id. */
    order: z.string().min(1).max(64),
    identifiers: z.array(ValidatedIdentifierSchema).min(1).max(100),
  })
  .strict();
export type AcmeOrigin = z.infer<typeof AcmeOriginSchema>;

export const RequestOriginSchema = z.discriminatedUnion("kind", [AcmeOriginSchema]);
export type RequestOrigin = z.infer<typeof RequestOriginSchema>;
