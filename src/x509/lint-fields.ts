// Lint rules on the TBSCertificate's own fields (RFC 5280 §4.1.2), in a fixed order.
import { bytesEqual } from "./der.ts";
import { ED25519_ALG_ID } from "./tbs.ts";
import { usesUtcTime } from "./time.ts";
import { publicKeyFromSpki } from "./keys.ts";
import type { ParsedTbs } from "./tbs-read.ts";
import { nameBoundProblem } from "./names.ts";

/** The caller's view of the CA (see lint.ts). */
export interface LintContext {
  caSubjectDer: Uint8Array;
  caSkiHex?: string;
}

/** A check returns a failure message, or undefined when the TBS passes it. */
export type Rule = (t: ParsedTbs, o: LintContext) => string | undefined;

export const FIELD_RULES: ReadonlyArray<readonly [string, Rule]> = [
  [
    "e_version_not_v3",
    (t) =>
      t.version === 2 ? undefined : `version is v${t.version + 1}; extensions need v3 (RFC 5280 §4.1.2.1)`,
  ],
  [
    "e_serial_not_positive",
    (t) =>
      t.serial.length === 0 || t.serial[0]! & 0x80 || t.serial.every((b) => b === 0)
        ? "the serial number is not positive (RFC 5280 §4.1.2.2)"
        : undefined,
  ],
  [
    "e_serial_not_minimal",
    (t) =>
      t.serial.length > 1 && t.serial[0] === 0 && !(t.serial[1]! & 0x80)
        ? "the serial INTEGER is not minimally encoded (X.690 §8.3.2)"
        : undefined,
  ],
  [
    "e_serial_too_long",
    (t) =>
      t.serial.length > 20
        ? `the serial number has ${t.serial.length} octets; at most 20 (RFC 5280 §4.1.2.2)`
        : undefined,
  ],
  [
    "e_signature_alg_not_ed25519",
    (t) =>
      bytesEqual(t.signatureAlgDer, ED25519_ALG_ID)
        ? undefined
        : "the signature algorithm is not id-Ed25519 without parameters (RFC 8410 §3)",
  ],
  [
    "e_issuer_mismatch",
    (t, o) =>
      bytesEqual(t.issuerDer, o.caSubjectDer)
        ? undefined
        : "the issuer is not byte-for-byte the CA certificate's subject (RFC 5280 §4.1.2.4)",
  ],
  [
    "e_validity_inverted",
    (t) =>
      t.notBefore.date < t.notAfter.date ? undefined : "notBefore is not before notAfter (RFC 5280 §4.1.2.5)",
  ],
  [
    "e_time_encoding",
    (t) => {
      for (const [n, v] of [
        ["notBefore", t.notBefore],
        ["notAfter", t.notAfter],
      ] as const) {
        if ((v.tag === 0x17) !== usesUtcTime(v.date))
          return `${n} uses ${v.tag === 0x17 ? "UTCTime" : "GeneralizedTime"}; RFC 5280 §4.1.2.5 requires UTCTime before 2050 and GeneralizedTime from 2050`;
      }
      return undefined;
    },
  ],
  [
    "e_subject_bounds",
    (t) => {
      const why = nameBoundProblem(t.subjectDer);
      return why ? `the subject's ${why}` : undefined;
    },
  ],
  [
    "e_unique_id_present",
    (t) =>
      t.hasUniqueIds
        ? "issuer/subject unique identifiers must not be generated (RFC 5280 §4.1.2.8)"
        : undefined,
  ],
  [
    "e_spki_invalid",
    (t) => {
      try {
        publicKeyFromSpki(t.spkiDer);
        return undefined;
      } catch (e) {
        return `the subject public key cannot be loaded: ${(e as Error).message}`;
      }
    },
  ],
];
