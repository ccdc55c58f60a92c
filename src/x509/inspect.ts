// A plain summary of a TBSCertificate for the person (or agent) deciding whether to approve it
// (DESIGN §3.2: "shows the person what the certificate will say"). Read from the TBS bytes
// themselves, not from the request that produced them.
import { createHash } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AuthorityInfoAccessSyntax, CRLDistributionPoints, NameConstraints } from "@peculiar/asn1-x509";
import { toArrayBuffer, toHex } from "./der.ts";
import { withDerErrors } from "./der-read.ts";
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
    const uris = (names: Array<{ uniformResourceIdentifier?: string }> | undefined) =>
      (names ?? []).flatMap((n) => (n.uniformResourceIdentifier ? [n.uniformResourceIdentifier] : []));
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
      crlDistributionPoints: crldp
        ? AsnConvert.parse(toArrayBuffer(crldp), CRLDistributionPoints).flatMap((p) =>
            uris(p.distributionPoint?.fullName),
          )
        : [],
      caIssuers: aia
        ? uris(
            AsnConvert.parse(toArrayBuffer(aia), AuthorityInfoAccessSyntax)
              .filter((a) => a.accessMethod === OID.caIssuers)
              .map((a) => a.accessLocation),
          )
        : [],
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
