// Classifying subject public keys into ca-config's KeyType names (RSA, its size bounded by the
// profile's rsaMinBits/rsaMaxBits; ECDSA P-256/P-384/P-521, Ed25519, Ed448).
//
// Loading an SPKI with node:crypto (which checks, e.g., that an EC point lies on its curve) is
// the most expensive step of reading a certificate request, and one request's key is read several
// times: when its CSR is parsed, by the pre-sign lint and by the inspector. Successful loads are
// therefore remembered by the exact SPKI bytes (a bounded map; the same bytes always load to the
// same key), and a key's [type, bits] by its KeyObject. Failures are never remembered: a key that
// does not load is tried, and refused, every time.
//
// OpenSSL's generic DER decoder costs 100-250 µs a key whatever the key. For the SPKI shapes met
// nearly always (RSA with rsaEncryption, P-256 uncompressed, Ed25519, Ed448, each in exact DER),
// the same key is loaded through node's JWK import instead, which builds it directly: the DER
// import accepts every such RSA/EdDSA key (it checks nothing more than the structure read here),
// and both imports check that a P-256 point lies on the curve. If the JWK import refuses, the DER
// import runs, so a bad key is refused with the same error as before.
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import type { KeyType } from "../config/schema.ts";
import { X509Error } from "./errors.ts";
import { TAG } from "./der.ts";
import { children, readDer } from "./der-read.ts";

const CURVES: Record<string, [KeyType, number]> = {
  prime256v1: ["ec-p256", 256],
  secp384r1: ["ec-p384", 384],
  secp521r1: ["ec-p521", 521],
};

const typeCache = new WeakMap<KeyObject, readonly [KeyType, number]>();

/** [type, bits]: RSA modulus bits; curve size for EC; 256 for Ed25519, 448 for Ed448. */
export function keyTypeOf(key: KeyObject): [KeyType, number] {
  const hit = typeCache.get(key);
  if (hit) return [hit[0], hit[1]];
  const r = classify(key);
  typeCache.set(key, r);
  return [r[0], r[1]];
}

function classify(key: KeyObject): [KeyType, number] {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return ["rsa", d.modulusLength ?? 0];
    case "ec": {
      const c = CURVES[d.namedCurve ?? ""];
      if (c) return [c[0], c[1]];
      throw new X509Error(
        "KEY_TYPE_NOT_ALLOWED",
        `The CSR's key is on curve ${d.namedCurve ?? "(unnamed)"}; tca accepts P-256, P-384 and P-521.`,
        "publicKey",
      );
    }
    case "ed25519":
      return ["ed25519", 256];
    case "ed448":
      return ["ed448", 448];
    default:
      throw new X509Error(
        "KEY_TYPE_NOT_ALLOWED",
        `The CSR's key type ${key.asymmetricKeyType ?? "(unknown)"} is not one tca accepts (RSA, ECDSA, Ed25519, Ed448).`,
        "publicKey",
      );
  }
}

/** How many successfully loaded SPKIs are remembered (oldest forgotten first). */
export const SPKI_CACHE_MAX = 512;
const loaded = new Map<string, KeyObject>();

/**
 * createPublicKey of a DER SubjectPublicKeyInfo, remembered by its exact bytes. Throws node's own
 * error when the key does not load (callers word it for their context).
 */
export function publicKeyFromSpki(spkiDer: Uint8Array): KeyObject {
  const view = Buffer.from(spkiDer.buffer, spkiDer.byteOffset, spkiDer.byteLength);
  const id = view.toString("latin1"); // one char per byte: distinct bytes, distinct keys
  const hit = loaded.get(id);
  if (hit) return hit;
  const key = importSpki(spkiDer);
  if (loaded.size >= SPKI_CACHE_MAX) loaded.delete(loaded.keys().next().value!);
  loaded.set(id, key);
  return key;
}

/** Loads a DER SPKI with node:crypto; throws KEY_INVALID naming why. */
export function loadSpki(spkiDer: Uint8Array): KeyObject {
  try {
    return publicKeyFromSpki(spkiDer);
  } catch (e) {
    throw new X509Error(
      "KEY_INVALID",
      `The public key cannot be loaded: ${(e as Error).message}.`,
      "publicKey",
      { cause: e },
    );
  }
}

function importSpki(spkiDer: Uint8Array): KeyObject {
  const jwk = plainJwk(spkiDer);
  if (jwk) {
    try {
      return createPublicKey({ key: jwk, format: "jwk" });
    } catch {
      // fall through: the DER import decides, and words any refusal
    }
  }
  return createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const b64u = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url");

// Exact DER prefixes (RFC 8410 §4, RFC 5480 §2 with the point's 0x04 uncompressed-form octet).
const ED25519_PREFIX = "302a300506032b6570032100";
const ED448_PREFIX = "3043300506032b6571033a00";
const P256_PREFIX = "3059301306072a8648ce3d020106082a8648ce3d03010703420004";
/** AlgorithmIdentifier { rsaEncryption, NULL } (RFC 4055 §1.2). */
const RSA_ALG = "300d06092a864886f70d0101010500";

/** The JWK for an SPKI in one of the plain shapes, or undefined (then only the DER import runs). */
function plainJwk(spki: Uint8Array): JsonWebKey | undefined {
  if (spki.length === 44 && hex(spki.subarray(0, 12)) === ED25519_PREFIX)
    return { kty: "OKP", crv: "Ed25519", x: b64u(spki.subarray(12)) };
  if (spki.length === 69 && hex(spki.subarray(0, 12)) === ED448_PREFIX)
    return { kty: "OKP", crv: "Ed448", x: b64u(spki.subarray(12)) };
  if (spki.length === 91 && hex(spki.subarray(0, 27)) === P256_PREFIX)
    return { kty: "EC", crv: "P-256", x: b64u(spki.subarray(27, 59)), y: b64u(spki.subarray(59)) };
  try {
    const top = readDer(spki);
    if (top.tag !== TAG.SEQUENCE) return undefined;
    const parts = children(top);
    if (parts.length !== 2 || hex(parts[0]!.raw) !== RSA_ALG || parts[1]!.tag !== TAG.BIT_STRING)
      return undefined;
    const bits = parts[1]!.value;
    if (bits[0] !== 0) return undefined;
    const key = readDer(bits.subarray(1));
    if (key.tag !== TAG.SEQUENCE) return undefined;
    const ints = children(key);
    if (ints.length !== 2) return undefined;
    const [n, e] = ints.map((i) => (i.tag === TAG.INTEGER ? positiveMinimal(i.value) : undefined));
    return n && e ? { kty: "RSA", n: b64u(n), e: b64u(e) } : undefined;
  } catch {
    return undefined;
  }
}

/** The magnitude octets of a positive, minimally encoded INTEGER; undefined for any other. */
function positiveMinimal(c: Uint8Array): Uint8Array | undefined {
  if (c.length === 0 || c[0]! & 0x80) return undefined;
  if (c[0] !== 0) return c;
  return c.length > 1 && c[1]! & 0x80 ? c.subarray(1) : undefined;
}
