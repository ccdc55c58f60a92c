// The certification request for the CA key itself (intermediate mode, docs/intermediate.md): the
// CertificationRequestInfo of RFC 2986 §4.1 for the threshold group key, which the custodians
// threshold-sign and an external root then certifies. One pure, deterministic builder: the
// coordinator proposes its bytes and every custodian re-derives them from its own ca-config and the
// group key it holds, signing only on byte equality (docs/architecture.md §3.2). Its inputs are the
// CA subject and the key, nothing the coordinator chooses, so the coordinator can get exactly one
// CertificationRequestInfo signed — one whose DER (SEQUENCE { INTEGER 0, Name, … }) can never pass
// for a TBSCertificate (which opens with [0] version) or a TBSCertList.
import { TAG, bitString, bytesEqual, ctx, oid, seq, smallInteger, tlv } from "./der.ts";
import { basicConstraints, encodeExtensions, keyUsage } from "./extensions.ts";
import { nameToDer } from "./names.ts";
import { OID } from "./oids.ts";
import { ED25519_ALG_ID, ed25519Spki } from "./tbs.ts";
import { X509Error } from "./errors.ts";
import { children, expectTag, readDer, withDerErrors } from "./der-read.ts";

/** Goes into each ca-csr job's parameters: bump it whenever the bytes this module writes could change. */
export const CA_CSR_BUILDER = "tca-ca-csr/1";

export interface CaCsrInput {
  /** ca-config's `ca.subject` (RFC 4514). */
  subject: string;
  /** The 32-byte raw Ed25519 group public key. */
  caPublicKey: Uint8Array;
}

/**
 * CertificationRequestInfo ::= SEQUENCE { version INTEGER v1(0), subject Name,
 *   subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute }
 * with one attribute, PKCS#9 extensionRequest (RFC 2985 §5.4.2), asking for what a CA certificate
 * needs (RFC 5280 §4.2.1.9, §4.2.1.3): basicConstraints cA TRUE and keyUsage keyCertSign|cRLSign,
 * both critical. The issuer decides the rest (pathLen, name constraints, validity).
 */
export function buildCaCsrInfo(input: CaCsrInput): Uint8Array {
  const extensions = encodeExtensions([basicConstraints(true), keyUsage(["keyCertSign", "cRLSign"])]);
  const extensionRequest = seq(oid(OID.extensionRequest), tlv(TAG.SET, extensions));
  return seq(
    smallInteger(0),
    nameToDer(input.subject),
    ed25519Spki(input.caPublicKey), // RFC 8410 §4
    ctx(0, true, extensionRequest),
  );
}

/**
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
 * (RFC 2986 §4.2) from the exact signed bytes and the 64-byte Ed25519 signature (RFC 8410 §6).
 */
export function assembleCaCsr(info: Uint8Array, signature64: Uint8Array): Uint8Array {
  if (signature64.length !== 64)
    throw new X509Error("KEY_INVALID", `An Ed25519 signature is 64 bytes; got ${signature64.length}.`);
  const der = seq(info, ED25519_ALG_ID, bitString(signature64));
  const inner = withDerErrors("CSR_MALFORMED", "The assembled CSR", () =>
    expectTag(children(readDer(der))[0], TAG.SEQUENCE, "certificationRequestInfo"),
  );
  if (!bytesEqual(inner.raw, info))
    throw new X509Error("TBS_MISMATCH", "The assembled CSR does not carry the signed bytes unchanged.");
  return der;
}
