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
import { createHash, randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { mulAddUnsafe } from "@noble/curves/abstract/curve.js";
import { poly } from "@noble/curves/abstract/fft.js";
import { getMinHashLength, mapHashToField } from "@noble/curves/abstract/modular.js";
import { isGroupElement, isScalar, suite, type FrostPublic, type FrostSecret } from "./suite.ts";
import { ThresholdError } from "./errors.ts";
import { publicToWire } from "./encoding.ts";
import { bytesToHex, hexToBytes } from "../common/hex.ts";
import { canonicalJson } from "../common/canonical-json.ts";

// The arithmetic runs on noble's own point class whatever the signing backend (suite.ts): both
// backends use the RFC 9591 §6.1 encodings, so the bytes are the same, and these ceremonies are
// rare enough that libsodium's speed does not matter here.
const Point = ed25519.Point;
type Pt = InstanceType<typeof Point>;
/** What FrostPublic and FrostSecret hold. */
type Bytes = Uint8Array<ArrayBuffer>;
const Fn = suite.utils.Fn;

// noble's polynomial helpers (the same object createFROST builds): monomial evaluation and basis
// only, so the roots-of-unity domain it asks for is never used.
const noRoots = {
  info: { G: Fn.ZERO, oddFactor: Fn.ZERO, powerOfTwo: 0 },
  roots(): never {
    throw new Error("no roots of unity in FROST polynomial mode");
  },
  brp(): never {
    throw new Error("no roots of unity in FROST polynomial mode");
  },
  inverse(): never {
    throw new Error("no roots of unity in FROST polynomial mode");
  },
  omega(): never {
    throw new Error("no roots of unity in FROST polynomial mode");
  },
  clear(): void {},
};
const Poly = poly(Fn, noRoots);

/**
 * A uniformly random non-zero scalar, derived as noble derives FROST nonces and DKG coefficients
 * (mapHashToField over 48 random bytes: the modulo bias is negligible, FIPS 186-5 A.2.1).
 */
function randomScalar(): bigint {
  const wide = randomBytes(getMinHashLength(Fn.ORDER));
  const bytes = mapHashToField(wide, Fn.ORDER, Fn.isLE);
  const n = Fn.fromBytes(bytes);
  wide.fill(0);
  bytes.fill(0);
  return n;
}

/**
 * Best effort: bigints are immutable, so this only drops the references (as noble's DKG.clean
 * does) for the garbage collector to reclaim; it cannot overwrite the memory.
 */
function forget(scalars: bigint[]): void {
  scalars.fill(0n);
}

/** A canonical identifier (noble's hex of a non-zero scalar), or a throw. */
function parseId(id: string): bigint {
  if (typeof id !== "string" || !/^[0-9a-f]{64}$/.test(id)) throw new Error("malformed identifier");
  const n = Fn.fromBytes(hexToBytes(id));
  if (Fn.is0(n) || bytesToHex(scalarBytes(n)) !== id) throw new Error("non-canonical identifier");
  return n;
}

/** Distinct canonical identifiers, or a throw. */
function parseIds(ids: readonly string[]): bigint[] {
  if (!Array.isArray(ids) || ids.length === 0) throw new Error("no identifiers");
  if (new Set(ids).size !== ids.length) throw new Error("duplicate identifiers");
  return ids.map(parseId);
}

/** A canonical scalar (RFC 9591 §3.1 DeserializeScalar), or a throw. */
function parseScalar(bytes: Uint8Array): bigint {
  if (!(bytes instanceof Uint8Array) || !isScalar(bytes)) throw new Error("malformed scalar");
  return Fn.fromBytes(bytes);
}

/** A group element other than the identity, in the prime-order subgroup (RFC 9591 §3.1), or a throw. */
function parsePoint(bytes: Uint8Array | undefined): Pt {
  if (!(bytes instanceof Uint8Array) || !isGroupElement(bytes)) throw new Error("not a group element");
  return Point.fromBytes(bytes);
}

/** s·G in constant time; the identity for zero (which Point.multiply refuses). */
function baseMul(s: bigint): Pt {
  return Fn.is0(s) ? Point.ZERO : Point.BASE.multiply(s);
}

/** RFC 9591 §6.1 SerializeScalar. noble allocates plain ArrayBuffer-backed arrays; the type says so. */
const scalarBytes = (n: bigint): Bytes => Fn.toBytes(n) as Bytes;

/** The encoding of a point that must not be the identity (any result handed to signing). */
function encode(p: Pt, what: string): Bytes {
  if (p.is0()) throw new ThresholdError("DKG_BAD_PACKAGE", `${what} is the identity element`);
  return p.toBytes() as Bytes;
}

/**
 * Σ_k C_k·x^k over public points (RFC 9591 Appendix C.2 vss_verify's right-hand side), where
 * commitment[0] is the constant term's.
 */
function evaluateCommitment(x: bigint, commitment: readonly Pt[]): Pt {
  if (commitment.length === 0) return Point.ZERO;
  return mulAddUnsafe(Point, [...commitment], Poly.monomial.basis(x, commitment.length));
}

/** Σ_{k≥1} C_k·x^k for a dealing's commitment, which starts at the degree-1 coefficient. */
function evaluateDealing(x: bigint, commitment: readonly Pt[]): Pt {
  if (commitment.length === 0) return Point.ZERO;
  return mulAddUnsafe(Point, [...commitment], Poly.monomial.basis(x, commitment.length + 1).slice(1));
}

/** The Lagrange coefficient λ_i^S(x) = Π_{j∈S, j≠i} (x − x_j)/(x_i − x_j) (RFC 9591 §4.2 at x = 0). */
function lagrange(set: readonly bigint[], xi: bigint, x: bigint): bigint {
  if (new Set(set).size !== set.length || !set.includes(xi)) throw new Error("bad interpolation set");
  let num = Fn.ONE;
  let den = Fn.ONE;
  for (const xj of set) {
    if (xj === xi) continue;
    num = Fn.mul(num, Fn.sub(x, xj));
    den = Fn.mul(den, Fn.sub(xi, xj));
  }
  return Fn.div(num, den);
}

/** Evaluates a secret polynomial at each receiver. */
function evaluateAt(
  coefficients: bigint[],
  receivers: readonly string[],
  ids: bigint[],
): Record<string, Bytes> {
  const shares: Record<string, Bytes> = {};
  receivers.forEach((r, i) => {
    shares[r] = scalarBytes(Poly.monomial.eval(coefficients, ids[i]!));
  });
  return shares;
}

function checkThreshold(threshold: number, receivers: number): void {
  // noble's signing refuses min < 2 (frost-rs compatibility), so a package with t = 1 could not sign.
  if (!Number.isSafeInteger(threshold) || threshold < 2 || threshold > receivers)
    throw new ThresholdError("DKG_BAD_PACKAGE", `threshold ${threshold} does not fit ${receivers} receivers`);
}

/** A degree t-1 polynomial with the given constant term; commitments to coefficients 1..t-1. */
function deal(constant: bigint, threshold: number, receivers: readonly string[]): Dealing {
  const ids = parseIdsOrThrow(receivers);
  checkThreshold(threshold, receivers.length);
  const coefficients = [constant];
  for (let k = 1; k < threshold; k++) coefficients.push(randomScalar());
  try {
    return {
      commitment: coefficients.slice(1).map((a) => Point.BASE.multiply(a).toBytes() as Bytes),
      shares: evaluateAt(coefficients, receivers, ids),
    };
  } finally {
    forget(coefficients);
  }
}

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
  // g(0) = 0: the dealing moves the sharing without moving the secret (docs/key-lifecycle.md).
  return deal(Fn.ZERO, threshold, receivers);
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
  const ids = parseIdsOrThrow(dealers);
  const self = parseIdOrThrow(secret.identifier);
  if (!dealers.includes(secret.identifier))
    throw new ThresholdError("DKG_UNKNOWN_PARTICIPANT", "the dealer is not one of the dealers");
  const s = parseShare(secret.signingShare);
  const constant = Fn.mul(lagrange(ids, self, Fn.ZERO), s);
  const scratch = [s, constant];
  try {
    return deal(constant, newThreshold, receivers);
  } finally {
    forget(scratch);
  }
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
  try {
    const x = parseId(check.recipient);
    const share = parseScalar(check.share);
    if (!Array.isArray(check.commitment)) return false;
    const commitment = check.commitment.map(parsePoint);
    let constant: Pt;
    if (check.kind === "refresh") {
      parseId(check.dealer);
      constant = Point.ZERO;
    } else if (check.kind === "reshare") {
      constant = weightedVerifyingShare(check.oldPublic, check.dealers, check.dealer, Fn.ZERO, "exactly");
    } else return false;
    const expected = constant.add(evaluateDealing(x, commitment));
    return baseMul(share).equals(expected);
  } catch {
    return false;
  }
}

