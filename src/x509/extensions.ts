// DER encoders for the certificate extensions tca writes (RFC 5280 §4.2). Each returns an
// `Ext` (OID, criticality, DER value); `encodeExtensions` wraps them in the order given, and
// the builders fix that order so derivation is deterministic (docs/architecture.md §3.2).
import type { z } from "zod";
import type { ExtKeyUsageSchema } from "../config/schema.ts";
import { bitString, boolean, concat, ctx, ia5, octetString, oid, seq, smallInteger } from "./der.ts";
import { EKU_OIDS, KEY_USAGE_BITS, OID, type KeyUsage } from "./oids.ts";
import { ipToBytes } from "./ip.ts";
import { X509Error } from "./errors.ts";

export type { KeyUsage } from "./oids.ts";
export type ExtKeyUsage = z.infer<typeof ExtKeyUsageSchema>;
export type SanType = "dns" | "ip" | "email" | "uri";
export interface San {
  type: SanType;
  value: string;
}

export interface Ext {
  oid: string;
  critical: boolean;
  value: Uint8Array;
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
 *  DER omits a BOOLEAN equal to its DEFAULT (X.690 §11.5), so non-critical has no BOOLEAN. */
export function encodeExtensions(exts: readonly Ext[]): Uint8Array {
  return seq(
    ...exts.map((e) => seq(oid(e.oid), ...(e.critical ? [boolean(true)] : []), octetString(e.value))),
  );
}

/** §4.2.1.9: cA DEFAULT FALSE (omitted when false); pathLenConstraint only meaningful with cA. */
export function basicConstraints(ca: boolean, pathLen?: number): Ext {
  const items = ca ? [boolean(true), ...(pathLen !== undefined ? [smallInteger(pathLen)] : [])] : [];
  return { oid: OID.basicConstraints, critical: true, value: seq(...items) };
}

/** §4.2.1.3 KeyUsage as a named BIT STRING: DER drops trailing zero bits (X.690 §11.2.2). */
export function keyUsage(usages: readonly KeyUsage[], critical = true): Ext {
  const bits = [...new Set(usages.map((u) => KEY_USAGE_BITS[u]))];
  if (bits.length === 0) throw new RangeError("keyUsage needs at least one bit");
  const high = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(high / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return { oid: OID.keyUsage, critical, value: bitString(bytes, bytes.length * 8 - (high + 1)) };
}

/** §4.2.1.12 ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId, in profile order. */
export function extKeyUsage(usages: readonly ExtKeyUsage[]): Ext {
  return { oid: OID.extKeyUsage, critical: false, value: seq(...usages.map((u) => oid(EKU_OIDS[u]))) };
}

/** One GeneralName (§4.2.1.6): rfc822Name [1], dNSName [2], URI [6], iPAddress [7] (IMPLICIT). */
export function generalName(san: San): Uint8Array {
  switch (san.type) {
    case "email":
      return ia5Tagged(1, san.value);
    case "dns":
      return ia5Tagged(2, san.value);
    case "uri":
      return ia5Tagged(6, san.value);
    case "ip": {
      const b = ipToBytes(san.value);
      if (!b) throw new X509Error("NAME_INVALID", `"${san.value}" is not an IP address.`, "subjectAltName");
      return ctx(7, false, b);
    }
  }
}

function ia5Tagged(n: number, s: string): Uint8Array {
  if ([...s].some((c) => c.charCodeAt(0) > 0x7f))
    throw new X509Error(
      "NAME_INVALID",
      `"${s}" has non-ASCII characters, which an IA5String cannot hold.`,
      "subjectAltName",
    );
  const t = ia5(s);
  return concat([Uint8Array.of(0x80 | n), t.subarray(1)]); // same length and content, context tag
}

/** §4.2.1.6: critical when the subject is empty, non-critical otherwise. */
export function subjectAltName(sans: readonly San[], critical: boolean): Ext {
  return { oid: OID.subjectAltName, critical, value: seq(...sans.map(generalName)) };
}

/** §4.2.1.2: SubjectKeyIdentifier ::= KeyIdentifier (OCTET STRING); non-critical. */
export function subjectKeyIdentifier(id: Uint8Array): Ext {
  return { oid: OID.subjectKeyIdentifier, critical: false, value: octetString(id) };
}

/** §4.2.1.1: AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }. */
export function authorityKeyIdentifier(id: Uint8Array): Ext {
  return { oid: OID.authorityKeyIdentifier, critical: false, value: seq(ctx(0, false, id)) };
}

/** §4.2.1.13: one DistributionPoint with fullName [0] { URI }. */
export function crlDistributionPoint(url: string): Ext {
  return {
    oid: OID.cRLDistributionPoints,
    critical: false,
    value: seq(seq(ctx(0, true, ctx(0, true, ia5Tagged(6, url))))),
  };
}

/**
 * §4.2.2.1: AuthorityInfoAccess: the OCSP responder's URI first when given (id-ad-ocsp, RFC 6960
 * §4.2.1, the order most CAs use), then one caIssuers URI.
 */
export function authorityInfoAccess(caIssuersUrl: string, ocspUrl?: string): Ext {
  const ocsp = ocspUrl === undefined ? [] : [seq(oid(OID.ocsp), ia5Tagged(6, ocspUrl))];
  return {
    oid: OID.authorityInfoAccess,
    critical: false,
    value: seq(...ocsp, seq(oid(OID.caIssuers), ia5Tagged(6, caIssuersUrl))),
  };
}

/**
 * RFC 6960 §4.2.2.2.1 id-pkix-ocsp-nocheck: extnValue is the DER of NULL; non-critical. Relying
 * parties then trust a delegated OCSP responder's certificate for its lifetime without asking
 * anyone about its own status, so it goes only into short-lived ocspSigning certificates (lint).
 */
export function ocspNoCheck(): Ext {
  return { oid: OID.ocspNoCheck, critical: false, value: Uint8Array.of(0x05, 0x00) };
}

/** §4.2.1.10: permitted [0] / excluded [1] dNSName subtrees; MUST be critical; never empty. */
export function nameConstraints(nc: {
  permittedDns: readonly string[];
  excludedDns: readonly string[];
}): Ext | undefined {
  const subtrees = (names: readonly string[]) => names.map((n) => seq(ia5Tagged(2, n)));
  const parts: Uint8Array[] = [];
  if (nc.permittedDns.length) parts.push(ctx(0, true, ...subtrees(nc.permittedDns)));
  if (nc.excludedDns.length) parts.push(ctx(1, true, ...subtrees(nc.excludedDns)));
  return parts.length ? { oid: OID.nameConstraints, critical: true, value: seq(...parts) } : undefined;
}
