// Reads a DER TBSCertificate (RFC 5280 §4.1) into exact byte spans and decoded fields, for the
// pre-sign linter and the human-readable summary. Nothing here re-encodes anything.
import { TAG } from "./der.ts";
import { children, decodeOid, DerReadError, expectTag, readDer, type Tlv } from "./der-read.ts";
import { decodeTime } from "./time.ts";

export interface TbsExtension {
  oid: string;
  critical: boolean;
  /** extnValue content: the DER of the extension's own value. */
  value: Uint8Array;
}

export interface TbsTime {
  date: Date;
  /** TAG.UTC_TIME or TAG.GENERALIZED_TIME as found. */
  tag: number;
}

export interface ParsedTbs {
  /** 0 for v1 (field absent), 1 for v2, 2 for v3 (§4.1.2.1). */
  version: number;
  /** INTEGER content octets, as found. */
  serial: Uint8Array;
  signatureAlgDer: Uint8Array;
  issuerDer: Uint8Array;
  notBefore: TbsTime;
  notAfter: TbsTime;
  subjectDer: Uint8Array;
  spkiDer: Uint8Array;
  hasUniqueIds: boolean;
  extensions: TbsExtension[];
}

function readExtension(t: Tlv): TbsExtension {
  const parts = children(expectTag(t, TAG.SEQUENCE, "Extension"));
  const id = decodeOid(expectTag(parts[0], TAG.OID, "extnID"));
  let i = 1;
  let critical = false;
  if (parts[i]?.tag === TAG.BOOLEAN) {
    const b = parts[i]!.value;
    if (b.length !== 1 || (b[0] !== 0 && b[0] !== 0xff))
      throw new DerReadError(`extension ${id} has a BOOLEAN that is not DER`);
    critical = b[0] === 0xff;
    i++;
  }
  const value = expectTag(parts[i], TAG.OCTET_STRING, `extnValue of ${id}`).value;
  if (parts.length !== i + 1) throw new DerReadError(`extension ${id} has extra fields`);
  return { oid: id, critical, value };
}

/** Throws DerReadError (plain) on any structural problem; callers map it to their own code. */
export function readTbs(der: Uint8Array): ParsedTbs {
  const f = children(expectTag(readDer(der), TAG.SEQUENCE, "TBSCertificate"));
  let i = 0;
  let version = 0;
  if (f[0]?.tag === 0xa0) {
    const v = children(f[0]);
    const int = expectTag(v[0], TAG.INTEGER, "version");
    if (v.length !== 1 || int.value.length !== 1)
      throw new DerReadError("version is not a one-octet INTEGER");
    version = int.value[0]!;
    i++;
  }
  const serial = expectTag(f[i++], TAG.INTEGER, "serialNumber").value;
  const signatureAlgDer = expectTag(f[i++], TAG.SEQUENCE, "signature").raw;
  const issuerDer = expectTag(f[i++], TAG.SEQUENCE, "issuer").raw;
  const validity = children(expectTag(f[i++], TAG.SEQUENCE, "validity"));
  if (validity.length !== 2) throw new DerReadError("validity must hold exactly two times");
  const time = (t: Tlv): TbsTime => ({ date: decodeTime(t), tag: t.tag });
  const notBefore = time(validity[0]!);
  const notAfter = time(validity[1]!);
  const subjectDer = expectTag(f[i++], TAG.SEQUENCE, "subject").raw;
  const spkiDer = expectTag(f[i++], TAG.SEQUENCE, "subjectPublicKeyInfo").raw;
  let hasUniqueIds = false;
  while (f[i] && (f[i]!.tag === 0x81 || f[i]!.tag === 0xa1 || f[i]!.tag === 0x82 || f[i]!.tag === 0xa2)) {
    hasUniqueIds = true;
    i++;
  }
  let extensions: TbsExtension[] = [];
  if (f[i]?.tag === 0xa3) {
    const wrapped = children(f[i]!);
    if (wrapped.length !== 1) throw new DerReadError("extensions [3] must wrap one SEQUENCE");
    extensions = children(expectTag(wrapped[0], TAG.SEQUENCE, "Extensions")).map(readExtension);
    i++;
  }
  if (i !== f.length) throw new DerReadError("unexpected fields after the extensions");
  return {
    version,
    serial,
    signatureAlgDer,
    issuerDer,
    notBefore,
    notAfter,
    subjectDer,
    spkiDer,
    hasUniqueIds,
    extensions,
  };
}

/** Decoded BasicConstraints (§4.2.1.9). */
export function readBasicConstraints(value: Uint8Array): { ca: boolean; pathLen?: number } {
  const parts = children(expectTag(readDer(value), TAG.SEQUENCE, "BasicConstraints"));
  let i = 0;
  let ca = false;
  if (parts[i]?.tag === TAG.BOOLEAN) ca = parts[i++]!.value[0] === 0xff;
  const out: { ca: boolean; pathLen?: number } = { ca };
  if (parts[i]?.tag === TAG.INTEGER)
    out.pathLen = Number(BigInt(`0x${Buffer.from(parts[i++]!.value).toString("hex")}`));
  if (i !== parts.length) throw new DerReadError("BasicConstraints has extra fields");
  return out;
}

/** Decoded KeyUsage bit numbers (§4.2.1.3). */
export function readKeyUsageBits(value: Uint8Array): number[] {
  const t = expectTag(readDer(value), TAG.BIT_STRING, "KeyUsage");
  const bits: number[] = [];
  t.value.subarray(1).forEach((byte, i) => {
    for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) bits.push(i * 8 + b);
  });
  return bits;
}

/** keyIdentifier [0] of an AuthorityKeyIdentifier (§4.2.1.1), if present. */
export function readAkiKeyId(value: Uint8Array): Uint8Array | undefined {
  const parts = children(expectTag(readDer(value), TAG.SEQUENCE, "AuthorityKeyIdentifier"));
  return parts.find((p) => p.tag === 0x80)?.value;
}

/** SubjectKeyIdentifier OCTET STRING content (§4.2.1.2). */
export function readSki(value: Uint8Array): Uint8Array {
  return expectTag(readDer(value), TAG.OCTET_STRING, "SubjectKeyIdentifier").value;
}

/** ExtKeyUsage OIDs (§4.2.1.12). */
export function readEku(value: Uint8Array): string[] {
  return children(expectTag(readDer(value), TAG.SEQUENCE, "ExtKeyUsage")).map(decodeOid);
}
