// The audit chain (docs/audit.md): every event that matters — a request, each custodian's signed
// decision, signing jobs and their signatures, issuance, revocation, CRLs, the key ceremony — is one
// entry of a hash-chained log. Each entry's hash covers the previous entry's hash and the canonical
// JSON of the entry, so changing, dropping or reordering one breaks every hash after it.
// Custodian-signed statements are kept inside entries as received: they are the proof.
//
// This module is the file and wire format and the OFFLINE verifier: no database, no HTTP. The CLI
// (`tca audit verify`), a custodian and the web console call it with their own ca-config.
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../common/canonical-json.ts";
import { sha256Hex } from "../common/hash.ts";
import { verifyEd25519 } from "../common/ed25519.ts";
import type { CaConfig } from "../config/schema.ts";
import { ApprovalStatementSchema } from "./approval.ts";
import { openEnvelope, SignedEnvelopeSchema, type EnvelopeHeader } from "./envelope.ts";
import { ProtocolError } from "./errors.ts";
import { ConfirmBodySchema } from "./dkg-messages.ts";
import { JobKindSchema, ShareBodySchema } from "./signing-messages.ts";
import { AnnouncementSchema } from "./announcement.ts";
import { publicFromWire, PublicPackageWireSchema } from "../threshold/encoding.ts";
import { groupPublicKey, publicPackageHash } from "../threshold/dkg.ts";
import { identifierForName } from "../threshold/suite.ts";
import { splitCertificate, verifyCertificateSignature } from "../x509/assemble.ts";
import { readCrl } from "../x509/crl-read.ts";
import { verifyCrlSignature } from "../x509/crl.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import { verifyCheckpoint } from "./audit-checkpoint.ts";
import {
  KeyStateSchema,
  LcConfirmBodySchema,
  LifecyclePlanSchema,
  planSigningKeys,
  type LifecyclePlan,
} from "./lifecycle.ts";
import {
  checkRosterChange,
  rosterChangeBytes,
  rosterDigest,
  rosterOf,
  rosterSigningKeys,
  RosterChangeStatementSchema,
  RosterSignatureSchema,
  type Roster,
} from "./roster.ts";
import { publicPackageDigest } from "../threshold/lifecycle.ts";

const DOMAIN = "tca/audit/v1\n";
/** The `prev` of the first entry. */
export const AUDIT_GENESIS = "0".repeat(64);

export const AUDIT_KINDS = [
  "request",
  "approval",
  "rejection",
  "signing-job",
  "signature",
  "issuance",
  "revocation",
  "crl",
  "ceremony",
  "checkpoint",
  "lifecycle",
] as const;
export const AuditKindSchema = z.enum(AUDIT_KINDS);
export type AuditKind = z.infer<typeof AuditKindSchema>;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const hexBytes = z.string().regex(/^(?:[0-9a-f]{2})*$/);
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

export const AuditEntrySchema = z
  .object({
    seq: z.number().int().min(1),
    at: z.string().datetime(),
    kind: AuditKindSchema,
    /** What the entry is about, for lookups: a request id, a serial, a job id, a ceremony id, "crl-N". */
    subject: z.string().min(1).max(200).optional(),
    /** Kind-specific JSON (the body schemas below); hashed as canonical JSON. */
    body: z.unknown(),
    prev: hex64,
    hash: hex64,
  })
  .strict();
export type AuditEntry = z.infer<typeof AuditEntrySchema>;
export type AuditEntryWithoutHash = Omit<AuditEntry, "hash">;

// ---- bodies, by kind ----

export const RequestBodySchema = z
  .object({
    requestId: z.string().uuid(),
    requester: z.string(),
    profile: z.string(),
    csr: base64,
    tbsSha256: hex64,
    tbs: hexBytes,
    serial: hexBytes,
    notBefore: z.string().datetime(),
    notAfter: z.string().datetime(),
    /** Where the request came from (src/protocol/origin.ts), null for a requester's own submission. */
    origin: z.unknown().nullable(),
    /** The serial of the certificate it renews, if it is a renewal. */
    renewalOf: hexBytes.optional(),
  })
  .strict();
/** `approval` and `rejection`: the custodian's signed approval envelope, exactly as received. */
export const DecisionBodySchema = z
  .object({ requestId: z.string().uuid(), custodian: z.string(), envelope: SignedEnvelopeSchema })
  .strict();
export const SigningJobBodySchema = z
  .object({
    jobId: z.string().uuid(),
    kind: JobKindSchema,
    subjectRef: z.string(),
    tbsSha256: hex64,
    /** The bytes to be signed (TBSCertificate or TBSCertList), DER hex. */
    tbs: hexBytes,
    eligible: z.array(z.string()),
  })
  .strict();
export const SignatureBodySchema = z
  .object({
    jobId: z.string().uuid(),
    kind: JobKindSchema,
    attempt: z.number().int().nonnegative(),
    signers: z.array(z.string()),
    /** The aggregate Ed25519 signature (RFC 8032), hex. */
    signature: z.string().regex(/^[0-9a-f]{128}$/),
    /** The signers' `sign/share` envelopes, exactly as received. */
    shares: z.array(SignedEnvelopeSchema),
  })
  .strict();
export const IssuanceBodySchema = z
  .object({
    requestId: z.string().uuid(),
    jobId: z.string().uuid(),
    serial: hexBytes,
    /** The certificate, DER base64. */
    certificate: base64,
  })
  .strict();