/** Whether a dealing's commitment is well formed: `expectedLength` valid group elements. */
export function dealingCommitmentValid(commitment: readonly Uint8Array[], expectedLength: number): boolean {
  return (
    Array.isArray(commitment) &&
    Number.isSafeInteger(expectedLength) &&
    expectedLength >= 1 &&
    commitment.length === expectedLength &&
    commitment.every((c) => c instanceof Uint8Array && isGroupElement(c))
  );
}

/** Refresh: s' = s + Σ received (one per dealer, own included). */
export function refreshCombine(old: FrostSecret, received: readonly Uint8Array[]): FrostSecret {
  parseIdOrThrow(old.identifier);
  const terms = [parseShare(old.signingShare), ...received.map(parseShare)];
  try {
    return {
      identifier: old.identifier,
      signingShare: scalarBytes(terms.reduce((a, b) => Fn.add(a, b), Fn.ZERO)),
    };
  } finally {
    forget(terms);
  }
}

/** Reshare: s' = Σ received (one per dealer). */
export function reshareCombine(recipient: string, received: readonly Uint8Array[]): FrostSecret {
  parseIdOrThrow(recipient);
  if (received.length === 0) throw new ThresholdError("DKG_BAD_SHARE", "no dealt shares to combine");
  const terms = received.map(parseShare);
  try {
    return {
      identifier: recipient,
      signingShare: scalarBytes(terms.reduce((a, b) => Fn.add(a, b), Fn.ZERO)),
    };
  } finally {
    forget(terms);
  }
}

