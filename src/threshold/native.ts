// The native group backend for FROST(Ed25519, SHA-512): libsodium through `sodium-native`.
//
// Two pieces, both used only through suite.ts:
//  - `makeNativePoint`: a Point class for noble's `createFROST`. noble's multi-scalar multiply
//    calls add/double many times, so points keep noble's extended coordinates for add and double;
//    only scalar multiplication and the RFC 9591 §3.1 DeserializeElement checks (canonical, on the
//    curve, not the identity, in the prime-order subgroup) go to libsodium. A point is held as its
//    canonical 32-byte encoding, as noble coordinates, or both, each computed on first use
//    (compressing is cheap, decompressing is a square root, so sums of encoded points are added
//    natively).
//  - `nativeSigningOps`: the per-certificate hot path (RFC 9591 §5.2 sign, §5.3 aggregate, §5.4
//    verify_signature_share) written directly on encoded points, so the group commitment costs t
//    native multiplications instead of a pure-JS multi-scalar multiply. Long-lived points (group
//    key, verifying shares) are validated once and remembered in a bounded set.
//
// libsodium's scalar multiplications fail (return -1) when the result is the identity, when the
// scalar is zero, and (variable base) when the input is not a prime-order point; each call site
// below handles those cases so the arithmetic stays exact.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { ed25519 } from "@noble/curves/ed25519.js";
import type { EdwardsPoint } from "@noble/curves/abstract/edwards.js";
import type { createFROST } from "@noble/curves/abstract/frost.js";
import { bytesToHex, hexToBytes } from "../common/hex.ts";

