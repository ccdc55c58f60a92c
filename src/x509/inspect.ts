// A plain summary of a TBSCertificate for the person (or agent) deciding whether to approve it
// (docs/architecture.md §3.2: "shows the person what the certificate will say"). Read from the TBS bytes
// themselves, not from the request that produced them.
import { createHash } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AuthorityInfoAccessSyntax, CRLDistributionPoints, NameConstraints } from "@peculiar/asn1-x509";
import { TAG, toArrayBuffer, toHex } from "./der.ts";
import { children, readDer, simpleOid, withDerErrors, type Tlv } from "./der-read.ts";
import { derToName } from "./names.ts";
import { EKU_OIDS, EXTENSION_NAMES, KEY_USAGE_BITS, OID } from "./oids.ts";
import {
  readAkiKeyId,
  readBasicConstraints,
  readEku,
  readKeyUsageBits,
  readSki,
  readTbs,
} from "./tbs-read.ts";
import { decodeGeneralNames, type San } from "./sans.ts";
import { keyTypeOf, loadSpki } from "./keys.ts";
import { spkiFingerprint } from "./ski.ts";
import { serialHex } from "./serial.ts";

export interface TbsDescription {
  subject: string;
  issuer: string;
  serialHex: string;
  notBefore: string;
  notAfter: string;
  validityHours: number;
  publicKey: { type: string; bits: number; sha256: string };
  sans: San[];
  isCA: boolean;
  pathLen?: number;
  keyUsage: string[];
  extKeyUsage: string[];
  subjectKeyId?: string;
  authorityKeyId?: string;
  crlDistributionPoints: string[];
  caIssuers: string[];
  nameConstraints?: { permittedDns: string[]; excludedDns: string[] };
  extensions: Array<{ oid: string; name: string; critical: boolean }>;
  /** SHA-256 of the TBS DER, hex: what approvals and logs name. */
  tbsSha256: string;
}

const KU_NAMES = Object.fromEntries(Object.entries(KEY_USAGE_BITS).map(([k, v]) => [v, k]));
const EKU_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(EKU_OIDS).map(([k, v]) => [v, k]),
);

const uris = (names: Array<{ uniformResourceIdentifier?: string }> | undefined) =>
  (names ?? []).flatMap((n) => (n.uniformResourceIdentifier ? [n.uniformResourceIdentifier] : []));

/**
 * The URIs of GeneralNames that are all non-empty ASCII uniformResourceIdentifiers ([6]), or
 * undefined for any other content (then @peculiar/asn1-x509 reads the extension).
 */
function plainUris(names: readonly Tlv[]): string[] | undefined {
  const out: string[] = [];
  for (const n of names) {
    if (n.tag !== 0x86 || n.value.length === 0) return undefined;
    for (const b of n.value) if (b >= 0x80) return undefined;
    out.push(Buffer.from(n.value.buffer, n.value.byteOffset, n.value.byteLength).toString("latin1"));
  }
  return out;
}

/** Runs `fn` over strict DER; undefined when the shape is not the plain one it expects. */
function fastShape<T>(fn: () => T | undefined): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/**
 * CRLDistributionPoints (RFC 5280 §4.2.1.13) -> fullName URIs, in order. The plain shape tca writes
 * (each DistributionPoint only a distributionPoint [0] holding fullName [0] of URIs) is read
 * directly; anything else is parsed by @peculiar/asn1-x509 as before.
 */
export function crlDpUris(value: Uint8Array): string[] {
  const fast = fastShape(() => {
    const top = readDer(value);
    if (top.tag !== TAG.SEQUENCE) return undefined;
    const points = children(top);
    if (points.length === 0) return undefined;
    const out: string[] = [];
    for (const dp of points) {
      if (dp.tag !== TAG.SEQUENCE) return undefined;
      const [dpn, ...rest] = children(dp);
      if (!dpn || rest.length || dpn.tag !== 0xa0) return undefined;
      const [full, ...more] = children(dpn);
      if (!full || more.length || full.tag !== 0xa0) return undefined;
      const uris = plainUris(children(full));
      if (!uris || uris.length === 0) return undefined;
      out.push(...uris);
    }
    return out;
  });
  return (
    fast ??
    AsnConvert.parse(toArrayBuffer(value), CRLDistributionPoints).flatMap((p) =>
      uris(p.distributionPoint?.fullName),
    )
  );
}

