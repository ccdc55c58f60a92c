// Certificate revocation lists, reading side (RFC 5280 §5). Holds the types shared with the
// builder in crl.ts and a strict reader for the CRLs tca writes: v2, Ed25519, issuer bytes as
// found, nextUpdate present (§5.1.2.5), the 2050 time rule (§5.1.2.4), cRLNumber (§5.2.3) and
// reasonCode (§5.3.1). Anything else is CRL_MALFORMED. Custodians that must see what they sign
// re-run buildCrlTbs on the fields read here and compare bytes (docs/architecture.md §3.9).
import { TAG, bytesEqual, toHex } from "./der.ts";
import { children, decodeOid, DerReadError, expectTag, readDer, type Tlv } from "./der-read.ts";
import { decodeTime, usesUtcTime } from "./time.ts";
import { ED25519_ALG_ID } from "./tbs.ts";
import { X509Error } from "./errors.ts";
import { OID } from "./oids.ts";

/** RFC 5280 §5.3.1 CRLReason codes 0-6, 9, 10. removeFromCRL (8) is delta-CRL only: not used. */
export type RevocationReason =
  | "unspecified"
  | "keyCompromise"
  | "cACompromise"
  | "affiliationChanged"
  | "superseded"
  | "cessationOfOperation"
  | "certificateHold"
  | "privilegeWithdrawn"
  | "aACompromise";

/** The CRLReason ENUMERATED value of each reason (§5.3.1). */
export const REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

export const REVOCATION_REASONS = Object.keys(REASON_CODES) as readonly RevocationReason[];

export interface CrlEntry {
  /** Hex of the serial's INTEGER content octets, as in serial.ts (may start with 00). */
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface ParsedCrl {
  /** The TBSCertList bytes exactly as found. */
  tbs: Uint8Array;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** In the order found. A missing reasonCode reads as "unspecified". */
  entries: CrlEntry[];
  issuerDer: Uint8Array;
}

export const CRL_NUMBER_MAX_OCTETS = 20; // §5.2.3
export const ENUMERATED = 0x0a;

/**
 * Why `content` is not a positive, minimally encoded INTEGER of 1..20 octets (§4.1.2.2, §5.2.3,
 * X.690 §8.3.2), or undefined when it is one. `allowZero` for the CRL number (§5.2.3: ≥ 0).
 */
export function integerProblem(content: Uint8Array, allowZero = false): string | undefined {
  if (content.length === 0) return "is empty";
  if (content.length > 20) return `has ${content.length} octets; at most 20 are allowed`;
  if (content[0]! & 0x80) return "is negative";
  if (content.length > 1 && content[0] === 0 && !(content[1]! & 0x80)) return "is not minimally encoded";
  if (!allowZero && content.every((b) => b === 0)) return "is zero";
  return undefined;
}

function time(t: Tlv | undefined, what: string): Date {
  if (!t || (t.tag !== TAG.UTC_TIME && t.tag !== TAG.GENERALIZED_TIME))
    throw new DerReadError(`${what} is missing or not a Time`);
  const d = decodeTime(t);
  if ((t.tag === TAG.UTC_TIME) !== usesUtcTime(d))
    throw new DerReadError(`${what} uses the wrong time type for its year (RFC 5280 §5.1.2.4)`);
  return d;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension, into a map by OID (duplicates refused). */
function extensions(t: Tlv, what: string): Map<string, { critical: boolean; value: Uint8Array }> {
  const list = children(expectTag(t, TAG.SEQUENCE, what));
  if (list.length === 0) throw new DerReadError(`${what} is empty`);
  const out = new Map<string, { critical: boolean; value: Uint8Array }>();
  for (const e of list) {
    const parts = children(expectTag(e, TAG.SEQUENCE, "Extension"));
    const id = decodeOid(expectTag(parts[0], TAG.OID, "extnID"));
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === TAG.BOOLEAN) {
      // DER: a BOOLEAN equal to its DEFAULT FALSE is omitted (X.690 §11.5).
      if (parts[i]!.value.length !== 1 || parts[i]!.value[0] !== 0xff)
        throw new DerReadError(`extension ${id} has a critical flag that is not DER TRUE`);
      critical = true;
      i++;
    }
    const value = expectTag(parts[i], TAG.OCTET_STRING, `extnValue of ${id}`).value;
    if (parts.length !== i + 1) throw new DerReadError(`extension ${id} has extra fields`);
    if (out.has(id)) throw new DerReadError(`extension ${id} appears twice`);
    // §5.2, §5.3: a CRL with an unrecognised critical extension must not be used.
    if (critical) throw new DerReadError(`extension ${id} is critical, which tca does not write`);
    out.set(id, { critical, value });
  }
  return out;
}

function entry(t: Tlv): CrlEntry {
  const f = children(expectTag(t, TAG.SEQUENCE, "revokedCertificate"));
  const serial = expectTag(f[0], TAG.INTEGER, "userCertificate").value;
  const bad = integerProblem(serial);
  if (bad) throw new DerReadError(`serial ${toHex(serial)} ${bad}`);
  const revokedAt = time(f[1], "revocationDate");
  let reason: RevocationReason = "unspecified";
  if (f[2]) {
    const exts = extensions(f[2], "crlEntryExtensions");
    const rc = exts.get(OID.cRLReason);
    if (rc) {
      const e = readDer(rc.value);
      expectTag(e, ENUMERATED, "reasonCode");
      const found = REVOCATION_REASONS.find((r) => e.value.length === 1 && REASON_CODES[r] === e.value[0]);
      if (!found) throw new DerReadError(`reasonCode ${toHex(e.value)} is not allowed (§5.3.1)`);
      reason = found;
    }
  }
  if (f.length > 3) throw new DerReadError("revokedCertificate has extra fields");
  return { serial: toHex(serial), revokedAt, reason };
}

function parseTbs(der: Uint8Array): ParsedCrl {
  // TBSCertList (§5.1.2): version, signature, issuer, thisUpdate, nextUpdate,
  // revokedCertificates OPTIONAL, crlExtensions [0] EXPLICIT OPTIONAL.
  const root = expectTag(readDer(der), TAG.SEQUENCE, "TBSCertList");
  const f = children(root);
  const v = expectTag(f[0], TAG.INTEGER, "version");
  if (v.value.length !== 1 || v.value[0] !== 1) throw new DerReadError("version is not v2 (§5.1.2.1)");
  if (!bytesEqual(expectTag(f[1], TAG.SEQUENCE, "signature").raw, ED25519_ALG_ID))
    throw new DerReadError("signature is not id-Ed25519 without parameters (RFC 8410 §3)");
  const issuerDer = expectTag(f[2], TAG.SEQUENCE, "issuer").raw;
  const thisUpdate = time(f[3], "thisUpdate");
  const nextUpdate = time(f[4], "nextUpdate"); // §5.1.2.5: conforming CRL issuers MUST include it
  if (nextUpdate.getTime() <= thisUpdate.getTime())
    throw new DerReadError("nextUpdate is not later than thisUpdate (§5.1.2.5)");
  let i = 5;
  const entries: CrlEntry[] = [];
  if (f[i]?.tag === TAG.SEQUENCE) {
    const list = children(f[i]!);
    // §5.1.2.6: with no revoked certificates the field is absent, never an empty list.
    if (list.length === 0) throw new DerReadError("revokedCertificates is present but empty");
    entries.push(...list.map(entry));
    i++;
  }
  const wrapper = expectTag(f[i], 0xa0, "crlExtensions [0]");
  const inner = children(wrapper);
  if (inner.length !== 1) throw new DerReadError("crlExtensions [0] must hold one Extensions");
  if (f.length !== i + 1) throw new DerReadError("TBSCertList has extra fields");
  const exts = extensions(inner[0]!, "crlExtensions");
  // §5.2.1: authorityKeyIdentifier MUST be included; §5.2.3: so MUST cRLNumber.
  if (!exts.has(OID.authorityKeyIdentifier)) throw new DerReadError("authorityKeyIdentifier is missing");
  const num = exts.get(OID.cRLNumber);
  if (!num) throw new DerReadError("cRLNumber is missing");
  const n = expectTag(readDer(num.value), TAG.INTEGER, "cRLNumber").value;
  const bad = integerProblem(n, true);
  if (bad) throw new DerReadError(`cRLNumber ${bad}`);
  return {
    tbs: root.raw,
    crlNumber: BigInt(`0x${toHex(n)}`),
    thisUpdate,
    nextUpdate,
    entries,
    issuerDer,
  };
}

function malformed<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof X509Error) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new X509Error("CRL_MALFORMED", `${what} is malformed: ${why}.`, undefined, { cause: e });
  }
}

