// The self-signed Ed25519 root certificate's TBSCertificate. Pure and deterministic: the same
// inputs give the same bytes, so every custodian can re-derive what it signs (docs/architecture.md §3.2).
import { nameToDer } from "./names.ts";
import { keyIdentifier } from "./ski.ts";
import { authorityKeyIdentifier, basicConstraints, keyUsage, subjectKeyIdentifier } from "./extensions.ts";
import { ed25519Spki, encodeTbs } from "./tbs.ts";

export interface RootTbsInput {
  /** RFC 4514 subject, e.g. "CN=Example Root CA, O=Example". */
  subject: string;
  /** The 32-byte raw Ed25519 group public key. */
  caPublicKey: Uint8Array;
  /** Serial content octets (see serial.ts). */
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
}

export function buildRootTbs(input: RootTbsInput): Uint8Array {
  const name = nameToDer(input.subject);
  const spki = ed25519Spki(input.caPublicKey);
  const ski = keyIdentifier(spki);
  return encodeTbs({
    serial: input.serial,
    issuerDer: name, // self-issued: issuer and subject are the same bytes (§4.1.2.4)
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    subjectDer: name,
    spkiDer: spki,
    extensions: [
      basicConstraints(true), // §4.2.1.9: critical, cA TRUE; no pathLen for the root
      keyUsage(["digitalSignature", "keyCertSign", "cRLSign"]), // §4.2.1.3: critical
      subjectKeyIdentifier(ski), // §4.2.1.2: MUST appear in CA certificates
      authorityKeyIdentifier(ski), // §4.2.1.1: MAY be omitted when self-signed; we include it
    ],
  });
}