/**
 * AuthorityInfoAccess (RFC 5280 §4.2.2.1) -> caIssuers URIs, in order. AccessDescriptions that are
 * a plain OID and a URI are read directly; anything else is parsed by @peculiar/asn1-x509 as before.
 */
export function caIssuerUris(value: Uint8Array): string[] {
  const fast = fastShape(() => {
    const top = readDer(value);
    if (top.tag !== TAG.SEQUENCE) return undefined;
    const descs = children(top);
    if (descs.length === 0) return undefined;
    const out: string[] = [];
    for (const ad of descs) {
      if (ad.tag !== TAG.SEQUENCE) return undefined;
      const parts = children(ad);
      if (parts.length !== 2 || parts[0]!.tag !== TAG.OID) return undefined;
      const method = simpleOid(parts[0]!.value);
      const location = plainUris([parts[1]!]);
      if (method === undefined || !location) return undefined;
      if (method === OID.caIssuers) out.push(...location);
    }
    return out;
  });
  return (
    fast ??
    uris(
      AsnConvert.parse(toArrayBuffer(value), AuthorityInfoAccessSyntax)
        .filter((a) => a.accessMethod === OID.caIssuers)
        .map((a) => a.accessLocation),
    )
  );
}

export function describeTbs(tbsDer: Uint8Array): TbsDescription {
  return withDerErrors("TBS_MALFORMED", "The TBSCertificate", () => {
    const t = readTbs(tbsDer);
    const ext = (oid: string) => t.extensions.find((e) => e.oid === oid)?.value;
    const [type, bits] = keyTypeOf(loadSpki(t.spkiDer));
    const bc = ext(OID.basicConstraints);
    const bcv = bc ? readBasicConstraints(bc) : { ca: false };
    const ku = ext(OID.keyUsage);
    const eku = ext(OID.extKeyUsage);
    const san = ext(OID.subjectAltName);
    const ski = ext(OID.subjectKeyIdentifier);
    const aki = ext(OID.authorityKeyIdentifier);
    const akiId = aki && readAkiKeyId(aki);
    const crldp = ext(OID.cRLDistributionPoints);
    const aia = ext(OID.authorityInfoAccess);
    const ncv = ext(OID.nameConstraints);
    const d: TbsDescription = {
      subject: derToName(t.subjectDer),
      issuer: derToName(t.issuerDer),
      serialHex: serialHex(t.serial),
      notBefore: t.notBefore.date.toISOString(),
      notAfter: t.notAfter.date.toISOString(),
      validityHours: (t.notAfter.date.getTime() - t.notBefore.date.getTime()) / 3_600_000,
      publicKey: { type, bits, sha256: spkiFingerprint(t.spkiDer) },
      sans: san ? decodeGeneralNames(san, "TBS_MALFORMED") : [],
      isCA: bcv.ca,
      keyUsage: ku ? readKeyUsageBits(ku).map((b) => KU_NAMES[b] ?? `bit${b}`) : [],
      extKeyUsage: eku ? readEku(eku).map((o) => EKU_NAMES[o] ?? o) : [],
      crlDistributionPoints: crldp ? crlDpUris(crldp) : [],
      caIssuers: aia ? caIssuerUris(aia) : [],
      extensions: t.extensions.map((e) => ({
        oid: e.oid,
        name: EXTENSION_NAMES[e.oid] ?? "unknown",
        critical: e.critical,
      })),
      tbsSha256: createHash("sha256").update(tbsDer).digest("hex"),
    };
    if (bcv.pathLen !== undefined) d.pathLen = bcv.pathLen;
    if (ski) d.subjectKeyId = toHex(readSki(ski));
    if (akiId) d.authorityKeyId = toHex(akiId);
    if (ncv) {
      const nc = AsnConvert.parse(toArrayBuffer(ncv), NameConstraints);
      const dns = (s: typeof nc.permittedSubtrees) =>
        (s ?? []).flatMap((x) => (x.base.dNSName !== undefined ? [x.base.dNSName] : []));
      d.nameConstraints = { permittedDns: dns(nc.permittedSubtrees), excludedDns: dns(nc.excludedSubtrees) };
    }
    return d;
  });
}