export const RevocationBodySchema = z
  .object({
    serial: hexBytes,
    requestId: z.string().uuid(),
    reason: z.string(),
    revokedAt: z.string().datetime(),
    revokedBy: z.string(),
  })
  .strict();
export const CrlBodySchema = z
  .object({
    jobId: z.string().uuid(),
    number: z.string().regex(/^[1-9][0-9]*$/),
    thisUpdate: z.string().datetime(),
    nextUpdate: z.string().datetime(),
    /** The CRL, DER base64. */
    crl: base64,
  })
  .strict();
export const CeremonyBodySchema = z.discriminatedUnion("event", [
  z
    .object({ event: z.literal("started"), ceremonyId: z.string(), announcement: AnnouncementSchema })
    .strict(),
  /** All n custodians confirmed one public key package: their `dkg/confirm` envelopes, as received. */
  z
    .object({
      event: z.literal("key"),
      ceremonyId: z.string(),
      publicKey: z.string().regex(/^[0-9a-f]{64}$/),
      caKeyId: hex64,
      confirmations: z.array(SignedEnvelopeSchema),
    })
    .strict(),
  z
    .object({
      event: z.literal("complete"),
      ceremonyId: z.string(),
      publicKey: z.string().regex(/^[0-9a-f]{64}$/),
      caKeyId: hex64,
      /** The root certificate, DER base64. */
      certificate: base64,
    })
    .strict(),
  z.object({ event: z.literal("failed"), ceremonyId: z.string(), reason: z.string() }).strict(),
  /**
   * Intermediate mode (docs/intermediate.md): an admin installed a CA certificate an external root
   * issued for the CA key, with its chain (issuer first, root last), all DER base64.
   */
  z
    .object({
      event: z.literal("ca-certificate"),
      publicKey: z.string().regex(/^[0-9a-f]{64}$/),
      caKeyId: hex64,
      certificate: base64,
      chain: z.array(base64),
      installedBy: z.string(),
    })
    .strict(),
]);
/**
 * The key lifecycle (docs/key-lifecycle.md): a custodian's signature on a roster change (checkable
 * offline against the roster it changes), and refresh, reshare and repair ceremonies: the plan, the
 * receivers' signed confirmations of the new public package and key state, or why it failed.
 */
export const LifecycleAuditBodySchema = z.discriminatedUnion("event", [
  z
    .object({
      event: z.literal("roster-signature"),
      statement: RosterChangeStatementSchema,
      signature: RosterSignatureSchema,
    })
    .strict(),
  z
    .object({ event: z.literal("lifecycle-started"), ceremonyId: z.string(), plan: LifecyclePlanSchema })
    .strict(),
  z
    .object({
      event: z.literal("lifecycle-complete"),
      ceremonyId: z.string(),
      keyState: KeyStateSchema,
      publicPackage: z.unknown(),
      confirmations: z.array(SignedEnvelopeSchema),
    })
    .strict(),
  z
    .object({
      event: z.literal("lifecycle-failed"),
      ceremonyId: z.string(),
      reason: z.string(),
      culprits: z.array(z.string()),
    })
    .strict(),
]);
export type RequestBody = z.infer<typeof RequestBodySchema>;
export type DecisionBody = z.infer<typeof DecisionBodySchema>;
export type SigningJobBody = z.infer<typeof SigningJobBodySchema>;
export type SignatureBody = z.infer<typeof SignatureBodySchema>;
export type IssuanceBody = z.infer<typeof IssuanceBodySchema>;
export type RevocationBody = z.infer<typeof RevocationBodySchema>;
export type CrlBody = z.infer<typeof CrlBodySchema>;
export type CeremonyBody = z.infer<typeof CeremonyBodySchema>;

/** `GET /api/v1/audit?after=N&limit=M`: a page of entries in order, and the chain's head. */
export const AuditPageSchema = z
  .object({
    entries: z.array(AuditEntrySchema),
    head: z
      .object({ seq: z.number().int().min(1), hash: hex64 })
      .strict()
      .nullable(),
  })
  .strict();
export type AuditPage = z.infer<typeof AuditPageSchema>;
export const AUDIT_PAGE_MAX = 1000;

/**
 * SHA-256 over the domain, the previous entry's hash and the canonical JSON of the entry without
 * its hash (which holds `prev` too), lowercase hex.
 */
export function auditHash(prevHex: string, entryWithoutHash: AuditEntryWithoutHash): string {
  const { seq, at, kind, subject, body, prev } = entryWithoutHash;
  return sha256Hex(`${DOMAIN}${prevHex}\n${canonicalJson({ seq, at, kind, subject, body, prev })}`);
}

/** The entry that follows `prev` (null for the first), with its hash. */
export function chainEntry(
  prev: { seq: number; hash: string } | null,
  e: { at: string; kind: AuditKind; subject?: string; body: unknown },
): AuditEntry {
  const base: AuditEntryWithoutHash = {
    seq: (prev?.seq ?? 0) + 1,
    at: e.at,
    kind: e.kind,
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    // Through JSON once, so the hash is over exactly what a reader of the exported file sees.
    body: JSON.parse(canonicalJson(e.body)) as unknown,
    prev: prev?.hash ?? AUDIT_GENESIS,
  };
  return { ...base, hash: auditHash(base.prev, base) };
}

