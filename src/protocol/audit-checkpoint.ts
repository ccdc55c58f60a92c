// Checkpoints of the audit chain (docs/audit.md): the custodians threshold-sign the chain's head, so a
// coordinator that later shows a different history up to that entry — or a shorter one that still
// holds the checkpoint — is caught by anyone with the CA key. A checkpoint is a signing job like a CRL
// (docs/architecture.md §3.9): any t custodians sign it under the CA key, each only once per sequence
// number (its journal remembers the last one it signed), and the coordinator verifies the aggregate
// under the CA key before it records anything (docs/architecture.md §3.8).
//
// What is signed is not DER: it is the ASCII text below. A TBSCertificate and a TBSCertList (RFC 5280
// §4.1, §5.1) are DER SEQUENCEs and start with the byte 0x30 ('0'); this message starts with 't'
// (0x74), so no checkpoint signature can ever pass for a certificate's or a CRL's signature, nor the
// other way round. The domain line names the format and its version.
import { z } from "zod";
import { verifyEd25519 } from "../common/ed25519.ts";
import { sha256Hex } from "../common/hash.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import type { AuditEntry, CheckpointContext } from "./audit.ts";

export const CHECKPOINT_DOMAIN = "tca/audit-checkpoint/v1";

const HEX64 = /^[0-9a-f]{64}$/;
const MESSAGE =
  /^tca\/audit-checkpoint\/v1\nca=([0-9a-f]{64})\nseq=([1-9][0-9]{0,15})\nhead=([0-9a-f]{64})\n$/;

/** What a checkpoint vouches for: entry `seq` of the audit chain of CA `caKeyId` has hash `head`. */
export interface CheckpointStatement {
  caKeyId: string;
  seq: number;
  head: string;
}

/** Sequence numbers stay exact JSON numbers. */
const SeqSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Parameters of a `checkpoint` signing job: with the CA key id, all a custodian needs to rebuild its bytes. */
export const CheckpointParamsSchema = z
  .object({
    caKeyId: z.string().regex(HEX64),
    seq: SeqSchema,
    head: z.string().regex(HEX64),
  })
  .strict();
export type CheckpointParams = z.infer<typeof CheckpointParamsSchema>;

/**
 * The body of a `checkpoint` entry of the audit chain: the statement, the CA's Ed25519 signature over
 * its message (hex), the signing job and its signers (the coordinator's word; their own share
 * envelopes are in the job's `signature` entry).
 */
export const CheckpointBodySchema = z
  .object({
    caKeyId: z.string().regex(HEX64),
    seq: SeqSchema,
    head: z.string().regex(HEX64),
    signature: z.string().regex(/^[0-9a-f]{128}$/),
    jobId: z.string().min(1).max(200),
    signers: z.array(z.string().max(64)).max(1000),
  })
  .strict();
export type CheckpointBody = z.infer<typeof CheckpointBodySchema>;

/** The exact bytes the custodians sign for a checkpoint (ASCII; see the file comment). */
export function checkpointMessage(s: CheckpointStatement): Uint8Array {
  if (!HEX64.test(s.caKeyId)) throw new TypeError("caKeyId must be 64 lowercase hex digits");
  if (!HEX64.test(s.head)) throw new TypeError("head must be 64 lowercase hex digits");
  if (!Number.isSafeInteger(s.seq) || s.seq < 1) throw new TypeError("seq must be a positive integer");
  return new TextEncoder().encode(`${CHECKPOINT_DOMAIN}\nca=${s.caKeyId}\nseq=${s.seq}\nhead=${s.head}\n`);
}

/**
 * The statement these bytes make, or undefined unless they are exactly a checkpoint message (one
 * spelling per statement: no leading zeros, lowercase hex, each line ended by one LF).
 */
export function parseCheckpointMessage(bytes: Uint8Array): CheckpointStatement | undefined {
  if (bytes.length > 256) return undefined;
  const m = MESSAGE.exec(Buffer.from(bytes).toString("latin1"));
  if (!m) return undefined;
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { caKeyId: m[1]!, seq, head: m[3]! };
}

/** The CA key id of a raw Ed25519 CA public key: SHA-256 of its SubjectPublicKeyInfo (RFC 8410 §4). */
export function checkpointCaKeyId(caPublicKey: Uint8Array): string {
  return sha256Hex(ed25519Spki(caPublicKey));
}

/**
 * The check of one `checkpoint` entry, on what it needs only: its body names this CA and an entry
 * before it, `head` is the hash of that entry in this chain, and the signature verifies under the CA
 * public key over exactly the message for (seq, head). Why not, or undefined when it holds.
 */
export function checkpointProblem(
  body: unknown,
  ctx: {
    /** The checkpoint entry's own sequence number: it can vouch only for entries before it. */
    entrySeq: number;
    /** The CA's raw 32-byte Ed25519 public key, or null while the chain has shown none. */
    caPublicKey: Uint8Array | null;
    /** The hash of entry `seq` of the chain being verified, or undefined if there is none. */
    hashAt: (seq: number) => string | undefined;
  },
): string | undefined {
  const b = CheckpointBodySchema.safeParse(body);
  if (!b.success) return `malformed checkpoint body: ${b.error.issues[0]?.message ?? "invalid"}`;
  const { seq, head, caKeyId, signature } = b.data;
  if (!ctx.caPublicKey) return "a checkpoint, but no CA key is known yet (no ceremony key entry before it)";
  if (caKeyId !== checkpointCaKeyId(ctx.caPublicKey))
    return `the checkpoint names another CA key (${caKeyId})`;
  if (seq >= ctx.entrySeq) return `the checkpoint of entry ${seq} does not come after it`;
  const actual = ctx.hashAt(seq);
  if (actual === undefined) return `the checkpoint names entry ${seq}, which is not in the chain`;
  if (actual !== head)
    return `the checkpoint says entry ${seq} has hash ${head.slice(0, 16)}…, the chain's has ${actual.slice(0, 16)}…`;
  if (
    !verifyEd25519(Buffer.from(signature, "hex"), checkpointMessage({ caKeyId, seq, head }), ctx.caPublicKey)
  )
    return `the checkpoint signature over entry ${seq} does not verify under the CA key`;
  return undefined;
}

/** The hook verifyAuditChain (audit.ts) calls for each `checkpoint` entry: why it does not check, or undefined. */
export function verifyCheckpoint(entry: AuditEntry, ctx: CheckpointContext): string | undefined {
  return checkpointProblem(entry.body, {
    entrySeq: entry.seq,
    caPublicKey: ctx.caPublicKey,
    hashAt: ctx.hashAt,
  });
}

/** The answer to POST /api/v1/audit/checkpoints (admin): what asking for a checkpoint did. */
export const CheckpointRequestSchema = z
  .object({
    /** started: a job for the current head; in-progress: one was running already; current: nothing new to sign. */
    status: z.enum(["started", "in-progress", "current"]),
    jobId: z.string().nullable(),
    /** The entry the checkpoint vouches for (started, in-progress) or vouched for last (current; 0: none yet). */
    seq: z.number().int().min(0),
    head: z.string().regex(HEX64).nullable(),
  })
  .strict();
export type CheckpointRequest = z.infer<typeof CheckpointRequestSchema>;
