// Lint rules on the TBSCertificate's extensions (RFC 5280 §4.2), in a fixed order.
import { toHex } from "./der.ts";
import { isEmptyName } from "./names.ts";
import { EKU_OIDS, OID } from "./oids.ts";
import {
  readAkiKeyId,
  readBasicConstraints,
  readEku,
  readKeyUsageBits,
  readSki,
  type ParsedTbs,
} from "./tbs-read.ts";
import { OCSP_NOCHECK_MAX_HOURS } from "../config/schema.ts";
import { decodeGeneralNames } from "./sans.ts";
import type { Rule } from "./lint-fields.ts";

const ext = (t: ParsedTbs, oid: string) => t.extensions.find((e) => e.oid === oid);
const KEY_CERT_SIGN = 5; // KeyUsage bit (§4.2.1.3)

export const EXTENSION_RULES: ReadonlyArray<readonly [string, Rule]> = [
  [
    "e_duplicate_extension",
    (t) => {
      const seen = new Set<string>();
      for (const e of t.extensions) {
        if (seen.has(e.oid)) return `extension ${e.oid} appears more than once (RFC 5280 §4.2)`;
        seen.add(e.oid);
      }
      return undefined;
    },
  ],
  [
    "e_ski_missing",
    (t) =>
      ext(t, OID.subjectKeyIdentifier) ? undefined : "subjectKeyIdentifier is missing (RFC 5280 §4.2.1.2)",
  ],
  [
    "e_aki_missing",
    (t) =>
      ext(t, OID.authorityKeyIdentifier) && readAkiKeyId(ext(t, OID.authorityKeyIdentifier)!.value)
        ? undefined
        : "authorityKeyIdentifier with a keyIdentifier is missing (RFC 5280 §4.2.1.1)",
  ],
  [
    "e_aki_mismatch",
    (t, o) => {
      const aki = ext(t, OID.authorityKeyIdentifier);
      const id = aki && readAkiKeyId(aki.value);
      return o.caSkiHex === undefined || !id || toHex(id) === o.caSkiHex.toLowerCase()
        ? undefined
        : `authorityKeyIdentifier ${id ? toHex(id) : ""} is not the CA's key identifier ${o.caSkiHex}`;
    },
  ],
  [
    "e_ski_malformed",
    (t) => {
      const ski = ext(t, OID.subjectKeyIdentifier);
      return !ski || readSki(ski.value).length > 0 ? undefined : "subjectKeyIdentifier is empty";
    },
  ],
  [
    "e_ca_key_cert_sign_mismatch",
    (t) => {
      const bc = ext(t, OID.basicConstraints);
      const ku = ext(t, OID.keyUsage);
      const ca = bc ? readBasicConstraints(bc.value).ca : false;
      const kcs = ku ? readKeyUsageBits(ku.value).includes(KEY_CERT_SIGN) : false;
      if (kcs && !ca)
        return "keyUsage has keyCertSign but basicConstraints cA is not TRUE (RFC 5280 §4.2.1.3)";
      if (ca && !kcs) return "basicConstraints cA is TRUE but keyUsage lacks keyCertSign (RFC 5280 §4.2.1.9)";
      return undefined;
    },
  ],
  [
    "e_basic_constraints_not_critical",
    (t) => {
      const bc = ext(t, OID.basicConstraints);
      return bc && readBasicConstraints(bc.value).ca && !bc.critical
        ? "basicConstraints must be critical in a CA certificate (RFC 5280 §4.2.1.9)"
        : undefined;
    },
  ],
  [
    "e_path_len_without_ca",
    (t) => {
      const bc = ext(t, OID.basicConstraints);
      const v = bc && readBasicConstraints(bc.value);
      return v && v.pathLen !== undefined && !v.ca
        ? "pathLenConstraint is set without cA TRUE (RFC 5280 §4.2.1.9)"
        : undefined;
    },
  ],
  [
    "e_name_constraints_invalid",
    (t) => {
      const nc = ext(t, OID.nameConstraints);
      if (!nc) return undefined;
      const bc = ext(t, OID.basicConstraints);
      if (!nc.critical) return "nameConstraints must be critical (RFC 5280 §4.2.1.10)";
      return bc && readBasicConstraints(bc.value).ca
        ? undefined
        : "nameConstraints appear in a certificate that is not a CA (RFC 5280 §4.2.1.10)";
    },
  ],
  [
    "e_san_missing_empty_subject",
    (t) => {
      if (!isEmptyName(t.subjectDer)) return undefined;
      const san = ext(t, OID.subjectAltName);
      if (!san) return "the subject is empty and there is no subjectAltName (RFC 5280 §4.1.2.6)";
      return san.critical
        ? undefined
        : "the subject is empty, so subjectAltName must be critical (RFC 5280 §4.2.1.6)";
    },
  ],
  [
    "e_san_empty",
    (t) => {
      const san = ext(t, OID.subjectAltName);
      return san && decodeGeneralNames(san.value, "LINT_FAILED").length === 0
        ? "subjectAltName is present but empty (RFC 5280 §4.2.1.6)"
        : undefined;
    },
  ],
  [
    // RFC 6960 §4.2.2.2.1: relying parties never ask about the revocation of a certificate with
    // id-pkix-ocsp-nocheck, and its key can vouch for every certificate of this CA. Only a
    // delegated responder's certificate may carry it, and only for a short time (docs/ocsp.md).
    "e_ocsp_nocheck_misuse",
    (t) => {
      const nc = ext(t, OID.ocspNoCheck);
      if (!nc) return undefined;
      if (nc.critical) return "id-pkix-ocsp-nocheck must not be critical (RFC 6960 §4.2.2.2.1)";
      if (nc.value.length !== 2 || nc.value[0] !== 0x05 || nc.value[1] !== 0x00)
        return "id-pkix-ocsp-nocheck's value must be NULL (RFC 6960 §4.2.2.2.1)";
      const eku = ext(t, OID.extKeyUsage);
      if (!eku || !readEku(eku.value).includes(EKU_OIDS.ocspSigning))
        return "id-pkix-ocsp-nocheck without extKeyUsage id-kp-OCSPSigning (RFC 6960 §4.2.2.2)";
      const bc = ext(t, OID.basicConstraints);
      if (bc && readBasicConstraints(bc.value).ca)
        return "id-pkix-ocsp-nocheck in a CA certificate (RFC 6960 §4.2.2.2)";
      const hours = (t.notAfter.date.getTime() - t.notBefore.date.getTime()) / 3_600_000;
      return hours > OCSP_NOCHECK_MAX_HOURS
        ? `id-pkix-ocsp-nocheck in a certificate valid ${hours.toFixed(1)} hours; at most ${OCSP_NOCHECK_MAX_HOURS} (docs/ocsp.md)`
        : undefined;
    },
  ],
];
