// Ed25519 (RFC 8032) identity signatures through node:crypto (OpenSSL): envelopes, approvals,
// journal lines, heartbeats. About 20× faster than pure JS, and byte-identical to any other
// RFC 8032 implementation because Ed25519 signing is deterministic (RFC 8032 §5.1.6).
//
// Raw 32-byte keys become KeyObjects through their fixed DER prefixes (RFC 8410 §7 PKCS#8
// OneAsymmetricKey, RFC 8410 §4 SubjectPublicKeyInfo). Building a KeyObject costs more than a
// signature, so both kinds are cached in small bounded maps. The private-key cache is
// module-private and keyed by a hash of the secret, so the secret itself never sits in the JS heap
// as a string; KeyObjects keep their key material in native memory and print as `KeyObject {}`.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

/** RFC 8410 §7: SEQUENCE { INTEGER 0, AlgorithmIdentifier { id-Ed25519 }, OCTET STRING { OCTET STRING(32) } }. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** RFC 8410 §4: SEQUENCE { AlgorithmIdentifier { id-Ed25519 }, BIT STRING(32 bytes) }. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const MAX_CACHED = 64;
const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();

function remember(cache: Map<string, KeyObject>, key: string, value: KeyObject): KeyObject {
  if (cache.size >= MAX_CACHED) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(key, value);
  return value;
}

function privateKeyObject(secret32: Uint8Array): KeyObject {
  if (!(secret32 instanceof Uint8Array) || secret32.length !== 32)
    throw new TypeError("an Ed25519 secret key is 32 bytes");
  const id = createHash("sha256").update("tca/ed25519-key-cache\n").update(secret32).digest("base64");
  const hit = privateKeys.get(id);
  if (hit) return hit;
  const der = Buffer.concat([PKCS8_PREFIX, secret32]);
  try {
    return remember(privateKeys, id, createPrivateKey({ key: der, format: "der", type: "pkcs8" }));
  } finally {
    der.fill(0);
  }
}

function publicKeyObject(publicKey32: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey32).toString("base64");
  const hit = publicKeys.get(id);
  if (hit) return hit;
  const der = Buffer.concat([SPKI_PREFIX, publicKey32]);
  return remember(publicKeys, id, createPublicKey({ key: der, format: "der", type: "spki" }));
}

/** RFC 8032 §5.1.6 Ed25519 signature (64 bytes) of `msg` under the 32-byte secret seed. */
export function signEd25519(secret32: Uint8Array, msg: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, msg, privateKeyObject(secret32)));
}

/**
 * RFC 8032 §5.1.7 verification. Returns false, never throws, for a malformed signature or key
 * (wrong length, not a curve point) as for a wrong signature.
 */
export function verifyEd25519(sig: Uint8Array, msg: Uint8Array, publicKey32: Uint8Array): boolean {
  if (!(sig instanceof Uint8Array) || !(publicKey32 instanceof Uint8Array) || !(msg instanceof Uint8Array))
    return false;
  if (sig.length !== 64 || publicKey32.length !== 32) return false;
  try {
    return verify(null, msg, publicKeyObject(publicKey32), sig);
  } catch {
    return false;
  }
}

/** RFC 8032 §5.1.5: the 32-byte public key of a 32-byte secret seed. */
export function ed25519PublicKey(secret32: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(secret32)).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}
