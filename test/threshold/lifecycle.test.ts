// Key lifecycle arithmetic (docs/key-lifecycle.md): refresh, reshare and repair on the shares of a
// real 3-of-5 DKG key, checked by signing with the results (RFC 9591 §5) and verifying as plain
// RFC 8032 signatures, and by the Feldman checks that name a cheating dealer or helper.
import { describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  frostSuite,
  identifierForName,
  nativeAvailable,
  suite,
  type FrostPublic,
  type FrostSecret,
  type FrostSuite,
} from "../../src/threshold/suite.ts";
import { NoncePool, aggregateSignature, signShare } from "../../src/threshold/sign.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import { commitmentFromWire, publicFromWire, publicToWire } from "../../src/threshold/encoding.ts";
import { ThresholdError } from "../../src/threshold/errors.ts";
import { bytesToHex, hexToBytes } from "../../src/common/hex.ts";
import { canonicalJson } from "../../src/common/canonical-json.ts";
import {
  dealingCommitmentValid,
  dealtShareValid,
  publicPackageDigest,
  refreshCombine,
  refreshDeal,
  refreshedPublic,
  repairCombine,
  repairCommitmentsValid,
  repairDeal,
  repairPieceValid,
  repairSigma,
  repairSigmaValid,
  reshareCombine,
  reshareDeal,
  resharedPublic,
  type Dealing,
} from "../../src/threshold/lifecycle.ts";
import { inMemoryDkg } from "../helpers/dkg.ts";

const Point = ed25519.Point;
const Fn = Point.Fn;
const NAMES = ["alice", "bob", "carol", "dave", "erin"];
const msg = new TextEncoder().encode("tbs certificate bytes");

const BACKENDS: FrostSuite[] = [frostSuite("noble"), ...(nativeAvailable() ? [frostSuite("native")] : [])];

/** Signs with exactly these shares; the signature, or undefined if aggregation refuses. */
function trySign(shares: FrostSecret[], pub: FrostPublic, frost: FrostSuite = suite): Uint8Array | undefined {
  const pools = shares.map((s) => new NoncePool(s, 60_000, 4, frost));
  const wires = pools.map((p) => p.commit());
  const list = wires.map(commitmentFromWire);
  try {
    const sigShares = Object.fromEntries(
      shares.map((s, i) => [s.identifier, signShare(s, pub, pools[i]!.take(wires[i]!)!, list, msg, frost)]),
    );
    return aggregateSignature(pub, list, msg, sigShares, frost);
  } catch (e) {
    expect(e).toBeInstanceOf(ThresholdError);
    return undefined;
  }
}

function signs(shares: FrostSecret[], pub: FrostPublic, frost: FrostSuite = suite): boolean {
  const sig = trySign(shares, pub, frost);
  return sig !== undefined && ed25519.verify(sig, msg, groupPublicKey(pub));
}

/** Every k-element subset of `items`. */
function subsets<T>(items: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [head!, ...s]), ...subsets(rest, k)];
}

/** Lagrange interpolation at 0 of shares (any count, including one): the secret they determine. */
function interpolate(shares: FrostSecret[]): bigint {
  const xs = shares.map((s) => Fn.fromBytes(hexToBytes(s.identifier)));
  let acc = Fn.ZERO;
  shares.forEach((s, i) => {
    let num = Fn.ONE;
    let den = Fn.ONE;
    xs.forEach((xj, j) => {
      if (j === i) return;
      num = Fn.mul(num, xj);
      den = Fn.mul(den, Fn.sub(xj, xs[i]!));
    });
    acc = Fn.add(acc, Fn.mul(Fn.fromBytes(s.signingShare), Fn.div(num, den)));
  });
  return acc;
}

/** Whether these shares interpolate to the group secret (checked against the group key). */
function recoversKey(shares: FrostSecret[], groupKey: Uint8Array): boolean {
  const s = interpolate(shares);
  return !Fn.is0(s) && Point.BASE.multiply(s).equals(Point.fromBytes(groupKey));
}

