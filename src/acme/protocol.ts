// The ACME wire contract (RFC 8555 §7.1, RFC 9773 §4), written once: the objects tca sends and the
// payloads it accepts. Payloads are parsed with these schemas at the boundary; unknown fields in a
// payload are ignored as RFC 8555 §7.1 asks of servers (clients send extensions), but every field
// tca reads is checked.
import { z } from "zod";
import { AcmeChallengeTypeSchema } from "../protocol/origin.ts";

export const AcmeAccountStatusSchema = z.enum(["valid", "deactivated", "revoked"]);
export type AcmeAccountStatus = z.infer<typeof AcmeAccountStatusSchema>;
/** RFC 8555 §7.1.6 order states. */
export const AcmeOrderStatusSchema = z.enum(["pending", "ready", "processing", "valid", "invalid"]);
export type AcmeOrderStatus = z.infer<typeof AcmeOrderStatusSchema>;
/** What the order row stores: after finalize, processing/valid/invalid follow the tca request. */
export type AcmeStoredOrderStatus = AcmeOrderStatus;
export const AcmeAuthzStatusSchema = z.enum([
  "pending",
  "valid",
  "invalid",
  "deactivated",
  "expired",
  "revoked",
]);
export type AcmeAuthzStatus = z.infer<typeof AcmeAuthzStatusSchema>;
export const AcmeChallengeStatusSchema = z.enum(["pending", "processing", "valid", "invalid"]);
export type AcmeChallengeStatus = z.infer<typeof AcmeChallengeStatusSchema>;

/** RFC 8555 §6.7 error types (urn:ietf:params:acme:error:<name>), and RFC 9773's. */
export const ACME_ERRORS = [
  "accountDoesNotExist",
  "alreadyRevoked",
  "badCSR",
  "badNonce",
  "badPublicKey",
  "badRevocationReason",
  "badSignatureAlgorithm",
  "caa",
  "compound",
  "connection",
  "dns",
  "externalAccountRequired",
  "incorrectResponse",
  "invalidContact",
  "malformed",
  "orderNotReady",
  "rateLimited",
  "rejectedIdentifier",
  "serverInternal",
  "tls",
  "unauthorized",
  "unsupportedContact",
  "unsupportedIdentifier",
  "userActionRequired",
  "alreadyReplaced",
] as const;
export type AcmeErrorType = (typeof ACME_ERRORS)[number];

export const IdentifierSchema = z
  .object({ type: z.string().min(1).max(16), value: z.string().min(1).max(253) })
  .loose();
export type Identifier = { type: "dns" | "ip"; value: string };

export const ProblemSchema = z
  .object({
    type: z.string(),
    detail: z.string(),
    status: z.number().int().optional(),
    identifier: z.object({ type: z.string(), value: z.string() }).optional(),
    subproblems: z
      .array(
        z.object({
          type: z.string(),
          detail: z.string(),
          identifier: z.object({ type: z.string(), value: z.string() }).optional(),
        }),
      )
      .optional(),
  })
  .loose();
export type AcmeProblemDocument = z.infer<typeof ProblemSchema>;

// ---- payloads (what clients send, inside the JWS) ----

/** RFC 8555 §7.3. `externalAccountBinding` is a JWS of its own (§7.3.4). */
export const NewAccountPayloadSchema = z
  .object({
    contact: z.array(z.string().max(320)).max(10).optional(),
    termsOfServiceAgreed: z.boolean().optional(),
    onlyReturnExisting: z.boolean().optional(),
    externalAccountBinding: z
      .object({
        protected: z.string().max(4096),
        payload: z.string().max(8192),
        signature: z.string().max(1024),
      })
      .loose()
      .optional(),
  })
  .loose();

/** RFC 8555 §7.3.2 and §7.3.6. */
export const AccountUpdatePayloadSchema = z
  .object({
    contact: z.array(z.string().max(320)).max(10).optional(),
    status: z.literal("deactivated").optional(),
  })
  .loose();

/** RFC 8555 §7.3.5: the inner JWS's payload. */
export const KeyChangeInnerPayloadSchema = z
  .object({ account: z.string().url(), oldKey: z.record(z.string(), z.unknown()) })
  .loose();

/** RFC 8555 §7.4; `replaces` from RFC 9773 §5; `profile` from draft-ietf-acme-profiles. */
export const NewOrderPayloadSchema = z
  .object({
    identifiers: z.array(IdentifierSchema).min(1).max(100),
    notBefore: z.string().datetime({ offset: true }).optional(),
    notAfter: z.string().datetime({ offset: true }).optional(),
    replaces: z.string().max(512).optional(),
    profile: z.string().max(64).optional(),
  })
  .loose();

/** RFC 8555 §7.4. */
export const FinalizePayloadSchema = z.object({ csr: z.string().min(1).max(32_768) }).loose();

/** RFC 8555 §7.5.2. */
export const AuthzUpdatePayloadSchema = z.object({ status: z.literal("deactivated") }).loose();

/** RFC 8555 §7.6. */
export const RevokeCertPayloadSchema = z
  .object({ certificate: z.string().min(1).max(32_768), reason: z.number().int().optional() })
  .loose();

// ---- objects (what tca sends) ----

export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert: string;
  keyChange: string;
  renewalInfo: string;
  meta: {
    termsOfService?: string;
    website?: string;
    externalAccountRequired: boolean;
    profiles?: Record<string, string>;
  };
}

export interface AcmeAccountObject {
  status: AcmeAccountStatus;
  contact: string[];
  termsOfServiceAgreed?: boolean;
  orders: string;
  externalAccountBinding?: unknown;
}

export interface AcmeOrderObject {
  status: AcmeOrderStatus;
  expires: string;
  identifiers: Identifier[];
  notBefore?: string;
  notAfter?: string;
  error?: AcmeProblemDocument;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  replaces?: string;
  profile?: string;
}

export interface AcmeChallengeObject {
  type: z.infer<typeof AcmeChallengeTypeSchema>;
  url: string;
  status: AcmeChallengeStatus;
  token: string;
  validated?: string;
  error?: AcmeProblemDocument;
}

export interface AcmeAuthorizationObject {
  identifier: Identifier;
  status: AcmeAuthzStatus;
  expires: string;
  challenges: AcmeChallengeObject[];
  wildcard?: boolean;
}

/** RFC 9773 §4.2. */
export interface RenewalInfoObject {
  suggestedWindow: { start: string; end: string };
  explanationURL?: string;
}
