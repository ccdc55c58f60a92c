// The leaf (or subordinate CA) TBSCertificate: docs/architecture.md §3.2's one pure, deterministic function
// tbs(csr, profile, caCert, serial, notBefore, notAfter). Every custodian runs it on its own
// copy of the inputs and signs only if the bytes equal what the coordinator proposes.
// Fixed rules: issuer = CA subject bytes; subject and SPKI = CSR bytes; SANs in CSR order;
// extension order and criticality as listed in buildLeafTbs. Golden vectors pin the output.
import type { Profile } from "../config/schema.ts";
import { parseCsr, type ParsedCsr } from "./csr.ts";
import { readCaCert } from "./ca-cert.ts";
import { isEmptyName } from "./names.ts";
import { keyIdentifier } from "./ski.ts";
import { X509Error } from "./errors.ts";
import * as X from "./extensions.ts";
import { encodeTbs } from "./tbs.ts";

/**
 * Goes into every approval; bump it whenever the bytes this module writes could change.
 * tca-tbs/3: the AIA carries the OCSP URL (publicUrl + "/ocsp") before caIssuers, and profiles
 * with ocspNoCheck get id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1). A custodian on tca-tbs/2 would
 * derive different bytes for the same request, so the coordinator refuses its approvals by name.
 */
export const BUILDER_VERSION = "tca-tbs/3";

export interface LeafTbsInput {
  /** A parsed CSR, or its DER (then parsed, signature included). */
  csr: ParsedCsr | Uint8Array;
  profile: Profile;
  caCertDer: Uint8Array;
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** ca-config's ca.publicUrl; trailing slashes are dropped. */
  publicUrl?: string;
}

export function buildLeafTbs(input: LeafTbsInput): Uint8Array {
  const csr = input.csr instanceof Uint8Array ? parseCsr(input.csr) : input.csr;
  const { profile } = input;
  const ca = readCaCert(input.caCertDer);
  const emptySubject = isEmptyName(csr.subjectDer);
  if (emptySubject && csr.sans.length === 0) {
    throw new X509Error(
      "SAN_REQUIRED",
      "The CSR has an empty subject and no subject alternative names, so the certificate would name nobody (RFC 5280 §4.1.2.6).",
      "subjectAltName",
    );
  }
  const exts: X.Ext[] = [
    // §4.2.1.9: critical; pathLen only for CA profiles.
    X.basicConstraints(profile.ca, profile.ca ? profile.pathLen : undefined),
    // §4.2.1.3: critical, bits from the profile.
    X.keyUsage(keyUsageFor(csr.keyType, profile.keyUsage)),
  ];
  // §4.2.1.12: non-critical, in profile order.
  if (profile.extKeyUsage.length > 0) exts.push(X.extKeyUsage(profile.extKeyUsage));
  // §4.2.1.6: SANs in CSR order; critical exactly when the subject is empty.
  if (csr.sans.length > 0) exts.push(X.subjectAltName(csr.sans, emptySubject));
  exts.push(X.subjectKeyIdentifier(keyIdentifier(csr.spkiDer))); // §4.2.1.2, RFC 7093 §2 method 1
  exts.push(X.authorityKeyIdentifier(ca.ski)); // §4.2.1.1: the CA certificate's own SKI
  if (input.publicUrl !== undefined) {
    const base = input.publicUrl.replace(/\/+$/, "");
    exts.push(X.crlDistributionPoint(`${base}/crl`)); // §4.2.1.13
    exts.push(X.authorityInfoAccess(`${base}/ca.crt`, `${base}/ocsp`)); // §4.2.2.1 OCSP, caIssuers
  }
  if (profile.ca && profile.nameConstraints) {
    const nc = X.nameConstraints(profile.nameConstraints); // §4.2.1.10: critical, never empty
    if (nc) exts.push(nc);
  }
  // RFC 6960 §4.2.2.2.1: a delegated OCSP responder's certificate; non-critical, last.
  if (profile.ocspNoCheck) exts.push(X.ocspNoCheck());
  return encodeTbs({
    serial: input.serial,
    issuerDer: ca.subjectDer,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    subjectDer: csr.subjectDer,
    spkiDer: csr.spkiDer,
    extensions: exts,
  });
}

/**
 * Key encipherment and data encipherment are RSA operations: RFC 8410 §5 forbids them for Ed25519
 * and Ed448 keys, and RFC 8813 §3 for ECDSA keys. A profile written for "any key" keeps them only
 * for RSA subjects (as step-ca and Let's Encrypt do).
 */
export function keyUsageFor(keyType: ParsedCsr["keyType"], usages: Profile["keyUsage"]): Profile["keyUsage"] {
  return keyType === "rsa"
    ? usages
    : usages.filter((u) => u !== "keyEncipherment" && u !== "dataEncipherment");
}
