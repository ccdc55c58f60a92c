// The native (libsodium) and pure-JS (noble) FROST backends must be interchangeable: the same
// shares, commitments and signatures as noble's own ed25519_FROST for the same inputs, signatures
// from mixed backends, the same refusals of invalid group elements (RFC 9591 §3.1), and a working
// fallback when the native module is not used.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { ed25519, ed25519_FROST } from "@noble/curves/ed25519.js";
import {
  FROST_BACKENDS,
  frostSuite,
  identifierForName,
  selectBackend,
  suiteBackend,
  type FrostBackend,
  type FrostPublic,
  type NonceCommitments,
} from "../../src/threshold/suite.ts";
import { loadSodium, makeNativePoint } from "../../src/threshold/native.ts";
import { aggregateSignature, NoncePool, signShare, verifySignatureShare } from "../../src/threshold/sign.ts";
import { dkgPart1, dkgPart2, dkgPart3, groupPublicKey } from "../../src/threshold/dkg.ts";
import { commitmentFromWire, publicFromWire, publicToWire } from "../../src/threshold/encoding.ts";
import { bytesToHex, hexToBytes } from "../../src/common/hex.ts";

const Fn = ed25519.Point.Fn;
/** A deterministic "RNG": SHA-512 of a label and a counter, so both suites see the same randomness. */
function seededRng(label: string) {
  let i = 0;
  return (n = 32) => {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const block = createHash("sha512").update(`${label}/${i++}`).digest();
      out.set(block.subarray(0, n - off), off);
      off += block.length;
    }
    return out;
  };
}

/** A t-of-n key from noble's trusted dealer: a test fixture only (src/ never deals keys). */
function dealtKey(t: number, n: number) {
  const ids = Array.from({ length: n }, (_, i) => identifierForName(`p${i}`));
  const deal = ed25519_FROST.trustedDealer({ min: t, max: n }, ids, undefined, seededRng(`deal-${t}-${n}`));
  return { ids, pub: deal.public, secrets: ids.map((id) => deal.secretShares[id]!) };
}

type Suite = typeof ed25519_FROST;
const suites: Record<"reference" | FrostBackend, Suite> = {
  reference: ed25519_FROST,
  noble: frostSuite("noble"),
  native: frostSuite("native"),
};

/** One signing run with every role on a chosen suite; the nonces come from a seeded RNG. */
function run(
  key: ReturnType<typeof dealtKey>,
  signerIdx: number[],
  roles: { commit: Suite; sign: Suite; aggregate: Suite },
  msg: Uint8Array,
) {
  const signers = signerIdx.map((i) => key.secrets[i]!);
  const round1 = signers.map((s) => roles.commit.commit(s, seededRng(`nonce-${s.identifier}`)));
  const list: NonceCommitments[] = round1.map((r) => r.commitments);
  const shares = Object.fromEntries(
    signers.map((s, i) => [s.identifier, roles.sign.signShare(s, key.pub, round1[i]!.nonces, list, msg)]),
  );
  const sig = roles.aggregate.aggregate(key.pub, list, msg, shares);
  return { list, shares, sig };
}