function shareMatchesPublic(secret: FrostSecret, pub: FrostPublic): boolean {
  const y = pub.verifyingShares[secret.identifier];
  return y !== undefined && Point.BASE.multiply(Fn.fromBytes(secret.signingShare)).equals(Point.fromBytes(y));
}

function flip(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[0]! ^= 1;
  return out;
}

/** Adds one to a scalar: still canonical, but the wrong value. */
function plusOne(scalar: Uint8Array): Uint8Array {
  return Fn.toBytes(Fn.add(Fn.fromBytes(scalar), Fn.ONE));
}

const dkg = inMemoryDkg(NAMES, 3);
const oldPub = dkg[0]!.key.public;
const oldSecrets = dkg.map((p) => p.key.secret);
const ids = dkg.map((p) => p.id);
const groupKey = groupPublicKey(oldPub);

// Malformed group elements: the identity, a point of order 2 (not in the prime-order subgroup),
// G plus that point (on the curve, outside the subgroup), a non-canonical encoding and a short one.
const ORDER2 = hexToBytes("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
const BAD_POINTS: Uint8Array[] = [
  Point.ZERO.toBytes(),
  ORDER2,
  Point.BASE.add(Point.fromBytes(ORDER2)).toBytes(),
  hexToBytes("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  new Uint8Array(31),
];
const BAD_SCALARS: Uint8Array[] = [new Uint8Array(31), new Uint8Array(33), new Uint8Array(32).fill(0xff)];

describe("refresh", () => {
  const dealings = new Map<string, Dealing>(ids.map((id) => [id, refreshDeal(3, ids)]));
  const refreshed = dkg.map((p) =>
    refreshCombine(
      p.key.secret,
      ids.map((d) => dealings.get(d)!.shares[p.id]!),
    ),
  );
  const newPub = refreshedPublic(
    oldPub,
    ids.map((d) => dealings.get(d)!.commitment),
  );

  it("deals t-1 commitments and a share every receiver checks on its own", () => {
    for (const [dealer, d] of dealings) {
      expect(dealingCommitmentValid(d.commitment, 2)).toBe(true);
      expect(dealingCommitmentValid(d.commitment, 3)).toBe(false);
      expect(Object.keys(d.shares).sort()).toEqual([...ids].sort());
      for (const r of ids)
        expect(
          dealtShareValid({
            kind: "refresh",
            dealer,
            recipient: r,
            commitment: d.commitment,
            share: d.shares[r]!,
          }),
        ).toBe(true);
    }
  });

  it("keeps the group key and threshold and changes every verifying share", () => {
    expect(bytesToHex(groupPublicKey(newPub))).toBe(bytesToHex(groupKey));
    expect(newPub.signers).toEqual(oldPub.signers);
    expect(newPub.commitments).toHaveLength(oldPub.commitments.length);
    expect(Object.keys(newPub.verifyingShares).sort()).toEqual(Object.keys(oldPub.verifyingShares).sort());
    for (const id of ids)
      expect(bytesToHex(newPub.verifyingShares[id]!)).not.toBe(bytesToHex(oldPub.verifyingShares[id]!));
    for (let i = 0; i < ids.length; i++)
      expect(bytesToHex(refreshed[i]!.signingShare)).not.toBe(bytesToHex(oldSecrets[i]!.signingShare));
    expect(publicPackageDigest(newPub)).not.toBe(publicPackageDigest(oldPub));
  });

  it("gives each new share the verifying share the package names (s'·G = Y'_j), as noble checks it", () => {
    for (const s of refreshed) {
      expect(shareMatchesPublic(s, newPub)).toBe(true);
      expect(() => suite.validateSecret(s, newPub)).not.toThrow();
    }
  });

  it("lets any 3 new shares sign, on both backends", () => {
    for (const set of subsets(refreshed, 3)) expect(signs(set, newPub)).toBe(true);
    // Through the wire form, as custodians load it, and on each backend.
    const wirePub = publicFromWire(publicToWire(newPub));
    for (const frost of BACKENDS) expect(signs(refreshed.slice(1, 4), wirePub, frost)).toBe(true);
  });

  it("does not let 2 new shares and 1 old share sign, under either package", () => {
    for (const oldIndex of [0, 2, 4]) {
      const others = [0, 1, 2, 3, 4].filter((i) => i !== oldIndex).slice(0, 2);
      const mix = [oldSecrets[oldIndex]!, ...others.map((i) => refreshed[i]!)];
      expect(signs(mix, newPub)).toBe(false);
      expect(signs(mix, oldPub)).toBe(false);
      expect(recoversKey(mix, groupKey)).toBe(false);
    }
    // The old shares alone still interpolate the key (refresh does not help once t were stolen).
    expect(recoversKey(oldSecrets.slice(0, 3), groupKey)).toBe(true);
  });

  it("names only the dealer of a tampered share", () => {
    const recipient = ids[1]!;
    const cheater = ids[3]!;
    for (const dealer of ids) {
      const d = dealings.get(dealer)!;
      const share = dealer === cheater ? plusOne(d.shares[recipient]!) : d.shares[recipient]!;
      expect(dealtShareValid({ kind: "refresh", dealer, recipient, commitment: d.commitment, share })).toBe(
        dealer !== cheater,
      );
    }
    // A share checked at the wrong recipient, or against another dealer's commitment, fails too.
    const d0 = dealings.get(ids[0]!)!;
    expect(
      dealtShareValid({
        kind: "refresh",
        dealer: ids[0]!,
        recipient: ids[2]!,
        commitment: d0.commitment,
        share: d0.shares[ids[1]!]!,
      }),
    ).toBe(false);
    expect(
      dealtShareValid({
        kind: "refresh",
        dealer: ids[0]!,
        recipient: ids[1]!,
        commitment: dealings.get(ids[2]!)!.commitment,
        share: d0.shares[ids[1]!]!,
      }),
    ).toBe(false);
  });

  it("returns false, never throws, on malformed input", () => {
    const d = dealings.get(ids[0]!)!;
    const base = { kind: "refresh" as const, dealer: ids[0]!, recipient: ids[1]!, commitment: d.commitment };
    const share = d.shares[ids[1]!]!;
    for (const bad of BAD_POINTS) {
      expect(dealtShareValid({ ...base, share, commitment: [bad, d.commitment[1]!] })).toBe(false);
      expect(dealingCommitmentValid([d.commitment[0]!, bad], 2)).toBe(false);
    }
    for (const bad of BAD_SCALARS) expect(dealtShareValid({ ...base, share: bad })).toBe(false);
    for (const id of ["", "zz", ids[1]!.toUpperCase(), "00".repeat(32), "ff".repeat(32)]) {
      expect(dealtShareValid({ ...base, share, recipient: id })).toBe(false);
      expect(dealtShareValid({ ...base, share, dealer: id })).toBe(false);
    }
    const junk = [null, undefined, 5, "x", {}, [new Uint8Array(32)]] as unknown[];
    for (const j of junk) {
      expect(dealtShareValid({ ...base, share, commitment: j as Uint8Array[] })).toBe(false);
      expect(dealtShareValid({ ...base, share: j as Uint8Array })).toBe(false);
      expect(dealingCommitmentValid(j as Uint8Array[], 2)).toBe(false);
    }
    expect(
      dealtShareValid({ ...base, kind: "other" } as unknown as Parameters<typeof dealtShareValid>[0]),
    ).toBe(false);
  });

  it("refuses dealings of the wrong length or with malformed points when building the package", () => {
    const good = ids.map((d) => dealings.get(d)!.commitment);
    expect(() => refreshedPublic(oldPub, [...good.slice(1), good[0]!.slice(0, 1)])).toThrow(ThresholdError);
    expect(() => refreshedPublic(oldPub, [...good.slice(1), [good[0]![0]!, BAD_POINTS[1]!]])).toThrow(
      ThresholdError,
    );
    expect(() => refreshDeal(1, ids)).toThrow(ThresholdError);
    expect(() => refreshDeal(6, ids)).toThrow(ThresholdError);
    expect(() => refreshDeal(3, [ids[0]!, ids[0]!, ids[1]!])).toThrow(ThresholdError);
  });
});

/** A reshare of the DKG key from `dealerNames` (exactly t old holders) to `receiverNames`. */
function reshare(dealerNames: string[], newThreshold: number, receiverNames: string[]) {
  const dealers = dealerNames.map(identifierForName);
  const receivers = receiverNames.map(identifierForName);
  const dealings = Object.fromEntries(
    dealers.map((d) => [d, reshareDeal(oldSecrets[ids.indexOf(d)]!, dealers, newThreshold, receivers)]),
  );
  const shares = receivers.map((r) =>
    reshareCombine(
      r,
      dealers.map((d) => dealings[d]!.shares[r]!),
    ),
  );
  const pub = resharedPublic(
    oldPub,
    dealers,
    Object.fromEntries(dealers.map((d) => [d, dealings[d]!.commitment])),
    newThreshold,
    receivers,
  );
  return { dealers, receivers, dealings, shares, pub };
}

describe("reshare", () => {
  const cases = [
    {
      title: "3-of-5 → 4-of-7 (two added)",
      dealers: ["alice", "carol", "erin"],
      t: 4,
      receivers: [...NAMES, "frank", "grace"],
    },
    {
      title: "3-of-5 → 2-of-3 (two removed)",
      dealers: ["bob", "dave", "erin"],
      t: 2,
      receivers: NAMES.slice(0, 3),
    },
  ];
  for (const c of cases) {
    describe(c.title, () => {
      const r = reshare(c.dealers, c.t, c.receivers);

      it("deals shares every receiver checks against the dealer's derived constant term", () => {
        for (const d of r.dealers) {
          expect(dealingCommitmentValid(r.dealings[d]!.commitment, c.t - 1)).toBe(true);
          for (const recipient of r.receivers)
            expect(
              dealtShareValid({
                kind: "reshare",
                dealer: d,
                dealers: r.dealers,
                oldPublic: oldPub,
                recipient,
                commitment: r.dealings[d]!.commitment,
                share: r.dealings[d]!.shares[recipient]!,
              }),
            ).toBe(true);
        }
      });

      it("keeps the group key; the package has the new threshold, members and matching verifying shares", () => {
        expect(bytesToHex(groupPublicKey(r.pub))).toBe(bytesToHex(groupKey));
        expect(r.pub.signers).toEqual({ min: c.t, max: c.receivers.length });
        expect(r.pub.commitments).toHaveLength(c.t);
        expect(Object.keys(r.pub.verifyingShares).sort()).toEqual([...r.receivers].sort());
        for (const s of r.shares) {
          expect(shareMatchesPublic(s, r.pub)).toBe(true);
          expect(() => suite.validateSecret(s, r.pub)).not.toThrow();
        }
      });

      it(`lets any ${c.t} new shares sign and no ${c.t - 1}`, () => {
        const full = subsets(r.shares, c.t);
        // All subsets for 2-of-3; a spread of the 35 for 4-of-7, to keep the test fast.
        const sample = full.length > 8 ? full.filter((_, i) => i % 5 === 0) : full;
        for (const set of sample) expect(signs(set, r.pub)).toBe(true);
        for (const frost of BACKENDS) expect(signs(r.shares.slice(-c.t), r.pub, frost)).toBe(true);
        for (const set of subsets(r.shares, c.t)) expect(recoversKey(set, groupKey)).toBe(true);
        for (const set of subsets(r.shares, c.t - 1)) {
          expect(recoversKey(set, groupKey)).toBe(false);
          if (set.length >= 2) expect(signs(set, r.pub)).toBe(false);
        }
      });

      it("does not let an old share stand in for a new one, nor a removed custodian sign", () => {
        // One old share with t'-1 new ones (of other holders): not points on one polynomial.
        const oldOne = oldSecrets.find((s) => r.receivers.includes(s.identifier))!;
        const news = r.shares.filter((s) => s.identifier !== oldOne.identifier).slice(0, c.t - 1);
        expect(signs([oldOne, ...news], r.pub)).toBe(false);
        expect(recoversKey([oldOne, ...news], groupKey)).toBe(false);
        // A removed custodian's identifier has no verifying share in the new package.
        for (const removed of oldSecrets.filter((s) => !r.receivers.includes(s.identifier))) {
          expect(r.pub.verifyingShares[removed.identifier]).toBeUndefined();
          expect(signs([removed, ...r.shares.slice(0, c.t - 1)], r.pub)).toBe(false);
        }
        // Redistribution does not invalidate the old sharing itself: t old shares still
        // interpolate the key, so the old shares must be deleted (docs/key-lifecycle.md).
        expect(recoversKey(oldSecrets.slice(0, 3), groupKey)).toBe(true);
      });

      it("catches, at every receiver, a dealer dealing a different constant", () => {
        const cheater = r.dealers[1]!;
        const wrong: FrostSecret = {
          identifier: cheater,
          signingShare: Uint8Array.from(Fn.toBytes(Fn.fromBytes(randomBytes(32).fill(0, 31)))),
        };
        const bad = reshareDeal(wrong, r.dealers, c.t, r.receivers);
        expect(dealingCommitmentValid(bad.commitment, c.t - 1)).toBe(true);
        for (const recipient of r.receivers) {
          expect(
            dealtShareValid({
              kind: "reshare",
              dealer: cheater,
              dealers: r.dealers,
              oldPublic: oldPub,
              recipient,
              commitment: bad.commitment,
              share: bad.shares[recipient]!,
            }),
          ).toBe(false);
          // The honest dealers' shares to the same receiver still check.
          for (const d of r.dealers.filter((x) => x !== cheater))
            expect(
              dealtShareValid({
                kind: "reshare",
                dealer: d,
                dealers: r.dealers,
                oldPublic: oldPub,
                recipient,
                commitment: r.dealings[d]!.commitment,
                share: r.dealings[d]!.shares[recipient]!,
              }),
            ).toBe(true);
        }
      });
    });
  }

  it("refuses a dealer set of the wrong size, a non-member dealer and a dealing of the wrong degree", () => {
    const r = reshare(["alice", "carol", "erin"], 4, [...NAMES, "frank", "grace"]);
    const d = r.dealers[0]!;
    const check = {
      kind: "reshare" as const,
      dealer: d,
      dealers: r.dealers,
      oldPublic: oldPub,
      recipient: r.receivers[5]!,
      commitment: r.dealings[d]!.commitment,
      share: r.dealings[d]!.shares[r.receivers[5]!]!,
    };
    expect(dealtShareValid(check)).toBe(true);
    expect(dealtShareValid({ ...check, dealers: [...r.dealers, ids[1]!] })).toBe(false);
    expect(dealtShareValid({ ...check, dealers: r.dealers.slice(0, 2) })).toBe(false);
    expect(dealtShareValid({ ...check, dealer: ids[1]! })).toBe(false);
    // A new member (no verifying share in the old package) cannot be a dealer.
    expect(dealtShareValid({ ...check, dealers: [d, r.dealers[1]!, r.receivers[6]!] })).toBe(false);
    for (const bad of BAD_POINTS)
      expect(dealtShareValid({ ...check, commitment: [bad, ...check.commitment.slice(1)] })).toBe(false);
    expect(
      dealtShareValid({
        ...check,
        oldPublic: {
          ...oldPub,
          verifyingShares: { ...oldPub.verifyingShares, [d]: Uint8Array.from(BAD_POINTS[2]!) },
        },
      }),
    ).toBe(false);
    expect(dealtShareValid({ ...check, oldPublic: null as unknown as FrostPublic })).toBe(false);
    // One degree too many: the receivers' sharing would need t'+1 shares to sign.
    const tooHigh = reshareDeal(oldSecrets[0]!, r.dealers, 5, r.receivers);
    expect(dealingCommitmentValid(tooHigh.commitment, 3)).toBe(false);
    const dealings = Object.fromEntries(r.dealers.map((x) => [x, r.dealings[x]!.commitment]));
    expect(() =>
      resharedPublic(oldPub, r.dealers, { ...dealings, [d]: tooHigh.commitment }, 4, r.receivers),
    ).toThrow(ThresholdError);
    expect(() => resharedPublic(oldPub, r.dealers.slice(0, 2), dealings, 4, r.receivers)).toThrow(
      ThresholdError,
    );
    // An old package whose verifying shares do not interpolate to its group key.
    const forged: FrostPublic = {
      ...oldPub,
      commitments: [Point.BASE.toBytes(), ...oldPub.commitments.slice(1)] as FrostPublic["commitments"],
    };
    expect(() => resharedPublic(forged, r.dealers, dealings, 4, r.receivers)).toThrow(/group key/);
    expect(() => reshareDeal(oldSecrets[1]!, r.dealers, 4, r.receivers)).toThrow(ThresholdError);
  });
});

describe("repair", () => {
  const lostIndex = 3; // dave
  const lost = ids[lostIndex]!;
  const helperIdx = [0, 1, 4];
  const helpers = helperIdx.map((i) => ids[i]!);
  const dealings = Object.fromEntries(
    helperIdx.map((i) => [ids[i]!, repairDeal(oldSecrets[i]!, helpers, lost)]),
  );
  const sigmas = helpers.map((j) => repairSigma(helpers.map((i) => dealings[i]!.pieces[j]!)));

  it("restores the lost share byte for byte, and it signs", () => {
    for (const h of helpers)
      expect(repairCommitmentsValid(h, helpers, lost, oldPub, dealings[h]!.commitments)).toBe(true);
    for (const i of helpers)
      for (const j of helpers)
        expect(repairPieceValid(dealings[i]!.pieces[j]!, dealings[i]!.commitments[j]!)).toBe(true);
    helpers.forEach((j, k) =>
      expect(
        repairSigmaValid(
          sigmas[k]!,
          helpers.map((i) => dealings[i]!.commitments[j]!),
        ),
      ).toBe(true),
    );
    const repaired = repairCombine(lost, sigmas, oldPub);
    expect(repaired.identifier).toBe(lost);
    expect(bytesToHex(repaired.signingShare)).toBe(bytesToHex(oldSecrets[lostIndex]!.signingShare));
    expect(signs([repaired, oldSecrets[0]!, oldSecrets[2]!], oldPub)).toBe(true);
  });

  it("gives no helper a piece or σ equal to the lost share", () => {
    const target = bytesToHex(oldSecrets[lostIndex]!.signingShare);
    for (const i of helpers)
      for (const j of helpers) expect(bytesToHex(dealings[i]!.pieces[j]!)).not.toBe(target);
    for (const s of sigmas) expect(bytesToHex(s)).not.toBe(target);
  });

  it("names a helper whose commitments do not add up", () => {
    // A helper splitting a wrong value (here: another share) publishes consistent pieces, but
    // their sum is not λ·Y of its own verifying share.
    const cheat = repairDeal(
      { identifier: helpers[1]!, signingShare: oldSecrets[2]!.signingShare },
      helpers,
      lost,
    );
    expect(repairCommitmentsValid(helpers[1]!, helpers, lost, oldPub, cheat.commitments)).toBe(false);
    for (const h of [helpers[0]!, helpers[2]!])
      expect(repairCommitmentsValid(h, helpers, lost, oldPub, dealings[h]!.commitments)).toBe(true);
    // Swapped, missing, extra or malformed commitments.
    const c = dealings[helpers[0]!]!.commitments;
    expect(
      repairCommitmentsValid(helpers[0]!, helpers, lost, oldPub, {
        ...c,
        [helpers[1]!]: Point.BASE.toBytes(),
      }),
    ).toBe(false);
    const { [helpers[2]!]: _dropped, ...missing } = c;
    void _dropped;
    expect(repairCommitmentsValid(helpers[0]!, helpers, lost, oldPub, missing)).toBe(false);
    expect(
      repairCommitmentsValid(helpers[0]!, helpers, lost, oldPub, { ...c, [ids[2]!]: Point.BASE.toBytes() }),
    ).toBe(false);
    for (const bad of BAD_POINTS)
      expect(repairCommitmentsValid(helpers[0]!, helpers, lost, oldPub, { ...c, [helpers[1]!]: bad })).toBe(
        false,
      );
    // Wrong roles: the lost custodian among the helpers, a helper not in the set, too few helpers.
    expect(repairCommitmentsValid(helpers[0]!, [...helpers, lost], lost, oldPub, c)).toBe(false);
    expect(repairCommitmentsValid(ids[2]!, helpers, lost, oldPub, c)).toBe(false);
    expect(repairCommitmentsValid(helpers[0]!, helpers.slice(0, 2), lost, oldPub, c)).toBe(false);
    expect(repairCommitmentsValid(helpers[0]!, helpers, "00".repeat(32), oldPub, c)).toBe(false);
    expect(
      repairCommitmentsValid(
        helpers[0]!,
        helpers,
        lost,
        oldPub,
        null as unknown as Record<string, Uint8Array>,
      ),
    ).toBe(false);
  });

  it("names a bad piece and a bad σ", () => {
    const [i, j] = [helpers[0]!, helpers[2]!];
    expect(repairPieceValid(plusOne(dealings[i]!.pieces[j]!), dealings[i]!.commitments[j]!)).toBe(false);
    expect(repairPieceValid(dealings[i]!.pieces[j]!, dealings[i]!.commitments[helpers[1]!]!)).toBe(false);
    for (const bad of BAD_SCALARS) expect(repairPieceValid(bad, dealings[i]!.commitments[j]!)).toBe(false);
    for (const bad of BAD_POINTS) expect(repairPieceValid(dealings[i]!.pieces[j]!, bad)).toBe(false);
    const toJ = helpers.map((h) => dealings[h]!.commitments[j]!);
    expect(repairSigmaValid(plusOne(sigmas[2]!), toJ)).toBe(false);
    expect(repairSigmaValid(sigmas[1]!, toJ)).toBe(false);
    expect(repairSigmaValid(sigmas[2]!, toJ.slice(0, 2))).toBe(false);
    expect(repairSigmaValid(sigmas[2]!, [])).toBe(false);
    for (const bad of BAD_SCALARS) expect(repairSigmaValid(bad, toJ)).toBe(false);
    for (const bad of BAD_POINTS) expect(repairSigmaValid(sigmas[2]!, [toJ[0]!, toJ[1]!, bad])).toBe(false);
  });

  it("refuses to combine to a wrong share", () => {
    const wrong = [sigmas[0]!, plusOne(sigmas[1]!), sigmas[2]!];
    expect(() => repairCombine(lost, wrong, oldPub)).toThrow(ThresholdError);
    try {
      repairCombine(lost, sigmas.slice(0, 2), oldPub);
      expect.unreachable();
    } catch (e) {
      expect((e as ThresholdError).code).toBe("DKG_BAD_SHARE");
    }
    expect(() => repairCombine(lost, [flip(new Uint8Array(32).fill(0xff))], oldPub)).toThrow(ThresholdError);
    expect(() => repairCombine(ids[0]!, sigmas, oldPub)).toThrow(ThresholdError);
    expect(() => repairDeal(oldSecrets[0]!, [...helpers, lost], lost)).toThrow(ThresholdError);
    expect(() => repairDeal(oldSecrets[2]!, helpers, lost)).toThrow(ThresholdError);
  });
});

describe("publicPackageDigest", () => {
  it("is SHA-256 over the domain-separated canonical wire form, independent of key order", () => {
    const expected = createHash("sha256")
      .update("tca/public-package/v1\n")
      .update(canonicalJson(publicToWire(oldPub)))
      .digest("hex");
    expect(publicPackageDigest(oldPub)).toBe(expected);
    const reordered: FrostPublic = {
      ...oldPub,
      verifyingShares: Object.fromEntries(Object.entries(oldPub.verifyingShares).reverse()),
    };
    expect(publicPackageDigest(reordered)).toBe(expected);
    expect(publicPackageDigest(publicFromWire(publicToWire(oldPub)))).toBe(expected);
    expect(publicPackageDigest({ ...oldPub, signers: { min: 3, max: 6 } })).not.toBe(expected);
  });
});