/**
 * The public package after a refresh, computed from the old package and every dealer's
 * commitment: same group key and threshold; commitments[k] += Σ C_ik; each verifying share
 * Y'_j = Y_j + Σ_i Σ_k C_ik·j^k. Anyone holding the round-1 messages can compute it.
 */
export function refreshedPublic(old: FrostPublic, commitments: readonly Uint8Array[][]): FrostPublic {
  const t = old.signers.min;
  checkThreshold(t, old.signers.max);
  const oldCommitments = publicPoints(() => old.commitments.map(parsePoint), "the old public package");
  if (oldCommitments.length !== t)
    throw new ThresholdError("DKG_BAD_PACKAGE", "the old public package's commitment does not have t terms");
  if (commitments.length === 0) throw new ThresholdError("DKG_BAD_PACKAGE", "no refresh dealings");
  // Σ_i C_ik for k = 1..t-1; the constant terms are all the identity.
  const sum: Pt[] = new Array<Pt>(t - 1).fill(Point.ZERO);
  for (const c of commitments) {
    if (c.length !== t - 1)
      throw new ThresholdError("DKG_BAD_PACKAGE", "a refresh dealing has the wrong length");
    const pts = publicPoints(() => c.map(parsePoint), "a refresh dealing");
    pts.forEach((p, k) => (sum[k] = sum[k]!.add(p)));
  }
  const verifyingShares: Record<string, Bytes> = {};
  for (const [id, y] of Object.entries(old.verifyingShares)) {
    const x = parseIdOrThrow(id);
    const yOld = publicPoints(() => [parsePoint(y)], "the old public package")[0]!;
    verifyingShares[id] = encode(yOld.add(evaluateDealing(x, sum)), "a refreshed verifying share");
  }
  return {
    signers: { min: old.signers.min, max: old.signers.max },
    commitments: [
      oldCommitments[0]!.toBytes() as Bytes,
      ...sum.map((c, k) => encode(oldCommitments[k + 1]!.add(c), "a refreshed commitment")),
    ],
    verifyingShares,
  };
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
  const ids = parseIdsOrThrow(receivers);
  checkThreshold(newThreshold, receivers.length);
  const names = Object.keys(dealings);
  if (names.length !== dealers.length || !dealers.every((d) => Object.hasOwn(dealings, d)))
    throw new ThresholdError("DKG_BAD_PACKAGE", "the dealings are not exactly the dealers'");
  const groupKey = publicPoints(() => [parsePoint(old.commitments[0])], "the old public package")[0]!;
  let constant = Point.ZERO;
  const sum: Pt[] = new Array<Pt>(newThreshold - 1).fill(Point.ZERO);
  for (const dealer of dealers) {
    const c = dealings[dealer]!;
    if (!Array.isArray(c) || c.length !== newThreshold - 1)
      throw new ThresholdError("DKG_BAD_PACKAGE", "a reshare dealing has the wrong length", []);
    const pts = publicPoints(() => c.map(parsePoint), "a reshare dealing");
    pts.forEach((p, k) => (sum[k] = sum[k]!.add(p)));
    constant = constant.add(
      publicPoints(
        () => [weightedVerifyingShare(old, dealers, dealer, Fn.ZERO, "exactly")],
        "the dealers' constant terms",
      )[0]!,
    );
  }
  // Σ_i λ_i·Y_i interpolates the old commitment polynomial at 0: the group key, unless the old
  // package is inconsistent (its verifying shares are not on one polynomial through it).
  if (!constant.equals(groupKey))
    throw new ThresholdError("DKG_BAD_PACKAGE", "the dealers' constant terms do not add up to the group key");
  const full = [groupKey, ...sum];
  const verifyingShares: Record<string, Bytes> = {};
  receivers.forEach((r, i) => {
    verifyingShares[r] = encode(evaluateCommitment(ids[i]!, full), "a reshared verifying share");
  });
  return {
    signers: { min: newThreshold, max: receivers.length },
    commitments: [groupKey.toBytes() as Bytes, ...sum.map((c) => encode(c, "a reshared commitment"))],
    verifyingShares,
  };
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
  const ids = parseIdsOrThrow(helpers);
  const self = parseIdOrThrow(secret.identifier);
  if (!helpers.includes(secret.identifier))
    throw new ThresholdError("DKG_UNKNOWN_PARTICIPANT", "the helper is not one of the helpers");
  if (helpers.includes(lost)) throw new ThresholdError("DKG_BAD_PACKAGE", "the lost custodian cannot help");
  const target = parseIdOrThrow(lost);
  const s = parseShare(secret.signingShare);
  const value = Fn.mul(lagrange(ids, self, target), s);
  const deltas: bigint[] = [];
  try {
    // |H|-1 uniform pieces and one that makes them add up: any |H|-1 of them are independent and
    // uniform, so a helper learns nothing from its own (eprint 2017/1155 §3). A zero piece would
    // commit to the identity, which no check accepts: draw again (probability ~2^-252).
    for (;;) {
      deltas.length = 0;
      for (let k = 1; k < helpers.length; k++) deltas.push(randomScalar());
      const last = Fn.sub(
        value,
        deltas.reduce((a, b) => Fn.add(a, b), Fn.ZERO),
      );
      if (!Fn.is0(last)) {
        deltas.push(last);
        break;
      }
    }
    const pieces: Record<string, Bytes> = {};
    const commitments: Record<string, Bytes> = {};
    helpers.forEach((h, i) => {
      pieces[h] = scalarBytes(deltas[i]!);
      commitments[h] = Point.BASE.multiply(deltas[i]!).toBytes() as Bytes;
    });
    return { pieces, commitments };
  } finally {
    forget(deltas);
    forget([s, value]);
  }
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
  try {
    if (!helpers.includes(helper) || helpers.includes(lost)) return false;
    if (helpers.length < oldPublic.signers.min) return false;
    if (!Object.hasOwn(oldPublic.verifyingShares, lost)) return false;
    const names = Object.keys(commitments);
    if (names.length !== helpers.length || !helpers.every((h) => Object.hasOwn(commitments, h))) return false;
    let sum = Point.ZERO;
    for (const h of helpers) sum = sum.add(parsePoint(commitments[h]));
    return sum.equals(weightedVerifyingShare(oldPublic, helpers, helper, parseId(lost), "at least"));
  } catch {
    return false;
  }
}

