// Object identifiers used by the builders, linter and inspector.
import type { z } from "zod";
import type { KeyUsageSchema } from "../config/schema.ts";

/** RFC 5280 §4.2.1.3 key usage names: those a profile may set, plus the two only decoders meet. */
export type KeyUsage = z.infer<typeof KeyUsageSchema> | "encipherOnly" | "decipherOnly";

export const OID = {
  ed25519: "1.3.101.112", // RFC 8410 §3
  ed448: "1.3.101.113",
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsaPss: "1.2.840.113549.1.1.10",
  sha256WithRSA: "1.2.840.113549.1.1.11",
  sha384WithRSA: "1.2.840.113549.1.1.12",
  sha512WithRSA: "1.2.840.113549.1.1.13",
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  ecdsaWithSHA384: "1.2.840.10045.4.3.3",
  ecdsaWithSHA512: "1.2.840.10045.4.3.4",
  p256: "1.2.840.10045.3.1.7",
  p384: "1.3.132.0.34",
  p521: "1.3.132.0.35",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  extensionRequest: "1.2.840.113549.1.9.14", // RFC 2986 / PKCS#9
  // RFC 5280 §4.2.1.x
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  nameConstraints: "2.5.29.30",
  cRLDistributionPoints: "2.5.29.31",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  caIssuers: "1.3.6.1.5.5.7.48.2",
  // RFC 6960 §4.2.1 id-pkix-ocsp (an AIA accessMethod) and §4.2.2.2.1 id-pkix-ocsp-nocheck
  ocsp: "1.3.6.1.5.5.7.48.1",
  ocspNoCheck: "1.3.6.1.5.5.7.48.1.5",
  // RFC 5280 §5.2.3, §5.3.1
  cRLNumber: "2.5.29.20",
  cRLReason: "2.5.29.21",
} as const;

/** RFC 5280 §4.2.1.12 key purposes, by the names ca-config uses. */
export const EKU_OIDS = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  codeSigning: "1.3.6.1.5.5.7.3.3",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  timeStamping: "1.3.6.1.5.5.7.3.8",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
} as const;

/** RFC 5280 §4.2.1.3 KeyUsage bit numbers, by the names ca-config uses. */
export const KEY_USAGE_BITS: Record<KeyUsage, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

export const EXTENSION_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(OID)
    .filter(([, v]) => v.startsWith("2.5.29.") || v === OID.authorityInfoAccess || v === OID.ocspNoCheck)
    .map(([k, v]) => [v, k]),
);
