// The OCSP responder's delegated certificate (RFC 6960 §4.2.2.2, docs/ocsp.md): the coordinator makes
// a P-256 key and asks the CA, as the ca-config requester `ocsp` under a profile with extKeyUsage
// ocspSigning and ocspNoCheck, for a certificate of a few days; the custodians approve and
// threshold-sign it like any request. It is renewed with a new key at two thirds of its lifetime
// (self-cert.ts runs the loop, as for the coordinator's TLS certificate), kept 0600 in its own
// directory, and handed to the responder, which signs every answer with it.
import { X509Certificate } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import type { Logger } from "pino";
import type { CaConfig, Requester } from "../../config/schema.ts";
import { OCSP_PROFILE, OCSP_REQUESTER, OCSP_SUBJECT_CN } from "../../config/init.ts";
import { EKU_OIDS, OID } from "../../x509/oids.ts";
import { grantCovers } from "../../x509/policy.ts";
import { defaultDirBeside, SelfCertificate, type SelfCertRequests } from "../self-cert.ts";
import type { OcspResponder } from "./responder.ts";

// The ca-config requester the responder certificate's requests come from, the profile it asks for by
// default, and its CN (the requester's allowedNames must cover it): as `tca init` writes them.
export { OCSP_PROFILE, OCSP_REQUESTER, OCSP_SUBJECT_CN };

/** `tca.db` → `tca-ocsp` beside it; `tca-ocsp` in the working directory for PostgreSQL. */
export function defaultOcspDir(database: string): string {
  return defaultDirBeside(database, "ocsp");
}

/**
 * Checks that ca-config lets the coordinator obtain a responder certificate: a requester `ocsp`
 * granted `profile`, a profile with ocspNoCheck, ocspSigning and P-256 keys, names covering the
 * CN, and no other requester granted any profile with ocspSigning (its holder could sign OCSP
 * answers for every certificate of this CA). Returns the requester, or throws saying what to change.
 */
export function ocspRequester(config: CaConfig, profile = OCSP_PROFILE): Requester {
  const hint =
    `OCSP needs a requester named "${OCSP_REQUESTER}" in ca-config granted the "${profile}" profile ` +
    `(extKeyUsage [ocspSigning], ocspNoCheck: true, keyTypes including ec-p256), allowedNames covering ` +
    `"${OCSP_SUBJECT_CN}"; its tokenSha256 may be the hash of a token nobody keeps (docs/ocsp.md)`;
  const r = config.requesters.find((x) => x.name === OCSP_REQUESTER);
  if (!r) throw new Error(`${hint}; there is none`);
  const p = config.profiles[profile];
  if (!p) throw new Error(`${hint}; ca-config has no profile "${profile}"`);
  if (!r.profiles.includes(profile)) throw new Error(`${hint}; it is not granted "${profile}"`);
  if (!p.ocspNoCheck || !p.extKeyUsage.includes("ocspSigning"))
    throw new Error(`${hint}; profile "${profile}" lacks ocspNoCheck or extKeyUsage ocspSigning`);
  if (!p.keyTypes.includes("ec-p256"))
    throw new Error(`${hint}; profile "${profile}" does not allow ec-p256`);
  if (!r.allowedNames.some((n) => grantCovers("dns", OCSP_SUBJECT_CN, n)))
    throw new Error(`${hint}; its allowedNames do not cover "${OCSP_SUBJECT_CN}"`);
  const others = config.requesters.filter(
    (o) =>
      o.name !== r.name && o.profiles.some((n) => config.profiles[n]?.extKeyUsage.includes("ocspSigning")),
  );
  if (others.length > 0)
    throw new Error(
      `requester${others.length > 1 ? "s" : ""} ${others.map((o) => o.name).join(", ")} may get ocspSigning ` +
        `certificates, and could then answer OCSP for every certificate of this CA: grant profiles with ` +
        `ocspSigning to "${OCSP_REQUESTER}" alone (docs/ocsp.md)`,
    );
  return r;
}

/** Throws unless `cert` can sign OCSP answers as a delegated responder (RFC 6960 §4.2.2.2). */
export function checkResponderCertificate(cert: X509Certificate): void {
  if (!(cert.keyUsage ?? []).includes(EKU_OIDS.ocspSigning))
    throw new Error("the certificate has no extKeyUsage id-kp-OCSPSigning (RFC 6960 §4.2.2.2)");
  const parsed = AsnConvert.parse(cert.raw, Certificate);
  const ext = parsed.tbsCertificate.extensions?.find((e) => e.extnID === OID.ocspNoCheck);
  if (!ext) throw new Error("the certificate has no id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1)");
}

export interface OcspSignerOptions {
  requests: SelfCertRequests;
  caCertificate(): Promise<Uint8Array | null>;
  requester: Requester;
  profile?: string;
  dir: string;
  log: Logger;
  responder: OcspResponder;
  now?: () => number;
}

/** Keeps the responder supplied with a current delegated certificate. */
export class OcspSignerCertificate extends SelfCertificate {
  constructor(o: OcspSignerOptions) {
    super({
      label: "OCSP",
      what: "the OCSP responder certificate",
      requests: o.requests,
      caCertificate: o.caCertificate,
      requester: o.requester,
      profile: o.profile ?? OCSP_PROFILE,
      subject: `CN=${OCSP_SUBJECT_CN}`,
      dir: o.dir,
      log: o.log,
      check: checkResponderCertificate,
      install: (m) => o.responder.install({ keyPem: m.keyPem, der: m.der, notAfter: m.notAfter }),
      revoked: (serial) => o.responder.revoked(serial),
      withdraw: () => o.responder.withdraw(),
      installed: (renewed) =>
        renewed
          ? "OCSP: renewed responder certificate installed"
          : "OCSP: responder certificate installed; answering",
      ...(o.now ? { now: o.now } : {}),
    });
    o.responder.waiting();
  }
}
