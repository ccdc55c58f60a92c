// PKCS#10 certification requests (RFC 2986) from PEM or DER. Every byte of the input is
// accounted for (no trailing data), the self-signature is checked over the original
// certificationRequestInfo bytes, and the subject and SPKI are kept as exact bytes so the
// leaf builder copies them unchanged (docs/architecture.md §3.2).
import { createHash } from "node:crypto";
import type { KeyType } from "../config/schema.ts";
import { TAG, fromPem } from "./der.ts";
import { children, decodeOid, expectTag, readDer, withDerErrors, type Tlv } from "./der-read.ts";
import { X509Error } from "./errors.ts";
import { derToName } from "./names.ts";
import { OID } from "./oids.ts";
import { decodeGeneralNames, type San } from "./sans.ts";
import { verifyCsrSignature } from "./csr-verify.ts";
import { spkiFingerprint } from "./ski.ts";
import { keyTypeOf, loadSpki } from "./keys.ts";

export type { San } from "./sans.ts";

export interface ParsedCsr {
  der: Uint8Array;
  /** The subject Name exactly as in the CSR. */
  subjectDer: Uint8Array;
  subjectString: string;
  /** The SubjectPublicKeyInfo exactly as in the CSR. */
  spkiDer: Uint8Array;
  keyType: KeyType;
  /** RSA modulus bits; curve size for EC; 256 for Ed25519, 448 for Ed448. */
  keyBits: number;
  /** SHA-256 of the SPKI DER, lowercase hex. */
  keyFingerprint: string;
  /** Subject alternative names from the extensionRequest attribute, in CSR order. */
  sans: San[];
}

export interface ParseCsrOptions {
  maxBytes?: number;
}

const PEM_LABELS = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

function toDer(input: string | Uint8Array, maxBytes: number): Uint8Array {
  const size = typeof input === "string" ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes)
    throw new X509Error("CSR_TOO_LARGE", `The CSR is ${size} bytes; the limit is ${maxBytes}.`, "csr");
  if (size === 0) throw new X509Error("CSR_MALFORMED", "The CSR is empty.", "csr");
  const text =
    typeof input === "string"
      ? input
      : input[0] === TAG.SEQUENCE
        ? undefined
        : Buffer.from(input).toString("latin1");
  return text === undefined ? (input as Uint8Array) : fromPem(text, PEM_LABELS, "CSR_MALFORMED");
}

/** SANs from the PKCS#9 extensionRequest attribute (RFC 2985 §5.4.2), in order. */
function requestedSans(attrs: Tlv | undefined): San[] {
  if (!attrs) return [];
  const ext = children(attrs).filter((a) => decodeOid(children(a)[0]!) === OID.extensionRequest);
  if (ext.length > 1)
    throw new X509Error(
      "CSR_MALFORMED",
      "The CSR has more than one extensionRequest attribute.",
      "attributes",
    );
  if (ext.length === 0) return [];
  const values = children(expectTag(children(ext[0]!)[1], TAG.SET, "extensionRequest values"));
  if (values.length !== 1)
    throw new X509Error(
      "CSR_MALFORMED",
      "The CSR's extensionRequest must hold exactly one Extensions value.",
      "attributes",
    );
  const sanExts = children(expectTag(values[0], TAG.SEQUENCE, "Extensions"))
    .map(children)
    .filter((e) => decodeOid(e[0]!) === OID.subjectAltName);
  if (sanExts.length > 1)
    throw new X509Error("CSR_MALFORMED", "The CSR requests subjectAltName more than once.", "subjectAltName");
  if (sanExts.length === 0) return [];
  const value = expectTag(sanExts[0]!.at(-1), TAG.OCTET_STRING, "subjectAltName extnValue").value;
  return decodeGeneralNames(value, "SAN_TYPE_NOT_ALLOWED");
}

export function parseCsr(input: string | Uint8Array, opts: ParseCsrOptions = {}): ParsedCsr {
  const der = toDer(input, opts.maxBytes ?? 16384);
  return withDerErrors("CSR_MALFORMED", "The CSR", () => {
    const top = children(expectTag(readDer(der), TAG.SEQUENCE, "CertificationRequest"));
    if (top.length !== 3)
      throw new X509Error("CSR_MALFORMED", `A CSR has 3 parts; this one has ${top.length}.`, "csr");
    const [cri, alg, sig] = [
      expectTag(top[0], TAG.SEQUENCE, "certificationRequestInfo"),
      expectTag(top[1], TAG.SEQUENCE, "signatureAlgorithm"),
      expectTag(top[2], TAG.BIT_STRING, "signature"),
    ];
    const f = children(cri);
    const version = expectTag(f[0], TAG.INTEGER, "version");
    if (version.value.length !== 1 || version.value[0] !== 0)
      throw new X509Error(
        "CSR_MALFORMED",
        "The CSR's version is not v1 (0), the only version RFC 2986 defines.",
        "version",
      );
    const subject = expectTag(f[1], TAG.SEQUENCE, "subject");
    const spki = expectTag(f[2], TAG.SEQUENCE, "subjectPKInfo");
    const attrs = f[3] ? expectTag(f[3], 0xa0, "attributes") : undefined;
    if (f.length > 4)
      throw new X509Error("CSR_MALFORMED", "The CSR has unexpected fields after its attributes.", "csr");
    if (sig.value[0] !== 0)
      throw new X509Error("CSR_MALFORMED", "The CSR's signature BIT STRING has unused bits.", "signature");
    const key = loadSpki(spki.raw);
    const [keyType, keyBits] = keyTypeOf(key);
    verifyCsrSignature(cri.raw, alg.raw, sig.value.subarray(1), key);
    let subjectString: string;
    try {
      subjectString = derToName(subject.raw);
    } catch (e) {
      throw new X509Error(
        "CSR_MALFORMED",
        `The CSR's subject cannot be read: ${(e as Error).message}.`,
        "subject",
        { cause: e },
      );
    }
    return {
      der: new Uint8Array(der),
      subjectDer: new Uint8Array(subject.raw),
      subjectString,
      spkiDer: new Uint8Array(spki.raw),
      keyType,
      keyBits,
      keyFingerprint: spkiFingerprint(spki.raw),
      sans: requestedSans(attrs),
    };
  });
}

/** SHA-256 of the CSR DER, hex: an identifier for logs. */
export function csrSha256(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}
