// What the leaf builder and the checks need from the CA certificate: its subject (exact bytes,
// to become every leaf's issuer, RFC 5280 §4.1.2.4), its subject key identifier (to become
// every leaf's AKI keyIdentifier, §4.2.1.1) and its validity (a leaf must not outlive it).
import { X509Error } from "./errors.ts";
import { toHex } from "./der.ts";
import { withDerErrors } from "./der-read.ts";
import { splitCertificate } from "./assemble.ts";
import { readSki, readTbs } from "./tbs-read.ts";
import { OID } from "./oids.ts";
import { spkiPublicKeyBits } from "./ski.ts";

export interface CaCertInfo {
  subjectDer: Uint8Array;
  ski: Uint8Array;
  skiHex: string;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Uint8Array;
  /** Raw public key bits (32 bytes for an Ed25519 CA). */
  publicKeyRaw: Uint8Array;
}

/** The last few CA certificates read (each builder and custodian check reads the same one). */
const recent: Array<{ der: Buffer; info: CaCertInfo }> = [];

/** Copies every byte array so no caller can alter what is remembered. */
const copyInfo = (i: CaCertInfo): CaCertInfo => ({
  ...i,
  subjectDer: i.subjectDer.slice(),
  ski: i.ski.slice(),
  notBefore: new Date(i.notBefore.getTime()),
  notAfter: new Date(i.notAfter.getTime()),
  spkiDer: i.spkiDer.slice(),
  publicKeyRaw: i.publicKeyRaw.slice(),
});

export function readCaCert(caCertDer: Uint8Array): CaCertInfo {
  const view = Buffer.from(caCertDer.buffer, caCertDer.byteOffset, caCertDer.byteLength);
  const hit = recent.find((r) => r.der.equals(view));
  if (hit) return copyInfo(hit.info);
  const info = readCaCertOnce(caCertDer);
  if (recent.length >= 4) recent.shift();
  recent.push({ der: Buffer.from(view), info: copyInfo(info) });
  return info;
}

function readCaCertOnce(caCertDer: Uint8Array): CaCertInfo {
  const { tbs } = splitCertificate(caCertDer);
  const t = withDerErrors("CERT_MALFORMED", "The CA certificate's TBSCertificate", () => readTbs(tbs));
  const skiExt = t.extensions.find((e) => e.oid === OID.subjectKeyIdentifier);
  if (!skiExt)
    throw new X509Error(
      "CERT_MALFORMED",
      "The CA certificate has no subjectKeyIdentifier, which RFC 5280 §4.2.1.2 requires of CA certificates.",
      "subjectKeyIdentifier",
    );
  const ski = withDerErrors("CERT_MALFORMED", "The CA certificate's subjectKeyIdentifier", () =>
    readSki(skiExt.value),
  );
  return {
    subjectDer: t.subjectDer,
    ski,
    skiHex: toHex(ski),
    notBefore: t.notBefore.date,
    notAfter: t.notAfter.date,
    spkiDer: t.spkiDer,
    publicKeyRaw: spkiPublicKeyBits(t.spkiDer),
  };
}
