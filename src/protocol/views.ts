// What the coordinator answers, as zod schemas: the one definition of each JSON body it sends. The
// clients (src/requester, src/custodian, src/cli) parse with these, and the OpenAPI document's
// components (src/coordinator/http/openapi.ts) are generated from them, so the contract is written
// once. Enumerations come from ./enums.ts. The key ceremony's answers are in ./ceremony-views.ts:
// they need the announcement and envelope schemas (and so FROST), which `tca request` must not load.
import { z } from "zod";
import { REVOCATION_REASONS } from "../x509/crl.ts";
import { DecisionSchema, RequestStatusSchema, SanTypeSchema, SigningEventKindSchema } from "./enums.ts";
import { RequestOriginSchema } from "./origin.ts";

/** Lower-case hex: `bytes` bytes exactly, or any non-empty length. */
export const hexString = (bytes?: number): z.ZodString =>
  bytes ? z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`)) : z.string().regex(/^[0-9a-f]+$/);
/** An RFC 3339 timestamp in UTC, as Date.prototype.toISOString writes it. */
export const Timestamp = z.iso.datetime();
/** A serial as tca prints it (src/x509/serial.ts displaySerial): lower-case hex, no sign octet. */
export const DisplaySerialSchema = z.string().regex(/^[0-9a-f]+$/);

/** An RFC 9457 problem detail: every error the coordinator answers (application/problem+json). */
export const ProblemSchema = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int().min(400).max(599),
  detail: z.string().meta({ description: "what is wrong, in one sentence; internal causes are never sent" }),
  code: z.string().meta({ description: "stable machine-readable code" }),
  reason: z
    .string()
    .optional()
    .meta({ description: "for refused CSRs: the X.509 layer's code, e.g. KEY_SIZE_NOT_ALLOWED" }),
  field: z.string().optional().meta({ description: "the field or name at fault, when there is one" }),
  culprit: z
    .string()
    .nullable()
    .optional()
    .meta({ description: "for refused envelopes: the custodian at fault, when known" }),
  requestStatus: RequestStatusSchema.optional().meta({
    description: "for a certificate that is not issued yet: the request's status",
  }),
});
export type Problem = z.infer<typeof ProblemSchema>;

const ContactSchema = z
  .object({
    name: z.string(),
    lastContact: Timestamp.nullable(),
    secondsAgo: z.number().int().nullable(),
    via: z.string().nullable(),
  })
  .strict();
const ReplicaSchema = z
  .object({ id: z.string(), url: z.string(), startedAt: Timestamp, lastSeen: Timestamp, live: z.boolean() })
  .strict();

/** GET /api/v1/health: readiness; the custodian and replica lists only for admins and custodians. */
export const HealthSchema = z
  .object({
    status: z.enum(["ok", "initializing", "degraded", "roster-mismatch"]).meta({
      description:
        "ok: ready to issue; initializing: no CA key or root yet; degraded: database away; roster-mismatch: the ca-config's roster is not the roster in force (docs/key-lifecycle.md), nothing is signed",
    }),
    database: z.enum(["ok", "unavailable"]),
    storage: z.object({ dialect: z.enum(["sqlite", "postgres"]) }).strict(),
    caKey: z.enum(["ready", "none"]).meta({ description: "whether the key ceremony has produced a CA key" }),
    caKeyId: hexString(32).nullable().meta({ description: "SHA-256 of the CA SubjectPublicKeyInfo, hex" }),
    root: z.enum(["ready", "none"]),
    keyEpoch: z.number().int().min(0).nullable().optional().meta({
      description: "the key epoch in force (docs/key-lifecycle.md); null while there is no key",
    }),
    rosterMismatch: z.string().optional().meta({
      description: "why this coordinator signs nothing: its ca-config's roster is not the roster in force",
    }),
    replica: z.string().meta({ description: "id of the replica that answered" }),
    summary: z
      .object({
        replicas: z.object({ total: z.number().int(), live: z.number().int() }).strict(),
        custodians: z.object({ total: z.number().int(), heardWithin5Minutes: z.number().int() }).strict(),
      })
      .strict()
      .meta({ description: "counts, shown to everyone" }),
    custodians: z.array(ContactSchema).optional().meta({
      description: "admins and custodians only: when each custodian was last heard from, and how",
    }),
    replicas: z.array(ReplicaSchema).optional().meta({
      description: "admins and custodians only: every replica on this database, live if it reported lately",
    }),
  })
  .strict();
export type Health = z.infer<typeof HealthSchema>;

/** GET /api/v1/health/live. */
export const LiveSchema = z.object({ status: z.literal("live"), replica: z.string() }).strict();

/** GET /api/v1/changes: the change feed's position. */
export const ChangesSchema = z.object({ seq: z.number().int().min(0) }).strict();

export const SanSchema = z.object({ type: SanTypeSchema, value: z.string() }).strict();

/** A custodian's decision as a request view shows it. */
export const ApprovalViewSchema = z
  .object({
    custodian: z.string(),
    decision: DecisionSchema,
    at: Timestamp,
    expiresAt: Timestamp,
    reason: z.string().nullable(),
  })
  .strict();

export const SigningEventSchema = z
  .object({
    at: Timestamp,
    kind: SigningEventKindSchema,
    custodian: z.string().optional(),
    detail: z.string().optional(),
  })
  .strict();

const RejectionSchema = z.object({ by: z.string(), reason: z.string() }).strict();

/** What GET /api/v1/requests/{id} returns. */
export const RequestViewSchema = z
  .object({
    id: z.uuid(),
    status: RequestStatusSchema,
    requester: z.string(),
    profile: z.string(),
    subject: z.string().meta({ description: "the CSR subject as a string (may be empty)" }),
    sans: z.array(SanSchema).meta({ description: "in CSR order" }),
    keyType: z.string().meta({ examples: ["ed25519", "ec-p256", "rsa-2048"] }),
    keyFingerprint: z.string(),
    serial: DisplaySerialSchema,
    notBefore: Timestamp,
    notAfter: Timestamp,
    tbsSha256: hexString(32).meta({ description: "SHA-256 of the TBSCertificate DER: what approvals sign" }),
    tbs: hexString().meta({ description: "the TBSCertificate DER, hex" }),
    csr: z.string().meta({ description: "the CSR, PEM" }),
    threshold: z.number().int().min(1),
    approvals: z.array(ApprovalViewSchema),
    missing: z.number().int().min(0).meta({ description: "approvals still needed" }),
    rejection: RejectionSchema.nullable().meta({ description: "who rejected the request and why" }),
    failure: z.string().nullable(),
    /** The serial (display form) of the certificate this request renews, if it is a renewal. */
    renewalOf: DisplaySerialSchema.nullable().optional(),
    /** Where the request came from when not its requester's own submission: an ACME order (docs/acme.md). */
    origin: RequestOriginSchema.nullable().optional().meta({
      description:
        "where the request came from: an ACME order (account, order, and each identifier's challenge and validation time); null for a requester's own submission",
    }),
    signing: z
      .object({
        job: z.string(),
        attempt: z.number().int(),
        /** While signing: signers that could sign now, how many more are needed, whose shares are awaited. */
        signers: z
          .object({
            available: z.number().int(),
            missing: z.number().int(),
            waitingFor: z.array(z.string()),
          })
          .strict()
          .optional(),
        culprits: z.array(z.object({ custodian: z.string(), reason: z.string() }).strict()),
        events: z.array(SigningEventSchema),
      })
      .strict()
      .nullable(),
    createdAt: Timestamp,
  })
  .strict();
export type RequestView = z.infer<typeof RequestViewSchema>;

/** GET /api/v1/requests: the newest requests first. */
export const RequestListSchema = z.object({ requests: z.array(RequestViewSchema).max(200) }).strict();

/** POST /api/v1/requests answers 202 with this (follow the Location header). */
export const SubmitResponseSchema = RequestViewSchema.pick({
  id: true,
  status: true,
  serial: true,
  approvals: true,
  missing: true,
}).strict();
export type SubmitResponse = z.infer<typeof SubmitResponseSchema>;

/** POST /api/v1/requests/{id}/approvals to a reader that may not see the request. */
export const DecisionCountedSchema = RequestViewSchema.pick({
  id: true,
  status: true,
  missing: true,
}).strict();

/** POST /api/v1/certificates/{serial}/revoke. */
export const RevokedSchema = z
  .object({
    serial: DisplaySerialSchema,
    reason: z.enum(REVOCATION_REASONS),
    revokedAt: Timestamp,
    renewals: z.array(DisplaySerialSchema).meta({
      description:
        "issued renewals of this certificate: not revoked with it (after keyCompromise, revoke them too)",
    }),
  })
  .strict();
export type Revoked = z.infer<typeof RevokedSchema>;

/** POST /api/v1/custodians/heartbeat: the sender, as the coordinator authenticated it. */
export const HeartbeatAnswerSchema = z.object({ name: z.string() }).strict();