/**
 * JSON lines, one entry a line (what `tca audit export` writes). A line that is not JSON is kept as a
 * value that fails the entry schema, so the verifier names it at its place in the chain.
 */
export function parseAuditLines(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      out.push({ unparseable: line.slice(0, 80) });
    }
  }
  return out;
}

export interface AuditVerdict {
  ok: boolean;
  /** Entries checked (all of them when ok; those before the broken one otherwise). */
  checked: number;
  firstBroken?: { seq: number; reason: string };
  /** Certificates whose issuance checked (leaf certificates; the root is not counted). */
  certificates: number;
  checkpoints: number;
  /** The last entry checked, if any. */
  head?: { seq: number; hash: string };
  /** What checked only in a weaker sense, e.g. revocations of certificates older than the chain. */
  notes?: string[];
}

export interface AuditVerifyOptions {
  /**
   * The CA's ca-config: the roster (whose keys must have signed every statement) and the threshold
   * in force at the END of the chain. A chain with key lifecycle entries starts under the roster its
   * first plan names and follows each custodian-signed roster change (docs/key-lifecycle.md).
   */
  config: CaConfig;
  /**
   * The entries are only the first part of the chain (the console checks a bounded prefix): the
   * roster in force after them may still change later, so it is not compared with ca-config.
   */
  prefix?: boolean;
  /**
   * The CA public key (raw 32 bytes), for a chain that starts after its key ceremony; otherwise it is
   * taken from the ceremony's `key` entry, which the n custodians' confirmations prove.
   */
  caPublicKey?: Uint8Array;
}

/** What verifyCheckpoint sees: everything the verifier knows at that entry. */
export interface CheckpointContext {
  config: CaConfig;
  roster: ReadonlyMap<string, string>;
  caPublicKey: Uint8Array | null;
  caKeyId: string | null;
  /** The hash of entry `seq` if it comes before the checkpoint (all of those already checked). */
  hashAt: (seq: number) => string | undefined;
}

class Broken extends Error {}
const broken = (reason: string): never => {
  throw new Broken(reason);
};

const caKeyIdOf = (pub: Uint8Array): string => sha256Hex(ed25519Spki(pub));
const digits = (hex: string): string => hex.toLowerCase().replace(/^0+/, "");

const short = (digest: string): string => `${digest.slice(0, 16)}…`;

/**
 * The roster in force at the chain's first entry. The verifier walks forward, but ca-config names
 * the roster at the END of the chain (docs/key-lifecycle.md): when the chain holds key lifecycle
 * entries, the first plan's oldRoster is the roster in force when it was planned, and so from the
 * start (only a completed lifecycle ceremony changes it). It is read only from the part of the
 * chain whose links and hashes hold. It is not trusted on its own word: every change away from it
 * is checked forward (t valid signatures of the roster in force, every receiver's confirmation
 * under the plan's keys) and the chain must end at ca-config's roster.
 */
function startRoster(entries: readonly unknown[], config: CaConfig): { roster: Roster; seq: number | null } {
  let prevHash = AUDIT_GENESIS;
  for (const [i, raw] of entries.entries()) {
    const p = AuditEntrySchema.safeParse(raw);
    if (
      !p.success ||
      p.data.seq !== i + 1 ||
      p.data.prev !== prevHash ||
      auditHash(p.data.prev, p.data) !== p.data.hash
    )
      break;
    prevHash = p.data.hash;
    if (p.data.kind !== "lifecycle") continue;
    const b = LifecycleAuditBodySchema.safeParse(p.data.body);
    if (b.success && b.data.event === "lifecycle-started")
      return { roster: b.data.plan.oldRoster, seq: p.data.seq };
  }
  return { roster: rosterOf(config), seq: null };
}

interface RequestState {
  tbsSha256: string;
  serial: string;
  approvals: Map<string, { caKeyId: string }>;
  rejectedBy?: string;
  issued: boolean;
}

/**
 * Checks a whole chain offline, in order, and names the first entry that does not check: links and
 * hashes; every custodian's envelope against the roster; every certificate against the request's
 * TBS hash, the CA key and `threshold` distinct custodians' approvals of exactly that hash recorded
 * before it; every CRL against the CA key. See docs/audit.md for what this proves.
 */