/** Whether piece·G equals its published commitment. */
export function repairPieceValid(piece: Uint8Array, commitment: Uint8Array): boolean {
  try {
    return baseMul(parseScalar(piece)).equals(parsePoint(commitment));
  } catch {
    return false;
  }
}

/** Repair step 2 (helper j): σ_j = Σ_i δ_{i→j}, over the pieces it received and its own. */
export function repairSigma(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 0) throw new ThresholdError("DKG_BAD_SHARE", "no repair pieces");
  const terms = pieces.map(parseShare);
  try {
    return scalarBytes(terms.reduce((a, b) => Fn.add(a, b), Fn.ZERO));
  } finally {
    forget(terms);
  }
}

/** Whether σ_j·G equals Σ_i D_{i→j}, the commitments every helper published for helper j. */
export function repairSigmaValid(sigma: Uint8Array, commitmentsToHelper: readonly Uint8Array[]): boolean {
  try {
    if (!Array.isArray(commitmentsToHelper) || commitmentsToHelper.length === 0) return false;
    const sum = commitmentsToHelper.map(parsePoint).reduce((a, b) => a.add(b), Point.ZERO);
    return baseMul(parseScalar(sigma)).equals(sum);
  } catch {
    return false;
  }
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
  parseIdOrThrow(lost);
  if (sigmas.length === 0) throw new ThresholdError("DKG_BAD_SHARE", "no repair sums");
  const expected = publicPoints(
    () => [parsePoint(oldPublic.verifyingShares[lost])],
    "the lost verifying share",
  )[0]!;
  const terms = sigmas.map(parseShare);
  const s = terms.reduce((a, b) => Fn.add(a, b), Fn.ZERO);
  try {
    if (!baseMul(s).equals(expected))
      throw new ThresholdError("DKG_BAD_SHARE", "the repaired share does not match its verifying share");
    return { identifier: lost, signingShare: scalarBytes(s) };
  } finally {
    forget(terms);
    forget([s]);
  }
}

