// Classifying subject public keys into ca-config's KeyType names (DESIGN §4: RSA 2048-4096,
// ECDSA P-256/P-384/P-521, Ed25519, Ed448).
//
// Loading an SPKI with node:crypto (which checks, e.g., that an EC point lies on its curve) is
// the most expensive step of reading a certificate request, and one request's key is read several
// times: when its CSR is parsed, by the pre-sign lint and by the inspector. Successful loads are
// therefore remembered by the exact SPKI bytes (a bounded map; the same bytes always load to the
// same key), and a key's [type, bits] by its KeyObject. Failures are never remembered: a key that
// does not load is tried, and refused, every time.
import { createPublicKey, type KeyObject } from "node:crypto";
import type { KeyType } from "../config/schema.ts";
import { X509Error } from "./errors.ts";

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
  const key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
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
