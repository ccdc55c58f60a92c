// The signing pipeline's wire messages (docs/architecture.md §3.6, §3.7; docs/signing-pipeline.md).
//
// A custodian process talks to the coordinator through one exchange: a POST that carries a batch of
// signed envelopes (approvals, commitment offers, signature shares, refusals, withdrawals) and whose
// answer carries everything waiting for this custodian (signing tasks, requests to review, which of
// its offers are still open). Each envelope is signed on its own, so the coordinator can store it
// verbatim and one bad item never spoils the batch.
import { RenewalProofSchema } from "./renewal.ts";
import { RequestOriginSchema } from "./origin.ts";
import { z } from "zod";
import { CommitmentWireSchema } from "../threshold/encoding.ts";
import { SignedEnvelopeSchema } from "./envelope.ts";

/** Most commitments one custodian process holds ahead of time (docs/architecture.md §3.6: "say ≤ 32"). */
export const MAX_OFFERED = 32;
/** Most envelopes in one exchange. */
export const MAX_BATCH = 512;
/** Most tasks or requests one exchange answer carries. */
export const MAX_ITEMS = 128;

/** A random id of one custodian process: its nonces die with it. */
export const InstanceIdSchema = z.string().regex(/^[0-9a-f]{32}$/, "32 lowercase hex digits");
export const CustodianNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "a roster name");
export const CommitmentKeySchema = z.string().regex(/^[0-9a-f]{64}:[0-9a-f]{64}:[0-9a-f]{64}$/);

/**
 * `sign/offer`: commitments handed out ahead of time. Each is used by the first package that names
 * it, even a refused one. `supersede` (a process that just started) voids every open offer of the
 * custodian's other processes: their nonces are gone.
 */
export const OfferBodySchema = z
  .object({
    instance: InstanceIdSchema,
    batch: z.number().int().min(0),
    supersede: z.boolean(),
    commitments: z.array(CommitmentWireSchema).min(1).max(MAX_OFFERED),
    expiresAt: z.string().datetime(),
    /**
     * The key epoch of the share these commitments will sign with (docs/key-lifecycle.md); absent
     * means 0. The coordinator refuses offers of another epoch than the key state in force.
     */
    keyEpoch: z.number().int().min(0).optional(),
  })
  .strict();
export type OfferBody = z.infer<typeof OfferBodySchema>;

export const ShareBodySchema = z
  .object({ jobId: z.string(), attempt: z.number().int().min(0), share: z.string().regex(/^[0-9a-f]{64}$/) })
  .strict();
export const RefusalBodySchema = z
  .object({ jobId: z.string(), attempt: z.number().int().min(0), reason: z.string().max(1000) })
  .strict();
/**
 * `sign/withdraw`: a process gives back commitments it can no longer use (it is shutting down, or a
 * package named a commitment it no longer holds). Without `commitments`, all of the instance's.
 * Only attempts whose package holds one of these commitments, unanswered, are re-formed.
 */
export const WithdrawBodySchema = z
  .object({
    instance: InstanceIdSchema,
    commitments: z
      .array(CommitmentKeySchema)
      .max(MAX_OFFERED * 4)
      .optional(),
  })
  .strict();
export type ShareBody = z.infer<typeof ShareBodySchema>;
export type RefusalBody = z.infer<typeof RefusalBodySchema>;
export type WithdrawBody = z.infer<typeof WithdrawBodySchema>;

export const SigningPackageSchema = z
  .object({
    attempt: z.number().int().min(0),
    signers: z.array(z.string()),
    commitments: z.array(CommitmentWireSchema),
    formedAt: z.string(),
    /** The key epoch the package is for (absent means 0); a custodian refuses another epoch's. */
    keyEpoch: z.number().int().min(0).optional(),
  })
  .strict();
export type SigningPackage = z.infer<typeof SigningPackageSchema>;

/**
 * What a signing job signs: the root certificate, a leaf certificate, a CRL, a checkpoint of the
 * audit chain (src/protocol/audit-checkpoint.ts: text, never DER, so it cannot pass for the others),
 * or the certification request for the CA key itself (src/x509/ca-csr.ts, docs/intermediate.md).
 */
export const JobKindSchema = z.enum(["root", "leaf", "crl", "checkpoint", "ca-csr"]);

