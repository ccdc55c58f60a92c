// Certificate revocation lists (RFC 5280 §5), writing side. buildCrlTbs is pure and
// deterministic, like the certificate builders, so every custodian can re-derive the
// TBSCertList it is asked to sign (docs/architecture.md §3.2, §3.9). The DER is written by hand so that the
// issuer is the CA certificate's subject bytes unchanged (§5.1.2.3). Reading is in crl-read.ts.
import { createPublicKey, verify } from "node:crypto";
import { TAG, bitString, bytesEqual, fromHex, integerContent, seq, smallInteger, tlv, toHex } from "./der.ts";
import { children, expectTag, readDer, withDerErrors } from "./der-read.ts";
import { authorityKeyIdentifier, encodeExtensions, type Ext } from "./extensions.ts";
import { encodeTime, truncateToSeconds } from "./time.ts";
import { ED25519_ALG_ID, ed25519Spki } from "./tbs.ts";
import { readCaCert } from "./ca-cert.ts";
import { X509Error } from "./errors.ts";
import { OID } from "./oids.ts";
import {
  CRL_NUMBER_MAX_OCTETS,
  ENUMERATED,
  integerProblem,
  REASON_CODES,
  REVOCATION_REASONS,
  splitCrl,
  type CrlEntry,
} from "./crl-read.ts";

export {
  readCrl,
  readCrlTbs,
  REVOCATION_REASONS,
  splitCrl,
  type CrlEntry,
  type ParsedCrl,
  type RevocationReason,
} from "./crl-read.ts";
export { toPem } from "./der.ts";

/** The PEM label of a CRL (RFC 7468 §6). */
export const CRL_PEM_LABEL = "X509 CRL";

export interface CrlTbsInput {
  /** The CA certificate (DER): supplies the issuer bytes and the AKI keyIdentifier. */
  caCertDer: Uint8Array;
  /** §5.2.3: a non-negative integer of at most 20 octets, increasing with each CRL. */
  crlNumber: bigint | number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: readonly CrlEntry[];
}

const invalid = (message: string, field: string): never => {
  throw new X509Error("CRL_INVALID", message, field);
};

function checkedTime(d: Date, field: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) invalid(`${field} is not a valid date.`, field);
  const t = truncateToSeconds(d); // §5.1.2.4: whole seconds, no fractions
  const y = t.getUTCFullYear();
  if (y < 1950 || y > 9999) invalid(`${field} (${t.toISOString()}) cannot be encoded in a CRL.`, field);
  return t;
}

