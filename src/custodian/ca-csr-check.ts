// What a custodian checks before it approves and signs the certification request for the CA key
// (intermediate mode, docs/intermediate.md). It re-derives the CertificationRequestInfo from its own
// ca-config (the CA subject) and the group key it holds (src/x509/ca-csr.ts) and requires the
// coordinator's bytes to be exactly those (docs/architecture.md §3.2). It approves only after a person
// (or an agent whose policy says `signCaCsr: true`) has accepted the subject, and signs only bytes it
// approved: its own unexpired approval, journaled, of exactly this hash.
import type { LoadedConfig } from "../config/load.ts";
import { sealEnvelope, type SignedEnvelope, type Signer } from "../protocol/envelope.ts";
import { CaCsrParamsSchema, type SigningTask } from "../protocol/signing-messages.ts";
import {
  CA_CSR_APPROVAL_DOMAIN,
  CaCsrViewSchema,
  type CaCsrDecision,
  type CaCsrView,
} from "../protocol/ca-csr.ts";
import type { CoordinatorClient } from "./client.ts";
import type { CustodianSession } from "./session.ts";
import { bytesToHex } from "../threshold/encoding.ts";
import { buildCaCsrInfo } from "../x509/ca-csr.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import { spkiFingerprint } from "../x509/ski.ts";
import type { Journal } from "./journal.ts";
import { sha256Hex } from "./leaf-check.ts";
import { refuse, type TbsDeriver } from "./signer.ts";

/** What a person is asked to approve: derived here, never taken from the coordinator. */
export interface CaCsrReview {
  view: CaCsrView;
  subject: string;
  keySha256: string;
  extensions: string[];
  /** The bytes this custodian derived; undefined when they differ from the coordinator's. */
  derived?: Uint8Array;
  problem?: string;
}

export function reviewCaCsr(
  config: LoadedConfig,
  caPublicKey: Uint8Array,
  caKeyId: string,
  view: CaCsrView,
): CaCsrReview {
  const mine = buildCaCsrInfo({ subject: config.config.ca.subject, caPublicKey });
  const out: CaCsrReview = {
    view,
    subject: config.config.ca.subject,
    keySha256: spkiFingerprint(ed25519Spki(caPublicKey)),
    extensions: ["basicConstraints: critical, CA:TRUE", "keyUsage: critical, keyCertSign, cRLSign"],
  };
  if (view.caKeyId !== caKeyId) out.problem = `the proposal names another CA key (${view.caKeyId})`;
  else if (bytesToHex(mine) !== view.tbs || sha256Hex(mine) !== view.tbsSha256)
    out.problem =
      "the coordinator's certification request differs from the one this custodian derived from its own ca-config and the CA key";
  else out.derived = mine;
  return out;
}

/** The signed decision on a proposal, journaled first (the caller appends `journalEntry`). */
export function caCsrDecision(
  signer: Signer,
  config: LoadedConfig,
  caKeyId: string,
  review: CaCsrReview,
  decision: "approve" | "reject",
  opts: { reason?: string; validForMs?: number } = {},
): { envelope: SignedEnvelope; statement: CaCsrDecision } {
  if (decision === "approve" && (review.problem || !review.derived))
    refuse(`will not approve the CA's certification request: ${review.problem ?? "not derived"}`);
  const now = new Date();
  const statement: CaCsrDecision = {
    domain: CA_CSR_APPROVAL_DOMAIN,
    caKeyId,
    proposalId: review.view.id,
    tbsSha256: review.view.tbsSha256,
    configDigest: config.digest,
    decision,
    ...(opts.reason ? { reason: opts.reason } : {}),
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + (opts.validForMs ?? 24 * 3_600_000)).toISOString(),
  };
  const envelope = sealEnvelope(signer, {
    type: "approval",
    recipient: "coordinator",
    scope: review.view.id,
    caKeyId,
    body: statement,
  });
  return { envelope, statement };
}

/**
 * At signing time: the same derivation, and this custodian's own unexpired approval of exactly these
 * bytes for this proposal (the job's subjectRef), as for a leaf.
 */
export function caCsrTbsDeriver(
  config: LoadedConfig,
  caPublicKey: Uint8Array,
  caKeyId: string,
  journal: Journal,
): TbsDeriver {
  return (job: SigningTask) => {
    const p = CaCsrParamsSchema.safeParse(job.params);
    if (!p.success) refuse("ca-csr job parameters are malformed");
    if (p.data.caKeyId !== caKeyId) refuse("the ca-csr job names another CA key than this custodian's");
    const tbs = buildCaCsrInfo({ subject: config.config.ca.subject, caPublicKey });
    const hash = sha256Hex(tbs);
    if (!journal.approvalFor(job.subjectRef, hash))
      refuse(
        `I have not approved the CA's certification request ${job.subjectRef} (subject "${config.config.ca.subject}"): a person approves it with \`tca custodian ca-csr\``,
      );
    return tbs;
  };
}

/** The coordinator's current CSR proposal, or undefined when there is none. */
export async function currentCaCsr(client: CoordinatorClient): Promise<CaCsrView | undefined> {
  try {
    return await client.get("/api/v1/ca/csr/current", CaCsrViewSchema);
  } catch (e) {
    if (/no CSR proposal/.test((e as Error).message)) return undefined;
    throw e;
  }
}

/** Reviews the current proposal against this session's own ca-config and group key. */
export function reviewCaCsrIn(session: CustodianSession, view: CaCsrView): CaCsrReview {
  return reviewCaCsr(session.config, session.caPublicKey, session.caKeyId, view);
}

/**
 * Signs, journals (first: on this custodian's own record before anyone sees it, docs/journal.md)
 * and posts this custodian's decision on the proposal; returns the proposal as it now stands.
 */
export async function decideCaCsr(
  session: CustodianSession,
  review: CaCsrReview,
  decision: "approve" | "reject",
  opts: { reason?: string; validForMs?: number } = {},
): Promise<CaCsrView> {
  const { envelope, statement } = caCsrDecision(
    session.signer,
    session.config,
    session.caKeyId,
    review,
    decision,
    opts,
  );
  session.journal.appendMany(session.signer.signingSecret, [
    {
      kind: "approval",
      requestId: statement.proposalId,
      tbsSha256: statement.tbsSha256,
      decision,
      expiresAt: statement.expiresAt,
      note: `the CA's certification request, subject "${review.subject}" (docs/intermediate.md)`,
    },
  ]);
  return session.client.post(
    `/api/v1/ca/csr/${encodeURIComponent(statement.proposalId)}/approvals`,
    envelope,
    CaCsrViewSchema,
  );
}