describe("native backend cross-checked against noble's own ed25519_FROST", () => {
  const msg = new TextEncoder().encode("a TBSCertificate");
  it.each([
    [2, 3],
    [3, 5],
    [5, 7],
  ])("%i-of-%i: identical commitments, shares and signature", (t, n) => {
    const key = dealtKey(t, n);
    const signerIdx = Array.from({ length: t }, (_, i) => (i * 2) % n).sort();
    const ref = run(
      key,
      signerIdx,
      { commit: ed25519_FROST, sign: ed25519_FROST, aggregate: ed25519_FROST },
      msg,
    );
    for (const b of FROST_BACKENDS) {
      const s = suites[b];
      const out = run(key, signerIdx, { commit: s, sign: s, aggregate: s }, msg);
      expect(out.list.map((c) => bytesToHex(c.hiding) + bytesToHex(c.binding))).toEqual(
        ref.list.map((c) => bytesToHex(c.hiding) + bytesToHex(c.binding)),
      );
      expect(Object.values(out.shares).map(bytesToHex)).toEqual(Object.values(ref.shares).map(bytesToHex));
      expect(bytesToHex(out.sig)).toBe(bytesToHex(ref.sig));
      for (const [id, share] of Object.entries(out.shares))
        expect(s.verifyShare(key.pub, out.list, msg, id, share)).toBe(true);
    }
    expect(ed25519.verify(ref.sig, msg, key.pub.commitments[0]!)).toBe(true);
  });

  it("a signature made with mixed backends verifies", () => {
    const key = dealtKey(3, 5);
    const { native, noble } = suites;
    const signers = [key.secrets[0]!, key.secrets[2]!, key.secrets[4]!];
    const round1 = signers.map((s, i) => (i === 1 ? noble : native).commit(s));
    const list = round1.map((r) => r.commitments);
    const shares = Object.fromEntries(
      signers.map((s, i) => [
        s.identifier,
        signShare(s, key.pub, round1[i]!.nonces, list, msg, i === 1 ? noble : native),
      ]),
    );
    for (const [id, share] of Object.entries(shares)) {
      expect(verifySignatureShare(key.pub, list, msg, id, share, noble)).toBe(true);
      expect(verifySignatureShare(key.pub, list, msg, id, share, native)).toBe(true);
    }
    const sigNoble = aggregateSignature(key.pub, list, msg, shares, noble);
    const sigNative = aggregateSignature(key.pub, list, msg, shares, native);
    expect(bytesToHex(sigNative)).toBe(bytesToHex(sigNoble));
    expect(ed25519.verify(sigNoble, msg, key.pub.commitments[0]!)).toBe(true);
  });

  it("a DKG run on the native backend gives keys that noble signs with, and vice versa", () => {
    for (const [dkgOn, signOn] of [
      ["native", "noble"],
      ["noble", "native"],
    ] as const) {
      const names = ["a", "b", "c", "d"];
      const ids = names.map(identifierForName);
      const p1 = ids.map((id) => dkgPart1(id, 3, 4, suites[dkgOn]));
      const sent = p1.map((p, i) =>
        dkgPart2(
          p.state,
          p1.filter((_, j) => j !== i).map((o) => o.round1),
          suites[dkgOn],
        ),
      );
      const keys = ids.map((id, i) =>
        dkgPart3(
          p1[i]!.state,
          p1.filter((_, j) => j !== i).map((o) => o.round1),
          Object.fromEntries(ids.flatMap((o, j) => (j === i ? [] : [[o, sent[j]![id]!]]))),
          suites[dkgOn],
        ),
      );
      const pub = keys[0]!.public;
      for (const k of keys) expect(publicToWire(k.public)).toEqual(publicToWire(pub));
      const pools = [keys[1]!, keys[3]!, keys[0]!].map((k) => ({
        k,
        pool: new NoncePool(k.secret, 60_000, 4, suites[signOn]),
      }));
      const wires = pools.map((p) => p.pool.commit());
      const list = wires.map(commitmentFromWire);
      const shares = Object.fromEntries(
        pools.map((p, i) => [
          p.k.secret.identifier,
          signShare(p.k.secret, pub, p.pool.take(wires[i]!)!, list, msg, suites[signOn]),
        ]),
      );
      const sig = aggregateSignature(pub, list, msg, shares, suites[signOn]);
      expect(ed25519.verify(sig, msg, groupPublicKey(pub))).toBe(true);
    }
  });

  it("names the signer whose share is bad on both backends", () => {
    const key = dealtKey(3, 5);
    for (const b of FROST_BACKENDS) {
      const s = suites[b];
      const signers = [key.secrets[0]!, key.secrets[1]!, key.secrets[3]!];
      const round1 = signers.map((x) => s.commit(x));
      const list = round1.map((r) => r.commitments);
      const shares = Object.fromEntries(
        signers.map((x, i) => [x.identifier, signShare(x, key.pub, round1[i]!.nonces, list, msg, s)]),
      );
      const victim = signers[2]!.identifier;
      shares[victim] = Fn.toBytes(Fn.add(Fn.fromBytes(shares[victim]!), 1n));
      expect(verifySignatureShare(key.pub, list, msg, victim, shares[victim]!, s)).toBe(false);
      expect(() => aggregateSignature(key.pub, list, msg, shares, s)).toThrow(
        expect.objectContaining({ code: "SIGNATURE_SHARE_INVALID", culprits: [victim] }),
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Invalid group elements (RFC 9591 §3.1 DeserializeElement).

const P = 2n ** 255n - 19n;
const le = (n: bigint) => {
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return b;
};
/** y ≥ p: non-canonical encodings; y in [p, p+19) decodes (mod p) to a point noble's zip215 mode accepts. */
const nonCanonical = Array.from({ length: 19 }, (_, k) => le(P + BigInt(k))).filter((b) => {
  try {
    ed25519.Point.fromBytes(b, true);
    return true;
  } catch {
    return false;
  }
});
/** A y with no x on the curve. */
const offCurve = (() => {
  for (let y = 2n; ; y++) {
    try {
      ed25519.Point.fromBytes(le(y));
    } catch {
      return le(y);
    }
  }
})();
const ORDER8 = hexToBytes("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05");
const IDENTITY = ed25519.Point.ZERO.toBytes();
/** A prime-order point plus a point of order 8: on the curve, canonical, but not torsion-free. */
const mixedOrder = ed25519.Point.BASE.multiply(12345n).add(ed25519.Point.fromBytes(ORDER8)).toBytes();

const invalid: [string, Uint8Array<ArrayBuffer>][] = (
  [
    ["identity", IDENTITY],
    ["small order (8)", ORDER8],
    ["with a torsion component", mixedOrder],
    ["off the curve", offCurve],
    ...nonCanonical.map((b, i): [string, Uint8Array] => [`non-canonical #${i}`, b]),
  ] as [string, Uint8Array][]
).map(([what, b]) => [what, Uint8Array.from(b)]);

describe.each(FROST_BACKENDS)("%s backend refuses invalid group elements", (backend) => {
  const s = suites[backend];
  const key = dealtKey(2, 3);
  const msg = new Uint8Array([1, 2, 3]);
  it("has non-canonical cases to try", () => expect(nonCanonical.length).toBeGreaterThan(0));

  it.each(invalid)("as a commitment, group key or verifying share: %s", (_what, bad) => {
    const [a, b] = [key.secrets[0]!, key.secrets[1]!];
    const ra = s.commit(a);
    const rb = s.commit(b);
    const good = [ra.commitments, rb.commitments];
    const badHiding = [ra.commitments, { ...rb.commitments, hiding: bad }];
    const badBinding = [ra.commitments, { ...rb.commitments, binding: bad }];
    expect(() => signShare(a, key.pub, s.commit(a).nonces, badHiding, msg, s)).toThrow();
    expect(() => s.signShare(a, key.pub, ra.nonces, badBinding, msg)).toThrow();
    expect(verifySignatureShare(key.pub, badHiding, msg, a.identifier, new Uint8Array(32), s)).toBe(false);
    const badPub: FrostPublic = { ...key.pub, commitments: [bad] };
    expect(() => s.signShare(a, badPub, s.commit(a).nonces, good, msg)).toThrow();
    const badShares: FrostPublic = {
      ...key.pub,
      verifyingShares: { ...key.pub.verifyingShares, [a.identifier]: bad },
    };
    expect(verifySignatureShare(badShares, good, msg, a.identifier, new Uint8Array(32), s)).toBe(false);
    expect(() => s.verify(new Uint8Array(64), msg, bad)).toThrow();
    expect(() => s.validateSecret(a, { ...key.pub, commitments: [key.pub.commitments[0]!, bad] })).toThrow();
  });
});

describe("native point class edge cases", () => {
  const loaded = loadSodium();
  if ("error" in loaded) throw new Error(loaded.error);
  const NP = makeNativePoint(loaded.sodium);
  const N = ed25519.Point;
  const hex = (p: { toBytes(): Uint8Array }) => bytesToHex(p.toBytes());
  const L = Fn.ORDER;

  it("matches noble on scalar 0, 1, L-1 and the identity", () => {
    const P1 = NP.BASE.multiply(777n);
    const Q1 = N.BASE.multiply(777n);
    expect(hex(P1)).toBe(hex(Q1));
    expect(P1.multiplyUnsafe(0n).is0()).toBe(true);
    expect(NP.BASE.multiplyUnsafe(0n).is0()).toBe(true);
    expect(() => P1.multiply(0n)).toThrow(RangeError);
    expect(() => P1.multiply(L)).toThrow(RangeError);
    expect(() => P1.multiplyUnsafe(L)).toThrow(RangeError);
    expect(hex(P1.multiply(1n))).toBe(hex(P1));
    expect(hex(P1.multiply(L - 1n))).toBe(hex(Q1.negate()));
    expect(P1.add(P1.negate()).is0()).toBe(true);
    expect(P1.subtract(P1).is0()).toBe(true);
    expect(NP.ZERO.multiply(5n).is0()).toBe(true);
    expect(hex(NP.ZERO.add(P1))).toBe(hex(P1));
    expect(P1.add(P1).equals(P1.double())).toBe(true);
    expect(hex(P1.double().add(P1))).toBe(hex(Q1.multiply(3n)));
    expect(P1.isTorsionFree()).toBe(true);
    expect(NP.ZERO.isTorsionFree()).toBe(true);
  });

  it("falls back to exact arithmetic for points libsodium refuses", () => {
    const mixed = NP.fromBytes(mixedOrder);
    const ref = N.fromBytes(mixedOrder);
    expect(mixed.isTorsionFree()).toBe(false);
    expect(ref.isTorsionFree()).toBe(false);
    for (const k of [1n, 8n, 3n, L - 1n, 2n ** 200n + 7n])
      expect(hex(mixed.multiplyUnsafe(k))).toBe(hex(ref.multiplyUnsafe(k)));
    const small = NP.fromBytes(ORDER8);
    expect(small.multiplyUnsafe(8n).is0()).toBe(true);
    expect(hex(small.multiply(3n))).toBe(hex(N.fromBytes(ORDER8).multiply(3n)));
    expect(small.isSmallOrder()).toBe(true);
    expect(() => NP.fromBytes(offCurve)).toThrow();
    for (const b of nonCanonical) expect(() => NP.fromBytes(b)).toThrow();
  });

  it("does not let callers alter a point through toBytes()", () => {
    const p = NP.BASE.multiply(99n);
    const before = hex(p);
    p.toBytes().fill(0);
    expect(hex(p)).toBe(before);
  });
});

describe("backend selection and the pure-JS fallback", () => {
  it("picks native when it loads, noble when forced or when native cannot load", () => {
    expect(selectBackend(undefined, () => true)).toBe("native");
    expect(selectBackend("", () => true)).toBe("native");
    expect(selectBackend(undefined, () => false)).toBe("noble");
    expect(selectBackend("noble", () => true)).toBe("noble");
    expect(selectBackend("native", () => true)).toBe("native");
    expect(() => selectBackend("native", () => false)).toThrow(/TCA_FROST_BACKEND=native/);
    expect(() => selectBackend("sodium", () => true)).toThrow(/must be "noble" or "native"/);
    expect(suiteBackend).toBe(process.env.TCA_FROST_BACKEND || "native");
  });

  const script = `
    const { suite, suiteBackend } = await import("./src/threshold/suite.ts");
    const { dkgPart1, dkgPart2, dkgPart3, groupPublicKey } = await import("./src/threshold/dkg.ts");
    const { NoncePool, signShare, aggregateSignature } = await import("./src/threshold/sign.ts");
    const { commitmentFromWire } = await import("./src/threshold/encoding.ts");
    const { ed25519 } = await import("@noble/curves/ed25519.js");
    const ids = ["x", "y"].map((n) => suite.Identifier.derive(n));
    const p1 = ids.map((id) => dkgPart1(id, 2, 2));
    const s2 = p1.map((p, i) => dkgPart2(p.state, [p1[1 - i].round1]));
    const keys = ids.map((id, i) => dkgPart3(p1[i].state, [p1[1 - i].round1], { [ids[1 - i]]: s2[1 - i][id] }));
    const pools = keys.map((k) => new NoncePool(k.secret));
    const wires = pools.map((p) => p.commit());
    const list = wires.map(commitmentFromWire);
    const msg = new Uint8Array([7]);
    const shares = Object.fromEntries(keys.map((k, i) => [k.secret.identifier, signShare(k.secret, keys[0].public, pools[i].take(wires[i]), list, msg)]));
    const sig = aggregateSignature(keys[0].public, list, msg, shares);
    console.log(JSON.stringify({ suiteBackend, ok: ed25519.verify(sig, msg, groupPublicKey(keys[0].public)) }));
  `;
  const runWith = (value: string) =>
    execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: new URL("../..", import.meta.url),
      env: { ...process.env, TCA_FROST_BACKEND: value },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });

  it("TCA_FROST_BACKEND=noble runs a DKG and a signature on the pure-JS backend", () => {
    expect(JSON.parse(runWith("noble"))).toEqual({ suiteBackend: "noble", ok: true });
  });

  it("an invalid TCA_FROST_BACKEND stops the process with a clear error", () => {
    expect(() => runWith("fast")).toThrow(/TCA_FROST_BACKEND must be "noble" or "native"/);
  });
});

describe("publicFromWire", () => {
  it("decodes a package once and hands out the same frozen object", () => {
    const key = dealtKey(2, 3);
    const wire = publicToWire(key.pub);
    const a = publicFromWire(wire);
    const b = publicFromWire(JSON.parse(JSON.stringify(wire)));
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(publicToWire(a)).toEqual(wire);
    expect(() => {
      (a.verifyingShares as Record<string, Uint8Array>)["x"] = new Uint8Array(32);
    }).toThrow(TypeError);
  });
});

void randomBytes;