/** §5.2.3 CRLNumber ::= INTEGER (0..MAX), minimal two's-complement content octets. */
function crlNumberContent(n: bigint | number): Uint8Array {
  if (typeof n === "number" && !Number.isSafeInteger(n))
    invalid(`The CRL number ${n} is not a safe integer; pass a bigint.`, "crlNumber");
  const v = BigInt(n);
  if (v < 0n) invalid(`The CRL number ${v} is negative (RFC 5280 §5.2.3).`, "crlNumber");
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`; // keep it positive (X.690 §8.3.2)
  const bytes = fromHex(hex);
  if (bytes.length > CRL_NUMBER_MAX_OCTETS)
    invalid(`The CRL number ${v} needs ${bytes.length} octets; RFC 5280 §5.2.3 allows 20.`, "crlNumber");
  return bytes;
}

interface PreparedEntry {
  serial: Uint8Array;
  hex: string;
  revokedAt: Date;
  reason: CrlEntry["reason"];
}

function prepareEntry(e: CrlEntry, i: number): PreparedEntry {
  const field = `entries[${i}].serial`;
  if (typeof e.serial !== "string" || !/^(?:[0-9a-fA-F]{2})+$/.test(e.serial))
    throw new X509Error("SERIAL_INVALID", `The serial "${String(e.serial)}" is not even-length hex.`, field);
  const serial = fromHex(e.serial);
  const bad = integerProblem(serial); // §4.1.2.2: positive, at most 20 octets
  if (bad) throw new X509Error("SERIAL_INVALID", `The serial ${e.serial} ${bad}.`, field);
  if (!REVOCATION_REASONS.includes(e.reason))
    invalid(
      `"${String(e.reason)}" is not a revocation reason tca writes (RFC 5280 §5.3.1).`,
      `entries[${i}].reason`,
    );
  return {
    serial,
    hex: toHex(serial),
    revokedAt: checkedTime(e.revokedAt, `entries[${i}].revokedAt`),
    reason: e.reason,
  };
}

/** Numeric order of minimal positive INTEGERs: shorter first, then byte order. */
const bySerial = (a: PreparedEntry, b: PreparedEntry): number =>
  a.serial.length - b.serial.length || (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0);

/** One revokedCertificates element (§5.1.2.6) with its reasonCode entry extension (§5.3.1). */
function encodeEntry(e: PreparedEntry): Uint8Array {
  // §5.3.1: the reasonCode SHOULD be absent rather than "unspecified". Extensions is
  // SIZE (1..MAX), so with no reasonCode the crlEntryExtensions field is omitted altogether.
  const exts: Ext[] =
    e.reason === "unspecified"
      ? []
      : [
          {
            oid: OID.cRLReason,
            critical: false,
            value: tlv(ENUMERATED, Uint8Array.of(REASON_CODES[e.reason])),
          },
        ];
  return seq(
    integerContent(e.serial),
    encodeTime(e.revokedAt),
    ...(exts.length ? [encodeExtensions(exts)] : []),
  );
}

/** The DER TBSCertList of a complete (not delta) v2 CRL signed with Ed25519 (§5.1.2). */
export function buildCrlTbs(input: CrlTbsInput): Uint8Array {
  const ca = readCaCert(input.caCertDer);
  const number = crlNumberContent(input.crlNumber);
  const thisUpdate = checkedTime(input.thisUpdate, "thisUpdate");
  const nextUpdate = checkedTime(input.nextUpdate, "nextUpdate");
  if (nextUpdate.getTime() <= thisUpdate.getTime())
    invalid(
      `nextUpdate (${nextUpdate.toISOString()}) must be later than thisUpdate (${thisUpdate.toISOString()}) (RFC 5280 §5.1.2.5).`,
      "nextUpdate",
    );
  const entries = input.entries.map(prepareEntry).sort(bySerial);
  for (let i = 1; i < entries.length; i++)
    if (entries[i]!.hex === entries[i - 1]!.hex)
      invalid(`The serial ${entries[i]!.hex} is listed more than once.`, "entries");
  return seq(
    smallInteger(1), // version v2 (§5.1.2.1: required because extensions are present)
    ED25519_ALG_ID, // signature (§5.1.2.2), equal to CertificateList.signatureAlgorithm
    ca.subjectDer, // issuer (§5.1.2.3): the CA certificate's subject, exact bytes
    encodeTime(thisUpdate), // §5.1.2.4, the 2050 rule of §4.1.2.5
    encodeTime(nextUpdate), // §5.1.2.5
    ...(entries.length ? [seq(...entries.map(encodeEntry))] : []), // §5.1.2.6: absent when empty
    tlv(
      0xa0, // crlExtensions [0] EXPLICIT (§5.1.2.7)
      encodeExtensions([
        authorityKeyIdentifier(ca.ski), // §5.2.1: keyIdentifier = the CA certificate's SKI
        { oid: OID.cRLNumber, critical: false, value: integerContent(number) }, // §5.2.3
      ]),
    ),
  );
}

/** CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue } (§5.1.1). */
export function assembleCrl(tbsDer: Uint8Array, signature64: Uint8Array): Uint8Array {
  if (signature64.length !== 64)
    throw new X509Error(
      "KEY_INVALID",
      `An Ed25519 signature is 64 bytes; got ${signature64.length}.`,
      "signature",
    );
  withDerErrors("CRL_MALFORMED", "The TBSCertList", () =>
    expectTag(readDer(tbsDer), TAG.SEQUENCE, "TBSCertList"),
  );
  const crl = seq(tbsDer, ED25519_ALG_ID, bitString(signature64));
  if (!bytesEqual(splitCrl(crl).tbs, tbsDer))
    throw new X509Error("TBS_MISMATCH", "The assembled CRL does not carry the signed TBS bytes unchanged.");
  return crl;
}

/**
 * True when `crlDer` is an Ed25519-signed CRL whose signature verifies under the raw 32-byte CA
 * key, with signatureAlgorithm and the TBS's signature field both exactly id-Ed25519 (§5.1.1.2).
 */
export function verifyCrlSignature(crlDer: Uint8Array, caPublicKeyRaw32: Uint8Array): boolean {
  const key = createPublicKey({
    key: Buffer.from(ed25519Spki(caPublicKeyRaw32)),
    format: "der",
    type: "spki",
  });
  try {
    const parts = splitCrl(crlDer);
    if (!bytesEqual(parts.sigAlg, ED25519_ALG_ID) || parts.signature.length !== 64) return false;
    const fields = children(readDer(parts.tbs));
    if (!fields[1] || !bytesEqual(fields[1].raw, ED25519_ALG_ID)) return false;
    return verify(null, parts.tbs, key, parts.signature);
  } catch {
    return false;
  }
}
