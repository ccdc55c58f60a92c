// Key lifecycle arithmetic on the shares of an existing FROST key (docs/key-lifecycle.md): refresh,
// reshare and repair. Pure functions on scalars and points, no I/O; the ceremonies around them
// (signed envelopes, HPKE, complaints, confirmations) live in src/custodian/lifecycle/ and
// src/coordinator/lifecycle/.
//
// All three are verifiable dealings. A dealer publishes Feldman commitments to a polynomial and
// sends each receiver one evaluation; the receiver checks it against the commitments on its own,
// so a bad share names its dealer. The constant term's commitment is never sent: everyone derives
// it (refresh: the identity, the dealt polynomial has a zero constant term; reshare: λ_i·Y_i, the
// dealer's Lagrange-weighted verifying share), so a dealer cannot deal a different secret.
//
//  - Refresh (proactive secret sharing; ZF frost keys/refresh.rs in DKG mode): every holder deals
//    g_i with g_i(0) = 0, degree t-1. New share s'_j = s_j + Σ_i g_i(j). The group key is unchanged;
//    every verifying share changes, so old and new shares cannot be mixed.
//  - Reshare (verifiable secret redistribution, Wong–Wang–Wing 2002): a set D of exactly t old
//    holders deal f_i with f_i(0) = λ_i^D(0)·s_i, degree t'-1, to the new holders. New share
//    s'_j = Σ_i f_i(j): a t'-of-n' sharing of the same secret.
//  - Repair (Repairable Threshold Scheme, eprint 2017/1155; ZF frost keys/repairable.rs): t helpers
//    H restore the share of `lost` without learning it. Helper i splits λ_i^H(lost)·s_i into |H|
//    random pieces δ_{i→j} (one per helper, its own included) and commits to each (δ·G); helper j
//    sends σ_j = Σ_i δ_{i→j} to `lost`, which adds them up: s_lost = Σ_j σ_j. Every piece and σ
//    is checkable against the published commitments, so a cheater is named.
//
// Identifiers are noble's hex scalars (identifierForName). Scalars and points are 32-byte
// Uint8Arrays in RFC 9591 §6.1 encoding. Secret outputs are fresh arrays the caller wipes.
import type { FrostPublic, FrostSecret } from "./suite.ts";

/** One dealer's verifiable dealing for refresh or reshare. */
export interface Dealing {
  /** Commitments to coefficients 1..t'-1 (the constant term's is derived, never sent). */
  commitment: Uint8Array[];
  /** Receiver identifier → that receiver's evaluation (secret: seal it, then wipe). */
  shares: Record<string, Uint8Array>;
}

/**
 * Refresh: a polynomial of degree `threshold`-1 with a zero constant term, evaluated at each
 * receiver (every holder, the dealer included).
 */
export function refreshDeal(threshold: number, receivers: readonly string[]): Dealing {
  void threshold;
  void receivers;
  throw new Error("not implemented");
}

/**
 * Reshare: dealer `secret.identifier` (one of `dealers`, |dealers| = the old threshold) deals
 * f(0) = λ^{dealers}_{self}(0)·s, degree `newThreshold`-1, to `receivers`.
 */
export function reshareDeal(
  secret: FrostSecret,
  dealers: readonly string[],
  newThreshold: number,
  receivers: readonly string[],
): Dealing {
  void secret;
  void dealers;
  void newThreshold;
  void receivers;
  throw new Error("not implemented");
}

/** What a receiver checks a dealt share against. */
export type DealtShareCheck =
  | { kind: "refresh"; dealer: string; recipient: string; commitment: Uint8Array[]; share: Uint8Array }
  | {
      kind: "reshare";
      dealer: string;
      dealers: readonly string[];
      /** The old group's public package: the dealer's verifying share derives the constant term. */
      oldPublic: FrostPublic;
      recipient: string;
      commitment: Uint8Array[];
      share: Uint8Array;
    };

/**
 * Whether share·G equals the commitment polynomial at the recipient's identifier, the constant
 * term derived as the kind says. False (never a throw) for any malformed input.
 */
export function dealtShareValid(check: DealtShareCheck): boolean {
  void check;
  throw new Error("not implemented");
}

/** Whether a dealing's commitment is well formed: `expectedLength` valid group elements. */
export function dealingCommitmentValid(commitment: readonly Uint8Array[], expectedLength: number): boolean {
  void commitment;
  void expectedLength;
  throw new Error("not implemented");
}

