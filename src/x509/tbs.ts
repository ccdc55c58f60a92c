// The TBSCertificate encoder shared by the root and leaf builders (RFC 5280 §4.1). It copies
// the issuer, subject and SPKI bytes it is given verbatim and always writes a v3 certificate
// signed with Ed25519 (RFC 8410 §3: the AlgorithmIdentifier has NO parameters).
import { ctx, integerContent, oid, seq, bitString, smallInteger } from "./der.ts";
import { encodeExtensions, type Ext } from "./extensions.ts";
import { encodeTime, truncateToSeconds } from "./time.ts";
import { checkSerial } from "./serial.ts";
import { X509Error } from "./errors.ts";
import { OID } from "./oids.ts";

export interface TbsFields {
  serial: Uint8Array;
  issuerDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  subjectDer: Uint8Array;
  spkiDer: Uint8Array;
  extensions: readonly Ext[];
}

/** AlgorithmIdentifier { id-Ed25519 } with the parameters field absent (RFC 8410 §3). */
export const ED25519_ALG_ID: Uint8Array = seq(oid(OID.ed25519));

/** SubjectPublicKeyInfo for a raw 32-byte Ed25519 public key (RFC 8410 §4). */
export function ed25519Spki(raw: Uint8Array): Uint8Array {
  if (raw.length !== 32)
    throw new X509Error(
      "KEY_INVALID",
      `An Ed25519 public key is 32 bytes; got ${raw.length}.`,
      "caPublicKey",
    );
  return seq(ED25519_ALG_ID, bitString(raw));
}

export function encodeTbs(f: TbsFields): Uint8Array {
  checkSerial(f.serial);
  const notBefore = truncateToSeconds(f.notBefore);
  const notAfter = truncateToSeconds(f.notAfter);
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new X509Error(
      "VALIDITY_NOT_ALLOWED",
      `notAfter (${notAfter.toISOString()}) must be later than notBefore (${notBefore.toISOString()}).`,
      "notAfter",
    );
  }
  return seq(
    ctx(0, true, smallInteger(2)), // version [0] EXPLICIT v3 (§4.1.2.1: extensions present)
    integerContent(f.serial),
    ED25519_ALG_ID, // signature (§4.1.2.3), equal to Certificate.signatureAlgorithm
    f.issuerDer,
    seq(encodeTime(notBefore), encodeTime(notAfter)), // §4.1.2.5
    f.subjectDer,
    f.spkiDer,
    ctx(3, true, encodeExtensions(f.extensions)), // extensions [3] EXPLICIT
  );
}
