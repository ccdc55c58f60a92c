// The one release check for everything the threshold signs (docs/architecture.md §3.8,
// docs/signing-pipeline.md): the root certificate, a leaf certificate and a CRL are each assembled from the
// exact TBS bytes that were signed, parsed again and verified against the CA public key before anything is
// stored or handed out. Certificate: RFC 5280 §4.1.1; CertificateList: RFC 5280 §5.1.1; Ed25519: RFC 8410.
import { X509Certificate } from "node:crypto";
import { assembleCertificate, verifyCertificateSignature } from "../x509/assemble.ts";
import { assembleCrl, readCrl, verifyCrlSignature } from "../x509/crl.ts";

/** What was signed: a certificate (root or leaf) or a CertificateList. */
export type SignedKind = "certificate" | "crl";

export type VerifiedOutcome = { ok: true; der: Uint8Array } | { ok: false; reason: string };

export interface VerifySignedInput {
  kind: SignedKind;
  /** The exact DER bytes the custodians signed (TBSCertificate or TBSCertList). */
  tbs: Uint8Array;
  /** The aggregated 64-byte Ed25519 signature. */
  signature: Uint8Array;
  /** The raw 32-byte CA public key; null when the CA has no key (nothing can verify). */
  caPublicKey: Uint8Array | null;
  /** For a certificate: the serial it must carry, as lowercase hex content octets. */
  serial?: string;
}

const digits = (hex: string): string => hex.toLowerCase().replace(/^0+/, "");

/**
 * Assembles the signed object, parses it again and verifies its signature with the CA key. Returns
 * the DER to release, or why it must not be released; never throws on bad input.
 */
export function verifySigned(input: VerifySignedInput): VerifiedOutcome {
  const what = input.kind === "crl" ? "CRL" : "certificate";
  if (!input.caPublicKey) return { ok: false, reason: `the CA has no key to verify the ${what} with` };
  let der: Uint8Array;
  try {
    der =
      input.kind === "crl"
        ? assembleCrl(input.tbs, input.signature)
        : assembleCertificate(input.tbs, input.signature);
  } catch (e) {
    return { ok: false, reason: `the ${what} cannot be assembled: ${(e as Error).message}` };
  }
  try {
    if (input.kind === "crl") {
      readCrl(der);
    } else {
      const parsed = new X509Certificate(Buffer.from(der));
      if (input.serial !== undefined && digits(parsed.serialNumber) !== digits(input.serial))
        return { ok: false, reason: `assembled certificate does not carry serial ${input.serial}` };
    }
  } catch (e) {
    return { ok: false, reason: `assembled ${what} does not parse: ${(e as Error).message}` };
  }
  const verifies =
    input.kind === "crl"
      ? verifyCrlSignature(der, input.caPublicKey)
      : verifyCertificateSignature(der, input.caPublicKey);
  if (!verifies) return { ok: false, reason: `assembled ${what} does not verify` };
  return { ok: true, der };
}
