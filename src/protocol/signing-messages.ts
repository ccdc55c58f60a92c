// Bodies of the signing envelopes and the view of a signing job a custodian reads (DESIGN §3.6, §3.7).
import { z } from "zod";
import { CommitmentWireSchema } from "../threshold/encoding.ts";

export const CommitmentBodySchema = z
  .object({ jobId: z.string(), attempt: z.number().int().min(0), commitment: CommitmentWireSchema })
  .strict();
export const ShareBodySchema = z
  .object({ jobId: z.string(), attempt: z.number().int().min(0), share: z.string().regex(/^[0-9a-f]{64}$/) })
  .strict();
export const RefusalBodySchema = z
  .object({ jobId: z.string(), attempt: z.number().int().min(0), reason: z.string().max(1000) })
  .strict();
export const WithdrawBodySchema = z.object({ jobId: z.string(), attempt: z.number().int().min(0) }).strict();
export type CommitmentBody = z.infer<typeof CommitmentBodySchema>;
export type ShareBody = z.infer<typeof ShareBodySchema>;
export type RefusalBody = z.infer<typeof RefusalBodySchema>;

export const SigningPackageSchema = z
  .object({
    attempt: z.number().int().min(0),
    signers: z.array(z.string()),
    commitments: z.array(CommitmentWireSchema),
    formedAt: z.string(),
  })
  .strict();
export type SigningPackage = z.infer<typeof SigningPackageSchema>;

export const SigningJobViewSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    subjectRef: z.string(),
    status: z.enum(["signing", "done", "failed"]),
    attempt: z.number().int(),
    tbs: z.string().regex(/^[0-9a-f]*$/),
    params: z.record(z.string(), z.unknown()),
    eligible: z.array(z.string()),
    excluded: z.array(z.string()),
    committed: z.array(z.string()),
    signingPackage: SigningPackageSchema.nullable(),
  })
  .strict();
export type SigningJobView = z.infer<typeof SigningJobViewSchema>;

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