/** The three parts of a DER CertificateList (§5.1.1), as exact byte spans. */
export function splitCrl(crlDer: Uint8Array): { tbs: Uint8Array; sigAlg: Uint8Array; signature: Uint8Array } {
  return malformed("The CRL", () => {
    const parts = children(expectTag(readDer(crlDer), TAG.SEQUENCE, "CertificateList"));
    if (parts.length !== 3) throw new DerReadError(`a CertificateList has 3 parts, not ${parts.length}`);
    const tbs = expectTag(parts[0], TAG.SEQUENCE, "tbsCertList");
    const alg = expectTag(parts[1], TAG.SEQUENCE, "signatureAlgorithm");
    const sig = expectTag(parts[2], TAG.BIT_STRING, "signatureValue");
    if (sig.value[0] !== 0) throw new DerReadError("the signature BIT STRING has unused bits");
    return { tbs: tbs.raw, sigAlg: alg.raw, signature: sig.value.subarray(1) };
  });
}

/** Reads a DER TBSCertList; malformed or not what tca writes → X509Error CRL_MALFORMED. */
export function readCrlTbs(tbsDer: Uint8Array): ParsedCrl {
  return malformed("The TBSCertList", () => parseTbs(tbsDer));
}

/** Reads a DER CertificateList. Does not check the signature (see verifyCrlSignature). */
export function readCrl(crlDer: Uint8Array): ParsedCrl {
  const { tbs, sigAlg, signature } = splitCrl(crlDer);
  // §5.1.1.2: signatureAlgorithm MUST equal the TBSCertList's signature field (Ed25519 here).
  if (!bytesEqual(sigAlg, ED25519_ALG_ID) || signature.length !== 64)
    throw new X509Error("CRL_MALFORMED", "The CRL is not signed with Ed25519 (RFC 8410 §3, §6).");
  return readCrlTbs(tbs);
}
