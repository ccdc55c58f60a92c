// Key lifecycle ceremonies on the wire (docs/key-lifecycle.md): refresh, reshare and repair of the
// existing CA key's shares. The one definition the coordinator relays with, the custodians parse
// with, and the OpenAPI document's components come from.
//
// A ceremony runs like the DKG: the coordinator announces a plan; every participant checks the plan
// against what it knows itself (its ca-config, its key share, the roster change's signatures),
// then the stages below run with signed envelopes (scope = ceremony id, caKeyId = the CA key id),
// HPKE-sealed shares bound to ceremony, stage, sender and recipient, a consistent-broadcast check
// after round 1, verifiable complaints, and confirmations before anything becomes active.
import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../common/canonical-json.ts";
import { PublicPackageWireSchema } from "../threshold/encoding.ts";
import { RosterSchema, SignedRosterChangeSchema } from "./roster.ts";
import { SealedShareSchema, type SealedShare } from "./dkg-messages.ts";
import { hpkeOpen, hpkeSeal, HPKE_DKG_SHARE_INFO } from "./hpke.ts";
import { bytesToHex, hexToBytes } from "../common/hex.ts";
import { SignedEnvelopeSchema } from "./envelope.ts";
import { LIFECYCLE_KINDS, LIFECYCLE_MESSAGE_TYPES, LIFECYCLE_STATUSES } from "./enums.ts";