/** The few libsodium functions the backend uses (sodium-native 5.x; the wrappers throw on failure). */
export interface SodiumEd25519 {
  crypto_scalarmult_ed25519_noclamp(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_ed25519_base_noclamp(q: Uint8Array, n: Uint8Array): void;
  crypto_core_ed25519_is_valid_point(p: Uint8Array): boolean;
  crypto_core_ed25519_add(r: Uint8Array, p: Uint8Array, q: Uint8Array): void;
  crypto_core_ed25519_sub(r: Uint8Array, p: Uint8Array, q: Uint8Array): void;
}

const SODIUM_FUNCTIONS = [
  "crypto_scalarmult_ed25519_noclamp",
  "crypto_scalarmult_ed25519_base_noclamp",
  "crypto_core_ed25519_is_valid_point",
  "crypto_core_ed25519_add",
  "crypto_core_ed25519_sub",
] as const;

/** Loads sodium-native, or returns the reason it cannot be used. */
export function loadSodium(): { sodium: SodiumEd25519 } | { error: string } {
  try {
    const mod = createRequire(import.meta.url)("sodium-native") as Record<string, unknown>;
    const missing = SODIUM_FUNCTIONS.filter((f) => typeof mod[f] !== "function");
    if (missing.length) return { error: `sodium-native lacks ${missing.join(", ")}` };
    return { sodium: mod as unknown as SodiumEd25519 };
  } catch (e) {
    return { error: `cannot load sodium-native: ${(e as Error).message}` };
  }
}

const NoblePoint = ed25519.Point;
const Fn = NoblePoint.Fn;
const IDENTITY = NoblePoint.ZERO.toBytes();
const isIdentity = (b: Uint8Array): boolean => equalBytes(b, IDENTITY);

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** The point class handed to createFROST: noble coordinates for add/double, libsodium for the rest. */
export type NativePoint = ReturnType<typeof makeNativePoint>["BASE"];

export function makeNativePoint(sodium: SodiumEd25519) {
  class NativePointImpl {
    static Fp = NoblePoint.Fp;
    static Fn = Fn;
    static BASE: NativePointImpl;
    static ZERO: NativePointImpl;

    #ep: EdwardsPoint | undefined;
    #bytes: Uint8Array | undefined;
    /** Known to be a canonical encoding of a prime-order point other than the identity. */
    #prime: boolean;
    #isBase = false;

    private constructor(ep: EdwardsPoint | undefined, bytes: Uint8Array | undefined, prime: boolean) {
      this.#ep = ep;
      this.#bytes = bytes;
      this.#prime = prime;
    }

    // `this`, not the class name, in code run by the static block below: tsc's ES2022 output (dist/)
    // binds the name to the class only after the class body, so the name is undefined there.
    static #base(): NativePointImpl {
      const p = new this(NoblePoint.BASE, NoblePoint.BASE.toBytes(), true);
      p.#isBase = true;
      return p;
    }
    static {
      this.BASE = this.#base();
      this.ZERO = new this(NoblePoint.ZERO, IDENTITY, false);
    }

    static fromNoble(ep: EdwardsPoint): NativePointImpl {
      return new NativePointImpl(ep, undefined, false);
    }
    static fromAffine(p: { x: bigint; y: bigint }): NativePointImpl {
      return new NativePointImpl(NoblePoint.fromAffine(p), undefined, false);
    }
    static fromHex(hex: string): NativePointImpl {
      return NativePointImpl.fromBytes(hexToBytes(hex));
    }
    /**
     * RFC 8032 §5.1.3 strict decoding. A valid prime-order point is recognised by libsodium without
     * decompressing it; anything else goes through noble, which accepts every canonical curve point
     * (the caller then applies the identity and subgroup checks) and throws on the rest.
     */
    static fromBytes(bytes: Uint8Array, zip215 = false): NativePointImpl {
      if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw new Error("point: expected 32 bytes");
      if (!zip215 && sodium.crypto_core_ed25519_is_valid_point(bytes))
        return new NativePointImpl(undefined, Uint8Array.from(bytes), true);
      return new NativePointImpl(NoblePoint.fromBytes(bytes, zip215), undefined, false);
    }

    /** noble's extended coordinates (decompressed on first use). */
    get ep(): EdwardsPoint {
      this.#ep ??= NoblePoint.fromBytes(this.#bytes!);
      return this.#ep;
    }
    /** The canonical encoding, shared: callers inside this module must not mutate it. */
    get raw(): Uint8Array {
      this.#bytes ??= this.#ep!.toBytes();
      return this.#bytes;
    }

    get x(): bigint {
      return this.ep.x;
    }
    get y(): bigint {
      return this.ep.y;
    }
    toAffine(invertedZ?: bigint) {
      return this.ep.toAffine(invertedZ);
    }
    toBytes(): Uint8Array {
      return this.raw.slice();
    }
    toHex(): string {
      return bytesToHex(this.raw);
    }
    toString(): string {
      return `<Point ${this.is0() ? "ZERO" : this.toHex()}>`;
    }
    precompute(): NativePointImpl {
      return this;
    }

    is0(): boolean {
      if (this.#prime) return false;
      return this.#bytes ? isIdentity(this.#bytes) : this.#ep!.is0();
    }
    equals(other: NativePointImpl): boolean {
      if (!(other instanceof NativePointImpl)) throw new Error("NativePoint expected");
      if (this.#ep && other.#ep && !(this.#bytes && other.#bytes)) return this.#ep.equals(other.#ep);
      return equalBytes(this.raw, other.raw);
    }
    assertValidity(): void {
      if (this.#prime) return;
      // An encoding only exists for points decoded or computed on the curve; noble checks the rest.
      this.ep.assertValidity();
    }
    isTorsionFree(): boolean {
      if (this.#prime) return true;
      return this.is0() || sodium.crypto_core_ed25519_is_valid_point(this.raw);
    }
    isSmallOrder(): boolean {
      return this.clearCofactor().is0();
    }

    add(other: NativePointImpl): NativePointImpl {
      if (!(other instanceof NativePointImpl)) throw new Error("NativePoint expected");
      if (this.#ep && other.#ep) return NativePointImpl.fromNoble(this.#ep.add(other.#ep));
      const r = new Uint8Array(32);
      sodium.crypto_core_ed25519_add(r, this.raw, other.raw);
      return new NativePointImpl(undefined, r, false);
    }
    subtract(other: NativePointImpl): NativePointImpl {
      if (!(other instanceof NativePointImpl)) throw new Error("NativePoint expected");
      if (this.#ep && other.#ep) return NativePointImpl.fromNoble(this.#ep.subtract(other.#ep));
      const r = new Uint8Array(32);
      sodium.crypto_core_ed25519_sub(r, this.raw, other.raw);
      return new NativePointImpl(undefined, r, false);
    }
    double(): NativePointImpl {
      return NativePointImpl.fromNoble(this.ep.double());
    }
    negate(): NativePointImpl {
      if (this.#ep) return NativePointImpl.fromNoble(this.#ep.negate());
      const r = new Uint8Array(32);
      sodium.crypto_core_ed25519_sub(r, IDENTITY, this.raw);
      return new NativePointImpl(undefined, r, this.#prime);
    }
    clearCofactor(): NativePointImpl {
      return this.double().double().double();
    }

    /** Constant-time multiplication, 1 ≤ scalar < L (noble's contract). */
    multiply(scalar: bigint): NativePointImpl {
      if (!Fn.isValidNot0(scalar)) throw new RangeError("invalid scalar: expected 1 <= sc < curve.n");
      return this.#mul(scalar, () => NativePointImpl.fromNoble(this.ep.multiply(scalar)));
    }
    /** Variable-time multiplication, 0 ≤ scalar < L (noble's contract). */
    multiplyUnsafe(scalar: bigint): NativePointImpl {
      if (!Fn.isValid(scalar)) throw new RangeError("invalid scalar: expected 0 <= sc < curve.n");
      if (scalar === 0n) return NativePointImpl.ZERO;
      return this.#mul(scalar, () => NativePointImpl.fromNoble(this.ep.multiplyUnsafe(scalar)));
    }
    #mul(scalar: bigint, fallback: () => NativePointImpl): NativePointImpl {
      if (this.is0()) return NativePointImpl.ZERO;
      const n = Fn.toBytes(scalar);
      const q = new Uint8Array(32);
      try {
        if (this.#isBase) sodium.crypto_scalarmult_ed25519_base_noclamp(q, n);
        else sodium.crypto_scalarmult_ed25519_noclamp(q, n, this.raw);
        // 0 < scalar < L times a prime-order point is a prime-order point other than the identity.
        return new NativePointImpl(undefined, q, true);
      } catch {
        // libsodium refuses points outside the prime-order subgroup: exact but slower pure JS.
        return fallback();
      } finally {
        n.fill(0);
      }
    }
  }
  return NativePointImpl;
}

// ---------------------------------------------------------------------------------------------
// The direct signing path (RFC 9591 §4 helpers, §5.2–5.4), on encoded points.

const CONTEXT = "FROST-ED25519-SHA512-v1";
const ORDER = Fn.ORDER;

function scalarFromHash(...parts: (string | Uint8Array)[]): bigint {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  const d = h.digest();
  let n = 0n;
  for (let i = d.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(d[i]!);
  return n % ORDER;
}
const sha512 = (...parts: (string | Uint8Array)[]): Buffer => {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return h.digest();
};
/** RFC 9591 §6.1 H1, H2, H4, H5. */
const H1 = (m: Uint8Array): bigint => scalarFromHash(CONTEXT, "rho", m);
const H2 = (...m: Uint8Array[]): bigint => scalarFromHash(...m);
const H4 = (m: Uint8Array): Buffer => sha512(CONTEXT, "msg", m);
const H5 = (m: Uint8Array): Buffer => sha512(CONTEXT, "com", m);

/** The error shape noble's aggregate throws, which sign.ts turns into an identifiable abort. */
export class AggregateError extends Error {
  constructor(
    message: string,
    readonly cheaters: string[],
  ) {
    super(message);
  }
}

/** Ops that replace createFROST's signShare / verifyShare / aggregate in the native suite. */
export type SigningOps = Pick<ReturnType<typeof createFROST>, "signShare" | "verifyShare" | "aggregate">;
type Pub = Parameters<SigningOps["aggregate"]>[0];
type CommitmentList = Parameters<SigningOps["aggregate"]>[1];

interface ParsedCommitment {
  id: string;
  x: bigint;
  idBytes: Uint8Array;
  hiding: Uint8Array;
  binding: Uint8Array;
}

interface Prepared {
  list: ParsedCommitment[];
  groupCommitment: Uint8Array;
  /** ρ_i · E_i (the binding term) per identifier. */
  bindingTerms: Map<string, Uint8Array>;
  bindingFactors: Map<string, bigint>;
  challenge: bigint;
}

export function nativeSigningOps(sodium: SodiumEd25519): SigningOps {
  /** Long-lived points (group keys, verifying shares) checked once: hex → true. Bounded. */
  const knownPoints = new Set<string>();
  const KNOWN_MAX = 4096;

  const isElement = (b: unknown): b is Uint8Array =>
    b instanceof Uint8Array && b.length === 32 && sodium.crypto_core_ed25519_is_valid_point(b);

  /** RFC 9591 §3.1 DeserializeElement for a point that recurs across signatures. */
  function longLivedElement(b: unknown, what: string): Uint8Array {
    if (!(b instanceof Uint8Array) || b.length !== 32) throw new Error(`${what}: expected 32 bytes`);
    const key = bytesToHex(b);
    if (knownPoints.has(key)) return b;
    if (!sodium.crypto_core_ed25519_is_valid_point(b)) throw new Error(`${what}: invalid point`);
    if (knownPoints.size >= KNOWN_MAX) knownPoints.delete(knownPoints.values().next().value!);
    knownPoints.add(key);
    return b;
  }

  function parseIdentifier(id: unknown): { x: bigint; idBytes: Uint8Array } {
    if (typeof id !== "string" || !/^[0-9a-f]{64}$/.test(id))
      throw new Error("expected canonical identifier hex");
    const idBytes = hexToBytes(id);
    const x = Fn.fromBytes(idBytes); // throws when ≥ L
    if (x === 0n) throw new Error(`Invalid identifier ${x}`);
    return { x, idBytes };
  }

  function scalar(b: unknown, what: string): bigint {
    if (!(b instanceof Uint8Array) || b.length !== 32) throw new Error(`${what}: expected 32 bytes`);
    return Fn.fromBytes(b); // throws when ≥ L (RFC 9591 §3.1 DeserializeScalar)
  }

  function checkPublic(pub: Pub): Uint8Array {
    const s = pub?.signers;
    if (!s || !Number.isSafeInteger(s.min) || !Number.isSafeInteger(s.max) || s.min < 2 || s.min > s.max)
      throw new Error(`Wrong signers info: min=${s?.min} max=${s?.max}`);
    if (!Array.isArray(pub.commitments) || pub.commitments.length < 1) throw new Error("pub.commitments");
    if (typeof pub.verifyingShares !== "object" || pub.verifyingShares === null)
      throw new Error("pub.verifyingShares");
    return longLivedElement(pub.commitments[0], "group public key");
  }

  function scalarMul(point: Uint8Array, k: bigint): Uint8Array {
    const q = new Uint8Array(32);
    if (k === 0n) return Uint8Array.from(IDENTITY);
    const n = Fn.toBytes(k);
    // With 0 < k < L and a prime-order point the result is never the identity, so libsodium fails
    // only when `point` is not a canonical prime-order point: the caller treats that as invalid.
    sodium.crypto_scalarmult_ed25519_noclamp(q, n, point);
    return q;
  }
  function baseMul(k: bigint): Uint8Array {
    if (k === 0n) return Uint8Array.from(IDENTITY);
    const q = new Uint8Array(32);
    const n = Fn.toBytes(k);
    sodium.crypto_scalarmult_ed25519_base_noclamp(q, n);
    n.fill(0);
    return q;
  }
  function add(a: Uint8Array, b: Uint8Array): Uint8Array {
    const r = new Uint8Array(32);
    sodium.crypto_core_ed25519_add(r, a, b);
    return r;
  }

  /** RFC 9591 §4.3–4.5: binding factors, group commitment and challenge. */
  function prepare(gpk: Uint8Array, commitmentList: CommitmentList, msg: Uint8Array): Prepared {
    if (!Array.isArray(commitmentList)) throw new Error("commitmentList: expected array");
    if (!(msg instanceof Uint8Array)) throw new Error("msg: expected Uint8Array");
    const list: ParsedCommitment[] = commitmentList.map((c) => {
      const { x, idBytes } = parseIdentifier(c?.identifier);
      // The binding point is validated by its scalar multiplication below (libsodium refuses
      // anything but a canonical prime-order point), so only the hiding point is checked here.
      if (!isElement(c.hiding) || !(c.binding instanceof Uint8Array) || c.binding.length !== 32)
        throw new Error("invalid commitment point");
      return { id: c.identifier, x, idBytes, hiding: c.hiding, binding: c.binding };
    });
    list.sort((a, b) => (a.x < b.x ? -1 : a.x > b.x ? 1 : 0));
    for (let i = 1; i < list.length; i++)
      if (list[i]!.x === list[i - 1]!.x) throw new Error("duplicate identifier in commitment list");
    const encoded = Buffer.concat(list.flatMap((c) => [c.idBytes, c.hiding, c.binding]));
    const rhoPrefix = Buffer.concat([gpk, H4(msg), H5(encoded)]);
    const bindingFactors = new Map<string, bigint>();
    const bindingTerms = new Map<string, Uint8Array>();
    let R: Uint8Array = Uint8Array.from(IDENTITY);
    for (const c of list) {
      const rho = H1(Buffer.concat([rhoPrefix, c.idBytes]));
      if (rho === 0n && !isElement(c.binding)) throw new Error("invalid commitment point");
      let term: Uint8Array;
      try {
        term = scalarMul(c.binding, rho);
      } catch {
        throw new Error("invalid commitment point");
      }
      bindingFactors.set(c.id, rho);
      bindingTerms.set(c.id, term);
      R = add(add(R, c.hiding), term);
    }
    // An identity group commitment cannot be serialised (RFC 9591 §3.1): refuse, as noble does.
    if (isIdentity(R)) throw new Error("invalid point: identity group commitment");
    return { list, groupCommitment: R, bindingTerms, bindingFactors, challenge: H2(R, gpk, msg) };
  }

  /** RFC 9591 §4.2 derive_interpolating_value at x = 0. */
  function lambda(list: ParsedCommitment[], xi: bigint): bigint {
    let num = 1n;
    let den = 1n;
    for (const { x } of list) {
      if (x === xi) continue;
      num = Fn.mul(num, x);
      den = Fn.mul(den, Fn.sub(x, xi));
    }
    return Fn.div(num, den);
  }

  function countOk(pub: Pub, n: number): boolean {
    return n >= pub.signers.min && n <= pub.signers.max;
  }

  const ops: SigningOps = {
    signShare(secret, pub, nonces, commitmentList, msg) {
      if (typeof secret?.identifier !== "string") throw new Error("secret.identifier");
      const sk = scalar(secret.signingShare, "secret.signingShare");
      const gpk = checkPublic(pub);
      const d = scalar(nonces?.hiding, "nonces.hiding");
      const e = scalar(nonces?.binding, "nonces.binding");
      if (!Array.isArray(commitmentList) || !countOk(pub, commitmentList.length))
        throw new Error(`Wrong number of commitments=${commitmentList?.length}`);
      if (d === 0n || e === 0n) throw new Error("signing nonces already used");
      const own = commitmentList.find((c) => c.identifier === secret.identifier);
      if (!own) throw new Error("missing signer commitment");
      if (!equalBytes(own.hiding, baseMul(d)) || !equalBytes(own.binding, baseMul(e)))
        throw new Error("incorrect signer commitment");
      const p = prepare(gpk, commitmentList, msg);
      const me = p.list.find((c) => c.id === secret.identifier)!;
      const l = lambda(p.list, me.x);
      const rho = p.bindingFactors.get(me.id)!;
      // RFC 9591 §5.2: z_i = d_i + e_i·ρ_i + λ_i·s_i·c
      const z = Fn.add(Fn.add(d, Fn.mul(e, rho)), Fn.mul(Fn.mul(l, sk), p.challenge));
      nonces.hiding.fill(0);
      nonces.binding.fill(0);
      return Uint8Array.from(Fn.toBytes(z));
    },

    verifyShare(pub, commitmentList, msg, identifier, sigShare) {
      const gpk = checkPublic(pub);
      parseIdentifier(identifier);
      const z = scalar(sigShare, "sigShare");
      if (!Array.isArray(commitmentList)) throw new Error("commitmentList: expected array");
      if (!commitmentList.some((c) => c.identifier === identifier))
        throw new Error("cannot find identifier commitment");
      const pk = longLivedElement(pub.verifyingShares[identifier], "verifying share");
      const p = prepare(gpk, commitmentList, msg);
      const me = p.list.find((c) => c.id === identifier)!;
      // RFC 9591 §5.4: z_i·G == D_i + ρ_i·E_i + (c·λ_i)·PK_i
      const expected = add(
        add(me.hiding, p.bindingTerms.get(identifier)!),
        scalarMul(pk, Fn.mul(p.challenge, lambda(p.list, me.x))),
      );
      return equalBytes(baseMul(z), expected);
    },

    aggregate(pub, commitmentList, msg, sigShares) {
      const gpk = checkPublic(pub);
      if (!Array.isArray(commitmentList) || !countOk(pub, commitmentList.length))
        throw new AggregateError("aggregation failed", []);
      const ids = commitmentList.map((c) => c.identifier);
      if (new Set(ids).size !== ids.length || ids.length !== Object.keys(sigShares ?? {}).length)
        throw new AggregateError("aggregation failed", []);
      for (const id of ids)
        if (!Object.hasOwn(sigShares, id) || !Object.hasOwn(pub.verifyingShares, id))
          throw new AggregateError("aggregation failed", []);
      const p = prepare(gpk, commitmentList, msg);
      let z = 0n;
      for (const id of ids) z = Fn.add(z, scalar(sigShares[id], "sigShare"));
      // RFC 9591 §5.3 then RFC 8032 §5.1.7 with prime-order R and PK: z·G == R + c·PK.
      if (!equalBytes(baseMul(z), add(p.groupCommitment, scalarMul(gpk, p.challenge)))) {
        const cheaters = ids.filter((id) => {
          try {
            return !ops.verifyShare(pub, commitmentList, msg, id, sigShares[id]!);
          } catch {
            return true;
          }
        });
        throw new AggregateError("aggregation failed", cheaters);
      }
      return Uint8Array.from(Buffer.concat([p.groupCommitment, Fn.toBytes(z)]));
    },
  };
  return ops;
}
