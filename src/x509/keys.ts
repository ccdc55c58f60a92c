// Classifying subject public keys into ca-config's KeyType names (DESIGN §4: RSA 2048-4096,
// ECDSA P-256/P-384/P-521, Ed25519, Ed448).
import { createPublicKey, type KeyObject } from "node:crypto";
import type { KeyType } from "../config/schema.ts";
import { X509Error } from "./errors.ts";

const CURVES: Record<string, [KeyType, number]> = {
  prime256v1: ["ec-p256", 256],
  secp384r1: ["ec-p384", 384],
  secp521r1: ["ec-p521", 521],
};

/** [type, bits]: RSA modulus bits; curve size for EC; 256 for Ed25519, 448 for Ed448. */
export function keyTypeOf(key: KeyObject): [KeyType, number] {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return ["rsa", d.modulusLength ?? 0];
    case "ec": {
      const c = CURVES[d.namedCurve ?? ""];
      if (c) return c;
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

/** Loads a DER SPKI with node:crypto; throws KEY_INVALID naming why. */
export function loadSpki(spkiDer: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch (e) {
    throw new X509Error(
      "KEY_INVALID",
      `The public key cannot be loaded: ${(e as Error).message}.`,
      "publicKey",
      { cause: e },
    );
  }
}