/** SHA-256 (hex) of a public key package's canonical wire form: how ceremonies name a package. */
export function publicPackageDigest(pub: FrostPublic): string {
  return createHash("sha256")
    .update("tca/public-package/v1\n")
    .update(canonicalJson(publicToWire(pub)))
    .digest("hex");
}

/**
 * λ_member^{set}(x)·Y_member from a public package: the derived constant term of a reshare dealing
 * (x = 0) or the sum of a repair helper's pieces (x = the lost identifier).
 */
function weightedVerifyingShare(
  pub: FrostPublic,
  set: readonly string[],
  member: string,
  x: bigint,
  size: "exactly" | "at least",
): Pt {
  const ids = parseIds(set);
  if (!set.includes(member)) throw new Error("not a member of the set");
  // The set must be t of the old package's holders for λ to interpolate its polynomial; a reshare
  // takes exactly t dealers (docs/key-lifecycle.md), a repair at least t helpers.
  const t = pub.signers.min;
  if (size === "exactly" ? set.length !== t : set.length < t)
    throw new Error(`the set has ${set.length} members, not ${size} t = ${t}`);
  if (!set.every((id) => Object.hasOwn(pub.verifyingShares, id))) throw new Error("not a holder");
  const y = parsePoint(pub.verifyingShares[member]);
  return y.multiplyUnsafe(lagrange(ids, parseId(member), x));
}

function parseIdOrThrow(id: string): bigint {
  try {
    return parseId(id);
  } catch (e) {
    throw new ThresholdError("DKG_UNKNOWN_PARTICIPANT", `bad identifier: ${(e as Error).message}`, [], {
      cause: e,
    });
  }
}

function parseIdsOrThrow(ids: readonly string[]): bigint[] {
  try {
    return parseIds(ids);
  } catch (e) {
    throw new ThresholdError("DKG_BAD_PACKAGE", `bad identifiers: ${(e as Error).message}`, [], { cause: e });
  }
}

function parseShare(bytes: Uint8Array): bigint {
  try {
    return parseScalar(bytes);
  } catch (e) {
    throw new ThresholdError("DKG_BAD_SHARE", "a share is not a canonical scalar", [], { cause: e });
  }
}

/** Public points parsed inside `f`, a failure reported as a bad package. */
function publicPoints(f: () => Pt[], what: string): Pt[] {
  try {
    return f();
  } catch (e) {
    if (e instanceof ThresholdError) throw e;
    throw new ThresholdError("DKG_BAD_PACKAGE", `${what}: ${(e as Error).message}`, [], { cause: e });
  }
}