/** Refresh: s' = s + Σ received (one per dealer, own included). */
export function refreshCombine(old: FrostSecret, received: readonly Uint8Array[]): FrostSecret {
  void old;
  void received;
  throw new Error("not implemented");
}

/** Reshare: s' = Σ received (one per dealer). */
export function reshareCombine(recipient: string, received: readonly Uint8Array[]): FrostSecret {
  void recipient;
  void received;
  throw new Error("not implemented");
}

/**
 * The public package after a refresh, computed from the old package and every dealer's
 * commitment: same group key and threshold; commitments[k] += Σ C_ik; each verifying share
 * Y'_j = Y_j + Σ_i Σ_k C_ik·j^k. Anyone holding the round-1 messages can compute it.
 */
export function refreshedPublic(old: FrostPublic, commitments: readonly Uint8Array[][]): FrostPublic {
  void old;
  void commitments;
  throw new Error("not implemented");
}

/**
 * The public package after a reshare: commitments[0] = the unchanged group key,
 * commitments[k] = Σ_i C_ik; Y'_j = Σ_i (λ_i·Y_i + Σ_k C_ik·j^k) for each receiver;
 * signers {min: newThreshold, max: receivers.length}. `dealings` is dealer identifier → commitment.
 * Throws if the derived constant terms do not add up to the group key (it cannot, for valid input).
 */
export function resharedPublic(
  old: FrostPublic,
  dealers: readonly string[],
  dealings: Readonly<Record<string, Uint8Array[]>>,
  newThreshold: number,
  receivers: readonly string[],
): FrostPublic {
  void old;
  void dealers;
  void dealings;
  void newThreshold;
  void receivers;
  throw new Error("not implemented");
}

/** One helper's repair dealing: a piece for every helper (itself included) and the commitments. */
export interface RepairDealing {
  /** Helper identifier → δ_{self→helper} (secret). */
  pieces: Record<string, Uint8Array>;
  /** Helper identifier → δ_{self→helper}·G (public). */
  commitments: Record<string, Uint8Array>;
}

/** Repair step 1 (helper): split λ^{helpers}_{self}(lost)·s into random pieces, one per helper. */
export function repairDeal(secret: FrostSecret, helpers: readonly string[], lost: string): RepairDealing {
  void secret;
  void helpers;
  void lost;
  throw new Error("not implemented");
}

/**
 * Public check of a helper's commitments: one valid element per helper, and their sum equals
 * λ^{helpers}_{helper}(lost)·Y_helper. False names `helper` as a cheater.
 */
export function repairCommitmentsValid(
  helper: string,
  helpers: readonly string[],
  lost: string,
  oldPublic: FrostPublic,
  commitments: Readonly<Record<string, Uint8Array>>,
): boolean {
  void helper;
  void helpers;
  void lost;
  void oldPublic;
  void commitments;
  throw new Error("not implemented");
}

/** Whether piece·G equals its published commitment. */
export function repairPieceValid(piece: Uint8Array, commitment: Uint8Array): boolean {
  void piece;
  void commitment;
  throw new Error("not implemented");
}

/** Repair step 2 (helper j): σ_j = Σ_i δ_{i→j}, over the pieces it received and its own. */
export function repairSigma(pieces: readonly Uint8Array[]): Uint8Array {
  void pieces;
  throw new Error("not implemented");
}

/** Whether σ_j·G equals Σ_i D_{i→j}, the commitments every helper published for helper j. */
export function repairSigmaValid(sigma: Uint8Array, commitmentsToHelper: readonly Uint8Array[]): boolean {
  void sigma;
  void commitmentsToHelper;
  throw new Error("not implemented");
}

/**
 * Repair step 3 (the lost custodian): s = Σ_j σ_j. Throws ThresholdError("DKG_BAD_SHARE") unless
 * s·G equals the lost custodian's verifying share in `oldPublic`.
 */
export function repairCombine(
  lost: string,
  sigmas: readonly Uint8Array[],
  oldPublic: FrostPublic,
): FrostSecret {
  void lost;
  void sigmas;
  void oldPublic;
  throw new Error("not implemented");
}

/** SHA-256 (hex) of a public key package's canonical wire form: how ceremonies name a package. */
export function publicPackageDigest(pub: FrostPublic): string {
  void pub;
  throw new Error("not implemented");
}