/** A signing job whose current package names this custodian: everything it needs to re-derive and sign. */
export const SigningTaskSchema = z
  .object({
    id: z.string(),
    kind: JobKindSchema,
    subjectRef: z.string(),
    attempt: z.number().int().min(0),
    tbs: z.string().regex(/^[0-9a-f]*$/),
    params: z.record(z.string(), z.unknown()),
    signingPackage: SigningPackageSchema,
  })
  .strict();
export type SigningTask = z.infer<typeof SigningTaskSchema>;

/** The public view of a signing job (GET /api/v1/signing/jobs/{id}). */
export const SigningJobViewSchema = z
  .object({
    id: z.string(),
    kind: JobKindSchema,
    subjectRef: z.string(),
    status: z.enum(["signing", "done", "failed"]),
    attempt: z.number().int(),
    tbs: z.string().regex(/^[0-9a-f]*$/),
    params: z.record(z.string(), z.unknown()),
    eligible: z.array(z.string()),
    excluded: z.array(z.string()),
    signingPackage: SigningPackageSchema.nullable(),
  })
  .strict();
export type SigningJobView = z.infer<typeof SigningJobViewSchema>;

/** A request to review: what a custodian needs to re-derive the TBS (docs/architecture.md §3.2), no more. */
export const ReviewItemSchema = z
  .object({
    id: z.string(),
    requester: z.string(),
    profile: z.string(),
    csr: z.string(), // base64 DER
    serial: z.string(),
    notBefore: z.string(),
    notAfter: z.string(),
    tbs: z.string().regex(/^[0-9a-f]*$/),
    tbsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    status: z.enum(["pending", "signing"]),
    createdAt: z.string(),
    /** A renewal: the serial renewed (stored form) and the holder's proof, for the custodian to check. */
    renewal: z.object({ of: z.string(), proof: RenewalProofSchema }).strict().optional(),
    /**
     * Where the request came from (an ACME order): the coordinator's statement, which a policy rule
     * may ask for once the custodian has checked it covers exactly the names in the TBS (policy.ts).
     */
    origin: RequestOriginSchema.optional(),
  })
  .strict();
export type ReviewItem = z.infer<typeof ReviewItemSchema>;

export const ExchangeRequestSchema = z
  .object({
    custodian: CustodianNameSchema,
    instance: InstanceIdSchema,
    envelopes: z.array(SignedEnvelopeSchema).max(MAX_BATCH),
    /** Seconds to wait for something to do when there is nothing yet (long-poll). */
    wait: z.number().min(0).max(30).default(0),
    /** Requests are reviewed once each: the answer carries those after this cursor. */
    reviewCursor: z.string().max(200).nullable().default(null),
    /** Whether to send requests to review at all (a CLI signing what its person approved does not). */
    review: z.boolean().default(true),
  })
  .strict();
export type ExchangeRequest = z.input<typeof ExchangeRequestSchema>;

export const ItemResultSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    ok: z.boolean(),
    status: z.number().int(),
    detail: z.string().optional(),
  })
  .strict();
export type ItemResult = z.infer<typeof ItemResultSchema>;

export const ExchangeResponseSchema = z
  .object({
    results: z.array(ItemResultSchema),
    tasks: z.array(SigningTaskSchema),
    requests: z.array(ReviewItemSchema),
    reviewCursor: z.string().nullable(),
    /** Keys of this instance's commitments the coordinator still holds unused. */
    offered: z.array(CommitmentKeySchema),
  })
  .strict();
export type ExchangeResponse = z.infer<typeof ExchangeResponseSchema>;

/** Parameters of a root signing job: with its own ca-config and the DKG result, enough to re-derive. */
export const RootParamsSchema = z
  .object({
    ceremonyId: z.string(),
    serial: z.string().regex(/^(?:[0-9a-f]{2}){1,21}$/, "even-length lowercase hex"),
    notBefore: z.string().datetime(),
    notAfter: z.string().datetime(),
  })
  .strict();
export type RootParams = z.infer<typeof RootParamsSchema>;

/**
 * Parameters of a ca-csr job (docs/intermediate.md): the CA subject and key id the coordinator built
 * the CertificationRequestInfo from, and the builder's version. A custodian derives the bytes from
 * its own ca-config and group key, never from these; they only say what the job is about.
 */
export const CaCsrParamsSchema = z
  .object({
    subject: z.string().max(512),
    caKeyId: z.string().regex(/^[0-9a-f]{64}$/),
    builder: z.string().max(64),
  })
  .strict();
export type CaCsrParams = z.infer<typeof CaCsrParamsSchema>;