const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes} bytes of hex`);
const name = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);

export { LIFECYCLE_KINDS, LIFECYCLE_MESSAGE_TYPES, LIFECYCLE_STATUSES };
export const LifecycleKindSchema = z.enum(LIFECYCLE_KINDS);
export type LifecycleKind = z.infer<typeof LifecycleKindSchema>;
export const LifecycleMessageTypeSchema = z.enum(LIFECYCLE_MESSAGE_TYPES);
export type LifecycleMessageType = z.infer<typeof LifecycleMessageTypeSchema>;
export const LifecycleStatusSchema = z.enum(LIFECYCLE_STATUSES);
export type LifecycleStatus = z.infer<typeof LifecycleStatusSchema>;

/**
 * The key's state at the coordinator: which shares sign (epoch), under which roster. The epoch is
 * 0 after the DKG and grows by one with every refresh or reshare (a repair restores a share of the
 * current epoch). Custodians refuse signing packages of another epoch; the coordinator refuses
 * offers of another epoch.
 */
export const KeyStateSchema = z
  .object({
    epoch: z.number().int().min(0),
    roster: RosterSchema,
    rosterDigest: hex(32),
    /** publicPackageDigest of the public key package in force. */
    publicPackageDigest: hex(32),
    /** The ceremony that made this state (the DKG's id for epoch 0). */
    ceremonyId: z.string(),
    since: z.iso.datetime(),
  })
  .strict();
export type KeyState = z.infer<typeof KeyStateSchema>;

/**
 * What the coordinator announces. Everything a participant needs to check before it takes part:
 * the kind, the old and new rosters (with the signed change when they differ), who deals and who
 * receives, the epochs, and the digest of the public package the dealers' shares belong to.
 */
export const LifecyclePlanSchema = z
  .object({
    ceremonyId: z.uuid(),
    kind: LifecycleKindSchema,
    caKeyId: hex(32),
    fromEpoch: z.number().int().min(0),
    /** fromEpoch + 1 for refresh and reshare; fromEpoch for repair. */
    toEpoch: z.number().int().min(0),
    /** publicPackageDigest of the package in force when the ceremony was planned. */
    publicPackageDigest: hex(32),
    /**
     * The package in force itself: participants without a share of it (new holders in a reshare, the
     * lost custodian in a repair) check dealings against its verifying shares. Every holder checks
     * that its digest is publicPackageDigest and the one its own share belongs to.
     */
    publicPackage: PublicPackageWireSchema,
    oldRoster: RosterSchema,
    newRoster: RosterSchema,
    /** Present exactly when newRoster differs from oldRoster; checked by every participant. */
    rosterChange: SignedRosterChangeSchema.nullable(),
    /** refresh: every old holder; reshare: exactly oldRoster.threshold old holders; repair: the helpers (same count). */
    dealers: z.array(name).min(1).max(64),
    /** refresh: every holder; reshare: every new holder; repair: [lost]. */
    receivers: z.array(name).min(1).max(64),
    /** repair only: whose share is restored. */
    lost: name.nullable(),
    createdAt: z.iso.datetime(),
  })
  .strict();
export type LifecyclePlan = z.infer<typeof LifecyclePlanSchema>;

/** SHA-256 of the plan's canonical JSON: round 1 binds it, so nobody takes part in another plan. */
export function planHash(plan: LifecyclePlan): string {
  return createHash("sha256").update("tca/lifecycle/plan/v1\n").update(canonicalJson(plan)).digest("hex");
}

/** Everyone who sends in round 1: dealers then receivers, each once, in that order. */
export function participants(plan: Pick<LifecyclePlan, "dealers" | "receivers">): string[] {
  return [...new Set([...plan.dealers, ...plan.receivers])];
}

/** One stage: the envelope type it takes and who must send it before the next stage opens. */
export interface LifecycleStage {
  status: Exclude<LifecycleStatus, "complete" | "failed">;
  type: LifecycleMessageType;
  senders: string[];
}

/**
 * The stages of a plan. refresh and reshare: round1 and round1-ack from every participant, round2
 * (sealed shares) from the dealers, confirm from the receivers. repair adds round3 (each helper's
 * σ sealed to the lost custodian) and only the lost custodian confirms.
 */
export function lifecycleStages(
  plan: Pick<LifecyclePlan, "kind" | "dealers" | "receivers">,
): LifecycleStage[] {
  const all = participants(plan);
  const stages: LifecycleStage[] = [
    { status: "round1", type: "lc/round1", senders: all },
    { status: "round1-ack", type: "lc/round1-ack", senders: all },
    { status: "round2", type: "lc/round2", senders: [...plan.dealers] },
  ];
  if (plan.kind === "repair")
    stages.push({ status: "round3", type: "lc/round3", senders: [...plan.dealers] });
  stages.push({ status: "confirm", type: "lc/confirm", senders: [...plan.receivers] });
  return stages;
}

/**
 * Envelope signing keys of a plan's participants: the new roster's, plus the old roster's for
 * names the new one lacks (removed custodians deal in a reshare). A name whose keys differ
 * between the rosters uses the new keys (a repair gives the lost custodian new identity keys).
 */
export function planSigningKeys(plan: Pick<LifecyclePlan, "oldRoster" | "newRoster">): Map<string, string> {
  const keys = new Map(plan.oldRoster.custodians.map((c) => [c.name, c.signingKey]));
  for (const c of plan.newRoster.custodians) keys.set(c.name, c.signingKey);
  return keys;
}

/** `lc/round1`: a fresh HPKE key for this ceremony, the plan it is for, and the sender's dealing. */
export const LcRound1BodySchema = z
  .object({
    planHash: hex(32),
    hpkePublicKey: hex(32),
    /** refresh / reshare dealers: commitments to coefficients 1..t'-1 (hex points). Else null. */
    commitment: z.array(hex(32)).max(63).nullable(),
    /** repair helpers: helper name → δ·G for the piece dealt to that helper. Else null. */
    pieceCommitments: z.record(name, hex(32)).nullable(),
  })
  .strict();
export type LcRound1Body = z.infer<typeof LcRound1BodySchema>;

/** `lc/round1-ack`: H(plan hash ‖ every round-1 body, sorted by sender). */
export const LcRound1AckBodySchema = z.object({ transcriptHash: hex(32) }).strict();

/** `lc/round2` (dealt shares or repair pieces) and `lc/round3` (repair σ): recipient name → sealed value. */
export const LcSharesBodySchema = z.object({ shares: z.record(name, SealedShareSchema) }).strict();
export type LcSharesBody = z.infer<typeof LcSharesBodySchema>;

/**
 * `lc/complaint`: the value `accused` sealed to the complainer in `stage` does not match the
 * accused's commitments. Reveals the complainer's ceremony HPKE private key so that anyone can
 * open that value and check it; whoever the check blames is the culprit (a false complaint names
 * the complainer).
 */
export const LcComplaintBodySchema = z
  .object({
    accused: name,
    stage: z.enum(["lc/round2", "lc/round3"]),
    reason: z.string().max(500),
    hpkePrivateKey: hex(32),
  })
  .strict();
export type LcComplaintBody = z.infer<typeof LcComplaintBodySchema>;

/**
 * `lc/confirm`: the public package the receiver's new share belongs to (for repair: the package in
 * force, whose verifying share its restored share matches). The coordinator computes the expected
 * package from round 1 itself and accepts only confirmations of exactly that package.
 */
export const LcConfirmBodySchema = z
  .object({ publicPackageDigest: hex(32), publicPackage: PublicPackageWireSchema })
  .strict();
export type LcConfirmBody = z.infer<typeof LcConfirmBodySchema>;

export const LcAbortBodySchema = z
  .object({ reason: z.string().max(1000), culprits: z.array(name).max(64) })
  .strict();

/** The AAD of a sealed lifecycle value: ceremony, stage, sender, recipient. */
export const lcShareAad = (
  ceremonyId: string,
  stage: "lc/round2" | "lc/round3",
  sender: string,
  recipient: string,
) => new TextEncoder().encode(`tca/lifecycle-share/v1\n${ceremonyId}\n${stage}\n${sender}\n${recipient}`);

/** Where a sealed lifecycle value belongs: its AAD (lcShareAad) binds all four. */
export interface LcSealContext {
  ceremonyId: string;
  stage: "lc/round2" | "lc/round3";
  sender: string;
  recipient: string;
}

/**
 * Seals one dealt share, repair piece or σ to the recipient's ceremony HPKE key (RFC 9180 base
 * mode). The info string is the DKG's; the AAD's own domain prefix keeps lifecycle values and DKG
 * shares apart, so one can never be opened as the other.
 */
export async function sealLcValue(
  recipientHpkeKey: Uint8Array,
  value: Uint8Array,
  ctx: LcSealContext,
): Promise<SealedShare> {
  const out = await hpkeSeal(
    recipientHpkeKey,
    value,
    lcShareAad(ctx.ceremonyId, ctx.stage, ctx.sender, ctx.recipient),
    HPKE_DKG_SHARE_INFO,
  );
  return { enc: bytesToHex(out.enc), ciphertext: bytesToHex(out.ciphertext) };
}

/** Opens a value sealed by sealLcValue; throws (HpkeError) if it was sealed for another context. */
export async function openLcValue(
  hpkePrivateKey: Uint8Array,
  sealed: SealedShare,
  ctx: LcSealContext,
): Promise<Uint8Array> {
  return hpkeOpen(
    hpkePrivateKey,
    hexToBytes(sealed.enc),
    hexToBytes(sealed.ciphertext),
    lcShareAad(ctx.ceremonyId, ctx.stage, ctx.sender, ctx.recipient),
    HPKE_DKG_SHARE_INFO,
  );
}

export const LifecycleFailureSchema = z
  .object({ reason: z.string(), culprits: z.array(z.string()) })
  .strict();

/** GET /api/v1/lifecycle/{id}. */
export const LifecycleViewSchema = z
  .object({
    id: z.uuid(),
    status: LifecycleStatusSchema,
    plan: LifecyclePlanSchema,
    failure: LifecycleFailureSchema.nullable(),
    received: z
      .partialRecord(LifecycleMessageTypeSchema, z.array(z.string()))
      .meta({ description: "message type → participants that sent it" }),
    /** Set once complete: the key state the ceremony made. */
    result: KeyStateSchema.nullable(),
  })
  .strict();
export type LifecycleView = z.infer<typeof LifecycleViewSchema>;

/** GET /api/v1/lifecycle/{id}/messages?type=. */
export const LifecycleMessagesSchema = z
  .object({
    id: z.uuid(),
    type: LifecycleMessageTypeSchema,
    status: LifecycleStatusSchema,
    failure: LifecycleFailureSchema.nullable(),
    complete: z.boolean().meta({ description: "every sender of this stage has sent it" }),
    messages: z.array(SignedEnvelopeSchema),
  })
  .strict();
export type LifecycleMessagesView = z.infer<typeof LifecycleMessagesSchema>;

/** POST /api/v1/lifecycle (admin): what to run. Rosters come from ca-config text, never from the caller's JSON. */
export const LifecycleStartSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("refresh") }).strict(),
  z
    .object({
      kind: z.literal("reshare"),
      /** digest of the new roster; a signed roster change to it must be on file. */
      rosterDigest: hex(32),
      /** Old holders that deal (exactly the old threshold); default: the first that are kept, by name. */
      dealers: z.array(name).max(64).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal("repair"),
      lost: name,
      /** digest of the roster with the lost custodian's new identity keys; a signed change must be on file. */
      rosterDigest: hex(32),
      /** Exactly the threshold's count of other custodians; default: the first by name. */
      helpers: z.array(name).max(64).optional(),
    })
    .strict(),
]);
export type LifecycleStart = z.infer<typeof LifecycleStartSchema>;

/** GET /api/v1/roster: the roster in force and the changes proposed to it, with their signatures. */
export const RosterViewSchema = z
  .object({
    keyState: KeyStateSchema.nullable(),
    changes: z.array(
      z
        .object({
          change: SignedRosterChangeSchema,
          /** Members of the roster in force whose signatures verify. */
          validSigners: z.array(z.string()),
          /** Enough valid signatures for the change to be used. */
          approved: z.boolean(),
        })
        .strict(),
    ),
  })
  .strict();
export type RosterView = z.infer<typeof RosterViewSchema>;
