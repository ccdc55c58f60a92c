// Certificate assembly: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
// signatureValue BIT STRING } (RFC 5280 §4.1.1). The TBS bytes that were signed are placed in
// the certificate unchanged (docs/architecture.md §3.8); the signature is a 64-byte PureEdDSA signature over
// them (RFC 8410 §6), which we then check with node:crypto before anything is released.
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { TAG, bitString, bytesEqual, seq } from "./der.ts";
import { children, expectTag, readDer, withDerErrors } from "./der-read.ts";
import { ED25519_ALG_ID, ed25519Spki } from "./tbs.ts";
import { X509Error } from "./errors.ts";

export { toPem } from "./der.ts";

export function assembleCertificate(tbsDer: Uint8Array, signature64: Uint8Array): Uint8Array {
  if (signature64.length !== 64)
    throw new X509Error(
      "KEY_INVALID",
      `An Ed25519 signature is 64 bytes; got ${signature64.length}.`,
      "signature",
    );
  withDerErrors("TBS_MALFORMED", "The TBSCertificate", () =>
    expectTag(readDer(tbsDer), TAG.SEQUENCE, "TBSCertificate"),
  );
  const cert = seq(tbsDer, ED25519_ALG_ID, bitString(signature64));
  // The header of the outer SEQUENCE is followed by the TBS bytes exactly.
  const inner = splitCertificate(cert);
  if (!bytesEqual(inner.tbs, tbsDer))
    throw new X509Error(
      "TBS_MISMATCH",
      "The assembled certificate does not carry the signed TBS bytes unchanged.",
    );
  return cert;
}

/** The three parts of a DER certificate, as exact byte spans. */
export function splitCertificate(certDer: Uint8Array): {
  tbs: Uint8Array;
  sigAlg: Uint8Array;
  signature: Uint8Array;
} {
  return withDerErrors("CERT_MALFORMED", "The certificate", () => {
    const parts = children(expectTag(readDer(certDer), TAG.SEQUENCE, "Certificate"));
    if (parts.length !== 3)
      throw new X509Error("CERT_MALFORMED", `A certificate has 3 parts; this one has ${parts.length}.`);
    const tbs = expectTag(parts[0], TAG.SEQUENCE, "tbsCertificate");
    const alg = expectTag(parts[1], TAG.SEQUENCE, "signatureAlgorithm");
    const sig = expectTag(parts[2], TAG.BIT_STRING, "signatureValue");
    if (sig.value[0] !== 0)
      throw new X509Error("CERT_MALFORMED", "The signature BIT STRING has unused bits.");
    return { tbs: tbs.raw, sigAlg: alg.raw, signature: sig.value.subarray(1) };
  });
}

/**
 * True when `certDer` is an Ed25519-signed certificate whose signature verifies under the raw
 * 32-byte CA key. Also requires signatureAlgorithm to be exactly id-Ed25519 without parameters
 * and the TBS's inner signature field to match it (RFC 5280 §4.1.1.2).
 */
/** The CA key as a KeyObject, kept for the last key asked for (every issuance verifies with it). */
let lastKey: { raw: string; key: KeyObject } | undefined;
function verifyKey(raw32: Uint8Array): KeyObject {
  const raw = Buffer.from(raw32).toString("hex");
  if (lastKey?.raw !== raw)
    lastKey = {
      raw,
      key: createPublicKey({ key: Buffer.from(ed25519Spki(raw32)), format: "der", type: "spki" }),
    };
  return lastKey.key;
}

export function verifyCertificateSignature(certDer: Uint8Array, caPublicKeyRaw32: Uint8Array): boolean {
  const key = verifyKey(caPublicKeyRaw32);
  try {
    const parts = splitCertificate(certDer);
    if (!bytesEqual(parts.sigAlg, ED25519_ALG_ID) || parts.signature.length !== 64) return false;
    const tbsFields = children(readDer(parts.tbs));
    if (!tbsFields[2] || !bytesEqual(tbsFields[2].raw, ED25519_ALG_ID)) return false;
    return verify(null, parts.tbs, key, parts.signature);
  } catch {
    return false;
  }
}