export function verifyAuditChain(entries: readonly unknown[], o: AuditVerifyOptions): AuditVerdict {
  // The roster in force, its signing keys and threshold: they change at a lifecycle-complete entry
  // whose plan changes the roster (a repair's new identity keys, a reshare's new committee and t).
  const start = startRoster(entries, o.config);
  let inForce: Roster = start.roster;
  let roster: ReadonlyMap<string, string> = rosterSigningKeys(inForce);
  let threshold = inForce.threshold;
  /** The entry that made the roster in force what it is (null: ca-config's, unchanged). */
  let rosterSetAt: number | null = start.seq;
  /** The ceremony that made the key state in force (the DKG, then each lifecycle ceremony), its epoch and package. */
  let basis: string | null = null;
  let epoch: number | null = null;
  let packageDigest: string | null = null;
  const lifecycles = new Map<string, { plan: LifecyclePlan; ended: boolean }>();
  let caPublicKey: Uint8Array | null = o.caPublicKey ?? null;
  let caKeyId: string | null = caPublicKey ? caKeyIdOf(caPublicKey) : null;
  const requests = new Map<string, RequestState>();
  const jobs = new Map<
    string,
    {
      kind: string;
      subjectRef: string;
      tbs: Uint8Array;
      /** How many serials were revoked when the job began: a prefix of `revokedInOrder`. */
      revokedAtStart: number;
      signature?: string;
    }
  >();
  const requestSerials = new Map<string, string>(); // serial (digits) → request id
  const issuedSerials = new Map<string, string>(); // serial (digits) → request id
  // Serials (digits) revoked so far, each once, in chain order: append-only, so a job keeps only the
  // length at its start and a CRL is checked against that prefix (no copy per job).
  const revoked = new Set<string>();
  const revokedInOrder: string[] = [];
  let lastCrl = 0n;
  let certificates = 0;
  let checkpoints = 0;
  let prev: AuditEntry | undefined;
  // A chain with no ceremony entry began after the CA did (a CA upgraded from a tca without the audit
  // log, docs/audit.md): its revocations may name certificates issued before the chain's first entry.
  const beganLater = !entries.some(
    (x) => typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "ceremony",
  );
  const olderRevocations: number[] = []; // seqs of revocations of serials the chain never issued
  // In such a chain, entries about a request or signing job that was already in flight when the
  // chain began (its `request` or `signing-job` entry predates the chain) cannot be checked: they
  // are counted, and named in a note, instead of breaking the chain. Their certificates are not
  // counted as verified.
  const olderWork: number[] = [];
  const preChain = (seq: number): boolean => {
    if (!beganLater) return false;
    olderWork.push(seq);
    return true;
  };
  const notesOf = (): { notes?: string[] } => {
    const notes: string[] = [];
    if (olderRevocations.length > 0)
      notes.push(
        `${olderRevocations.length} revocation${olderRevocations.length === 1 ? " names a serial" : "s name serials"} that no issuance in the chain carries (first at entry ${olderRevocations[0]}): accepted because the chain has no ceremony entry, so it began after the CA did`,
      );
    if (olderWork.length > 0)
      notes.push(
        `${olderWork.length} entr${olderWork.length === 1 ? "y is" : "ies are"} about a request or signing job from before the chain began (first at entry ${olderWork[0]}): not checked, because the chain has no ceremony entry, so it began after the CA did`,
      );
    return notes.length ? { notes } : {};
  };

  const open = (env: unknown, expected: Parameters<typeof openEnvelope>[2]): EnvelopeHeader => {
    try {
      return openEnvelope(env, roster, expected);
    } catch (e) {
      if (e instanceof ProtocolError) return broken(e.message);
      throw e;
    }
  };
  const needKey = (what: string): Uint8Array =>
    caPublicKey ?? broken(`${what}, but no CA key is known yet (no ceremony key entry before it)`);
  const parse = <T>(schema: z.ZodType<T>, body: unknown, kind: string): T => {
    const r = schema.safeParse(body);
    return r.success ? r.data : broken(`malformed ${kind} body: ${r.error.issues[0]?.message ?? "invalid"}`);
  };

  /**
   * A lifecycle plan must start from the state in force: its roster, CA key, epoch and package; a
   * plan that changes the roster carries a change to exactly its new roster signed by t members of
   * the roster in force, for the key state in force (checkRosterChange, docs/key-lifecycle.md).
   */
  const planFitsState = (p: LifecyclePlan): void => {
    const what = `${p.kind} ceremony ${p.ceremonyId}`;
    if (caKeyId !== null && p.caKeyId !== caKeyId) broken(`${what} is for another CA key`);
    const from = rosterDigest(p.oldRoster);
    if (from !== rosterDigest(inForce))
      broken(
        `${what} starts from roster ${short(from)}; the roster in force is ${short(rosterDigest(inForce))}`,
      );
    if (epoch !== null && p.fromEpoch !== epoch)
      broken(`${what} starts from epoch ${p.fromEpoch}; the epoch in force is ${epoch}`);
    if (packageDigest !== null && p.publicPackageDigest !== packageDigest)
      broken(`${what} starts from another public key package than the one in force`);
    if (rosterDigest(p.newRoster) === from) {
      if (p.rosterChange !== null) broken(`${what} keeps the roster but carries a roster change`);
      return;
    }
    const change = p.rosterChange ?? broken(`${what} changes the roster but carries no signed roster change`);
    if (change.statement.to !== rosterDigest(p.newRoster))
      broken(`the roster change ${what} carries is to another roster than its new one`);
    const check = checkRosterChange(change, inForce, p.caKeyId, basis ?? undefined);
    if (!check.ok)
      broken(
        `the roster change of ${what} is not approved by the roster in force: ${check.reason}${check.signers.length ? ` (valid signatures: ${check.signers.join(", ")})` : ""}`,
      );
  };

  for (const [i, raw] of entries.entries()) {
    try {
      const parsed = AuditEntrySchema.safeParse(raw);
      if (!parsed.success) broken("not a well-formed audit entry");
      const e = parsed.data!;
      if (e.seq !== i + 1)
        broken(
          e.seq > i + 1
            ? `entry ${i + 1} is missing (entry ${e.seq} follows entry ${i})`
            : `entry ${e.seq} is out of place: entry ${i + 1} belongs here`,
        );
      const expectedPrev = prev?.hash ?? AUDIT_GENESIS;
      if (e.prev !== expectedPrev) broken(`its prev does not match the hash of entry ${i}`);
      if (auditHash(e.prev, e) !== e.hash) broken("its hash does not match its contents");

      switch (e.kind) {
        case "request": {
          const b = parse(RequestBodySchema, e.body, "request");
          if (sha256Hex(Buffer.from(b.tbs, "hex")) !== b.tbsSha256)
            broken(`request ${b.requestId}: tbsSha256 is not the SHA-256 of its TBS`);
          if (requests.has(b.requestId)) broken(`request ${b.requestId} is recorded twice`);
          // A serial names one certificate of this CA (RFC 5280 §4.1.2.2): two requests for one serial
          // would mean two certificates that revocation and CRLs cannot tell apart.
          const earlier = requestSerials.get(digits(b.serial));
          if (earlier !== undefined) broken(`serial ${b.serial} is already request ${earlier}'s`);
          requestSerials.set(digits(b.serial), b.requestId);
          requests.set(b.requestId, {
            tbsSha256: b.tbsSha256,
            serial: b.serial,
            approvals: new Map(),
            issued: false,
          });
          break;
        }
        case "approval":
        case "rejection": {
          const b = parse(DecisionBodySchema, e.body, e.kind);
          if (!requests.has(b.requestId) && preChain(e.seq)) break;
          const r =
            requests.get(b.requestId) ??
            broken(`${e.kind} for request ${b.requestId}, which is not recorded before it`);
          const h = open(b.envelope, {
            type: "approval",
            scope: b.requestId,
            recipient: "coordinator",
            ...(caKeyId ? { caKeyId } : {}),
          });
          if (h.sender !== b.custodian)
            broken(`the envelope is signed by ${h.sender}, the entry says ${b.custodian}`);
          const st = ApprovalStatementSchema.safeParse(h.body);
          if (!st.success) broken(`${h.sender}'s approval statement is malformed`);
          const a = st.data!;
          if (a.requestId !== b.requestId) broken(`${h.sender}'s statement is about request ${a.requestId}`);
          if (a.caKeyId !== h.caKeyId)
            broken(`${h.sender}'s statement names another CA key than its envelope`);
          if (a.tbsSha256 !== r.tbsSha256)
            broken(
              `${h.sender} approved TBS ${a.tbsSha256.slice(0, 16)}…, request ${b.requestId} has ${r.tbsSha256.slice(0, 16)}…`,
            );
          if ((a.decision === "approve") !== (e.kind === "approval"))
            broken(`the entry is a ${e.kind}, ${h.sender}'s statement says ${a.decision}`);
          if (a.decision === "approve") r.approvals.set(h.sender, { caKeyId: a.caKeyId });
          else r.rejectedBy ??= h.sender;
          break;
        }
        case "signing-job": {
          const b = parse(SigningJobBodySchema, e.body, "signing-job");
          const tbs = Buffer.from(b.tbs, "hex");
          if (sha256Hex(tbs) !== b.tbsSha256)
            broken(`job ${b.jobId}: tbsSha256 is not the SHA-256 of its TBS`);
          if (b.kind === "leaf" && !requests.has(b.subjectRef) && preChain(e.seq)) break;
          if (b.kind === "leaf") {
            const r =
              requests.get(b.subjectRef) ??
              broken(`leaf job for request ${b.subjectRef}, which is not recorded before it`);
            if (r.tbsSha256 !== b.tbsSha256)
              broken(`job ${b.jobId} signs another TBS than request ${b.subjectRef}'s`);
          }
          for (const c of b.eligible)
            if (!roster.has(c)) broken(`job ${b.jobId} names ${c}, who is not in the roster`);
          if (jobs.has(b.jobId)) broken(`job ${b.jobId} is recorded twice`);
          jobs.set(b.jobId, {
            kind: b.kind,
            subjectRef: b.subjectRef,
            tbs,
            revokedAtStart: revokedInOrder.length,
          });
          break;
        }
        case "signature": {
          const b = parse(SignatureBodySchema, e.body, "signature");
          if (!jobs.has(b.jobId) && preChain(e.seq)) break;
          const j =
            jobs.get(b.jobId) ?? broken(`signature for job ${b.jobId}, which is not recorded before it`);
          if (j.kind !== b.kind) broken(`job ${b.jobId} is a ${j.kind} job, the entry says ${b.kind}`);
          const key = needKey(`a signature for job ${b.jobId}`);
          if (!verifyEd25519(Buffer.from(b.signature, "hex"), j.tbs, key))
            broken(`the signature of job ${b.jobId} does not verify under the CA key`);
          for (const env of b.shares) {
            const h = open(env, { type: "sign/share", scope: b.jobId, recipient: "coordinator" });
            const share = ShareBodySchema.safeParse(h.body);
            if (!share.success || share.data.attempt !== b.attempt)
              broken(`${h.sender}'s share envelope is not for attempt ${b.attempt}`);
            if (!b.signers.includes(h.sender)) broken(`${h.sender} sent a share but is not a signer`);
          }
          j.signature = b.signature;
          break;
        }
        case "issuance": {
          const b = parse(IssuanceBodySchema, e.body, "issuance");
          if (!requests.has(b.requestId) && preChain(e.seq)) break;
          const r =
            requests.get(b.requestId) ??
            broken(`issuance for request ${b.requestId}, which is not recorded before it`);
          if (r.issued) broken(`request ${b.requestId} is issued twice`);
          const der = new Uint8Array(Buffer.from(b.certificate, "base64"));
          let tbs: Uint8Array;
          let serial: string;
          try {
            tbs = splitCertificate(der).tbs;
            serial = new X509Certificate(Buffer.from(der)).serialNumber;
          } catch (err) {
            return brokenVerdict(`the certificate does not parse: ${(err as Error).message}`);
          }
          if (sha256Hex(tbs) !== r.tbsSha256)
            broken(`the certificate's TBS is not the one request ${b.requestId} recorded (SHA-256 differs)`);
          if (digits(serial) !== digits(r.serial) || digits(b.serial) !== digits(r.serial))
            broken(`the certificate's serial is not request ${b.requestId}'s`);
          const key = needKey("a certificate is issued");
          if (!verifyCertificateSignature(der, key))
            broken("the certificate does not verify under the CA key");
          if (r.rejectedBy)
            broken(`request ${b.requestId} was rejected by ${r.rejectedBy} before this issuance`);
          // t distinct custodians must have approved exactly this TBS, for this request and CA key.
          // Each approval names the ca-config digest its custodian judged under (docs/architecture.md
          // §3.3) and was valid under it; a ca-config edit between two approvals leaves them under two
          // digests, and the coordinator rightly counts both, so the digest is not grouped on here.
          // Only members of the roster in force count: a custodian a reshare removed no longer decides.
          const approvers = [...r.approvals]
            .filter(([who, a]) => a.caKeyId === caKeyId && roster.has(who))
            .map(([who]) => who)
            .sort();
          if (approvers.length < threshold)
            broken(
              `certificate for request ${b.requestId} has ${approvers.length} approval${approvers.length === 1 ? "" : "s"} of its TBS before it (${approvers.join(", ") || "none"}); ${threshold} are needed`,
            );
          const holder = issuedSerials.get(digits(r.serial));
          if (holder !== undefined) broken(`serial ${b.serial} was already issued to request ${holder}`);
          r.issued = true;
          issuedSerials.set(digits(r.serial), b.requestId);
          certificates++;
          break;
        }
        case "revocation": {
          const b = parse(RevocationBodySchema, e.body, "revocation");
          const owner = issuedSerials.get(digits(b.serial));
          if (owner === undefined && beganLater && !requestSerials.has(digits(b.serial)))
            olderRevocations.push(e.seq);
          else if (owner === undefined)
            broken(`revocation of serial ${b.serial}, which no earlier issuance carries`);
          else if (owner !== b.requestId)
            broken(`serial ${b.serial} belongs to request ${owner}, not ${b.requestId}`);
          if (!revoked.has(digits(b.serial))) {
            revoked.add(digits(b.serial));
            revokedInOrder.push(digits(b.serial));
          }
          break;
        }
        case "crl": {
          const b = parse(CrlBodySchema, e.body, "crl");
          if (!jobs.has(b.jobId) && preChain(e.seq)) break;
          const j = jobs.get(b.jobId) ?? broken(`CRL of job ${b.jobId}, which is not recorded before it`);
          if (j.kind !== "crl") broken(`job ${b.jobId} is a ${j.kind} job, not a CRL job`);
          const der = new Uint8Array(Buffer.from(b.crl, "base64"));
          let crl;
          try {
            crl = readCrl(der);
          } catch (err) {
            return brokenVerdict(`the CRL does not parse: ${(err as Error).message}`);
          }
          if (Buffer.compare(Buffer.from(crl.tbs), Buffer.from(j.tbs)) !== 0)
            broken(`the CRL is not the TBSCertList job ${b.jobId} signed`);
          if (crl.crlNumber.toString() !== b.number)
            broken(`the CRL's number is ${crl.crlNumber}, the entry says ${b.number}`);
          if (crl.crlNumber <= lastCrl)
            broken(`CRL number ${crl.crlNumber} does not exceed the previous ${lastCrl}`);
          if (!verifyCrlSignature(der, needKey("a CRL is published")))
            broken("the CRL does not verify under the CA key");
          const listed = new Set(crl.entries.map((x) => digits(x.serial)));
          for (const s of revokedInOrder.slice(0, j.revokedAtStart))
            if (!listed.has(s)) broken(`the CRL leaves out serial ${s}, revoked before its job began`);
          lastCrl = crl.crlNumber;
          break;
        }
        case "ceremony": {
          const b = parse(CeremonyBodySchema, e.body, "ceremony");
          if (b.event === "key") {
            const confirmed = new Set<string>();
            for (const env of b.confirmations) {
              const h = open(env, { type: "dkg/confirm", scope: b.ceremonyId, caKeyId: null });
              const c = ConfirmBodySchema.safeParse(h.body);
              if (!c.success) broken(`${h.sender}'s confirmation is malformed`);
              let pub;
              try {
                pub = publicFromWire(c.data!.publicPackage);
              } catch {
                return brokenVerdict(`${h.sender}'s public key package is malformed`);
              }
              if (publicPackageHash(b.ceremonyId, pub) !== c.data!.publicPackageHash)
                broken(`${h.sender}'s confirmation does not hash its own package`);
              if (Buffer.from(groupPublicKey(pub)).toString("hex") !== b.publicKey)
                broken(`${h.sender} confirmed another CA key than the entry's`);
              const ids = [...roster.keys()].map(identifierForName).sort();
              if (
                canonicalJson(Object.keys(c.data!.publicPackage.verifyingShares).sort()) !==
                canonicalJson(ids)
              )
                broken(`${h.sender}'s public key package does not fit the roster`);
              confirmed.add(h.sender);
            }
            for (const name of roster.keys())
              if (!confirmed.has(name))
                broken(`${name} did not confirm the CA key (all ${roster.size} must)`);
            const pub = new Uint8Array(Buffer.from(b.publicKey, "hex"));
            if (caKeyIdOf(pub) !== b.caKeyId) broken("caKeyId is not the SHA-256 of the key's SPKI");
            if (caPublicKey && Buffer.compare(Buffer.from(caPublicKey), Buffer.from(pub)) !== 0)
              broken("a second CA key, different from the one known");
            caPublicKey = pub;
            caKeyId = b.caKeyId;
            // The key state the DKG makes: epoch 0, named by the ceremony (docs/key-lifecycle.md).
            basis = b.ceremonyId;
            epoch = 0;
          } else if (b.event === "complete") {
            const key = needKey("the ceremony completes");
            if (Buffer.from(key).toString("hex") !== b.publicKey)
              broken("the root's CA key is not the confirmed one");
            const der = new Uint8Array(Buffer.from(b.certificate, "base64"));
            if (!verifyCertificateSignature(der, key))
              broken("the root certificate does not verify under the CA key");
          } else if (b.event === "ca-certificate") {
            // The certificate must be for the CA key; the chain is what the coordinator checked then.
            const key = needKey("a CA certificate is installed");
            if (Buffer.from(key).toString("hex") !== b.publicKey)
              broken("the installed CA certificate's entry names another CA key");
            let spki: Buffer;
            try {
              spki = new X509Certificate(Buffer.from(b.certificate, "base64")).publicKey.export({
                format: "der",
                type: "spki",
              });
            } catch (err) {
              return brokenVerdict(`the installed CA certificate does not parse: ${(err as Error).message}`);
            }
            if (!spki.equals(Buffer.from(ed25519Spki(key))))
              broken("the installed CA certificate is for another key than the CA's");
          } else if (b.event === "started") {
            if (b.announcement.threshold !== threshold)
              broken(
                `the ceremony announced threshold ${b.announcement.threshold}, the ca-config says ${threshold}`,
              );
          }
          break;
        }
        case "lifecycle": {
          const b = parse(LifecycleAuditBodySchema, e.body, "lifecycle");
          if (b.event === "roster-signature") {
            // What the coordinator accepted: a member's signature on a change from the key state
            // in force (docs/key-lifecycle.md "Roster changes"), checkable offline here.
            const s = b.statement;
            const who = b.signature.signer;
            if (caKeyId !== null && s.caKeyId !== caKeyId)
              broken(`${who} signed a roster change for another CA key`);
            if (s.from !== rosterDigest(inForce))
              broken(
                `${who} signed a roster change from roster ${short(s.from)}; the roster in force is ${short(rosterDigest(inForce))}`,
              );
            if (basis !== null && s.basis !== basis)
              broken(
                `${who} signed a roster change for the key state made by ${s.basis}, not the one in force (${basis})`,
              );
            const key =
              roster.get(who) ?? broken(`${who} signed a roster change but is not in the roster in force`);
            if (
              !verifyEd25519(
                new Uint8Array(Buffer.from(b.signature.signature, "base64url")),
                rosterChangeBytes(s),
                new Uint8Array(Buffer.from(key, "base64url")),
              )
            )
              broken(`${who}'s signature on the roster change to ${short(s.to)} does not verify`);
          } else if (b.event === "lifecycle-started") {
            const p = b.plan;
            if (p.ceremonyId !== b.ceremonyId)
              broken(`the entry is about ${b.ceremonyId}, its plan is ${p.ceremonyId}`);
            if (lifecycles.has(p.ceremonyId)) broken(`lifecycle ceremony ${p.ceremonyId} is started twice`);
            for (const [other, l] of lifecycles)
              if (!l.ended) broken(`lifecycle ceremony ${other} has not ended when ${p.ceremonyId} starts`);
            planFitsState(p);
            lifecycles.set(p.ceremonyId, { plan: p, ended: false });
          } else if (b.event === "lifecycle-complete") {
            const l =
              lifecycles.get(b.ceremonyId) ??
              broken(`lifecycle ceremony ${b.ceremonyId} completes, but its plan is not recorded before it`);
            if (l.ended) broken(`lifecycle ceremony ${b.ceremonyId} has ended already`);
            const p = l.plan;
            // Nothing may have changed the state in force since the plan (one ceremony at a time).
            planFitsState(p);
            const ks = b.keyState;
            if (
              ks.ceremonyId !== p.ceremonyId ||
              ks.epoch !== p.toEpoch ||
              ks.rosterDigest !== rosterDigest(p.newRoster) ||
              rosterDigest(ks.roster) !== ks.rosterDigest
            )
              broken(
                `the key state ${p.kind} ceremony ${p.ceremonyId} records is not the one its plan makes`,
              );
            const wire = PublicPackageWireSchema.safeParse(b.publicPackage);
            if (!wire.success)
              broken(`the public key package ${p.kind} ceremony ${p.ceremonyId} made is malformed`);
            let pub;
            try {
              pub = publicFromWire(wire.data!);
            } catch {
              return brokenVerdict(
                `the public key package ${p.kind} ceremony ${p.ceremonyId} made is malformed`,
              );
            }
            if (publicPackageDigest(pub) !== ks.publicPackageDigest)
              broken("the key state's publicPackageDigest is not the digest of the entry's package");
            if (p.kind === "repair" && ks.publicPackageDigest !== p.publicPackageDigest)
              broken("a repair changed the public key package");
            if (
              caPublicKey &&
              Buffer.compare(Buffer.from(groupPublicKey(pub)), Buffer.from(caPublicKey)) !== 0
            )
              broken(`${p.kind} ceremony ${p.ceremonyId} made a package for another CA key`);
            const ids = p.newRoster.custodians.map((c) => identifierForName(c.name)).sort();
            if (canonicalJson(Object.keys(wire.data!.verifyingShares).sort()) !== canonicalJson(ids))
              broken(`the package ${p.kind} ceremony ${p.ceremonyId} made does not fit its new roster`);
            // Every receiver confirmed exactly this package, signed with its key in the plan (the new
            // keys for a name the plan re-keys): the new roster's own word for the change.
            const keys = planSigningKeys(p);
            const confirmed = new Set<string>();
            for (const env of b.confirmations) {
              let h: EnvelopeHeader;
              try {
                h = openEnvelope(env, keys, { type: "lc/confirm", scope: p.ceremonyId, caKeyId: p.caKeyId });
              } catch (err) {
                if (err instanceof ProtocolError)
                  return brokenVerdict(
                    `a confirmation of ${p.kind} ceremony ${p.ceremonyId}: ${err.message}`,
                  );
                throw err;
              }
              if (!p.receivers.includes(h.sender))
                broken(`${h.sender} confirmed ${p.kind} ceremony ${p.ceremonyId} but is not a receiver`);
              const c = LcConfirmBodySchema.safeParse(h.body);
              if (
                !c.success ||
                c.data.publicPackageDigest !== ks.publicPackageDigest ||
                canonicalJson(c.data.publicPackage) !== canonicalJson(wire.data)
              )
                broken(
                  `${h.sender} confirmed another public key package than the one ${p.kind} ceremony ${p.ceremonyId} made`,
                );
              confirmed.add(h.sender);
            }
            for (const r of p.receivers)
              if (!confirmed.has(r))
                broken(`${r} did not confirm ${p.kind} ceremony ${p.ceremonyId} (every receiver must)`);
            l.ended = true;
            if (rosterDigest(p.newRoster) !== rosterDigest(inForce)) {
              inForce = p.newRoster;
              roster = rosterSigningKeys(inForce);
              threshold = inForce.threshold;
              rosterSetAt = e.seq;
            }
            basis = p.ceremonyId;
            epoch = p.toEpoch;
            packageDigest = ks.publicPackageDigest;
          } else {
            const l =
              lifecycles.get(b.ceremonyId) ??
              broken(`lifecycle ceremony ${b.ceremonyId} fails, but its plan is not recorded before it`);
            if (l.ended) broken(`lifecycle ceremony ${b.ceremonyId} has ended already`);
            l.ended = true; // nothing it made is used: the state in force stays
          }
          break;
        }
        case "checkpoint": {
          const why = verifyCheckpoint(e, {
            config: o.config,
            roster,
            caPublicKey,
            caKeyId,
            // Entries 1..i are checked, and seq is contiguous from 1: entry n is entries[n − 1].
            hashAt: (n) =>
              Number.isSafeInteger(n) && n >= 1 && n <= i ? (entries[n - 1] as AuditEntry).hash : undefined,
          });
          if (why !== undefined) broken(why);
          checkpoints++;
          break;
        }
      }
      prev = e;
    } catch (err) {
      if (err instanceof Broken) return brokenVerdict(err.message);
      throw err;
    }

    function brokenVerdict(reason: string): AuditVerdict {
      return {
        ok: false,
        checked: i,
        // The place in the chain: the entry found there, or the one missing from it.
        firstBroken: { seq: i + 1, reason },
        certificates,
        checkpoints,
        ...(prev ? { head: { seq: prev.seq, hash: prev.hash } } : {}),
        ...notesOf(),
      };
    }
  }
  // ca-config names the roster at the end of the chain: the roster the chain's own changes lead to.
  const want = rosterDigest(rosterOf(o.config));
  if (!o.prefix && rosterDigest(inForce) !== want) {
    const at = rosterSetAt ?? entries.length;
    return {
      ok: false,
      checked: at - 1,
      firstBroken: {
        seq: at,
        reason: `the chain ends with roster ${short(rosterDigest(inForce))} (${inForce.threshold} of ${inForce.custodians.map((c) => c.name).join(", ")}, in force from entry ${at}); the ca-config given has roster ${short(want)} (${o.config.threshold} of ${o.config.custodians.map((c) => c.name).join(", ")})`,
      },
      certificates,
      checkpoints,
      ...(prev ? { head: { seq: prev.seq, hash: prev.hash } } : {}),
      ...notesOf(),
    };
  }
  return {
    ok: true,
    checked: entries.length,
    certificates,
    checkpoints,
    ...(prev ? { head: { seq: prev.seq, hash: prev.hash } } : {}),
    ...notesOf(),
  };
}
