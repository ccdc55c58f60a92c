// Renewal authenticated by the current certificate (docs/revocation.md, "Renewal"): the holder asks
// for a one-time challenge, then signs, with the current certificate's private key, a
// domain-separated message binding the certificate's serial, that challenge and SHA-256 of the new
// CSR. The coordinator checks it against the stored certificate's SubjectPublicKeyInfo, and so can
// every custodian (the proof travels with the request), so a coordinator cannot invent a renewal.
import { RequestStatusSchema } from "./enums.ts";
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { displaySerial } from "../x509/serial.ts";
import { splitCertificate } from "../x509/assemble.ts";
import { readTbs } from "../x509/tbs-read.ts";
import { OID } from "../x509/oids.ts";
import { decodeGeneralNames, type San } from "../x509/sans.ts";
import { bytesEqual, toHex } from "../x509/der.ts";
import { derToName } from "../x509/names.ts";

export const RENEWAL_DOMAIN = "tca/renewal/v1";
/** How long a renewal challenge may be used (it is used once). */
export const RENEWAL_CHALLENGE_TTL_MS = 5 * 60_000;

const Base64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** 32 random bytes, base64url without padding. */
export const ChallengeSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a challenge from renewal-challenge");

export const RenewalChallengeSchema = z
  .object({ challenge: ChallengeSchema, expiresAt: z.string().datetime() })
  .strict();
export type RenewalChallenge = z.infer<typeof RenewalChallengeSchema>;

/** POST /api/v1/certificates/{serial}/renew. */
export const RenewBodySchema = z
  .object({
    csr: z.string().min(1).max(60_000),
    challenge: ChallengeSchema,
    /** base64 signature over renewalMessage() with the current certificate's key. */
    signature: z.string().min(1).max(2_000).regex(Base64, "base64"),
  })
  .strict();
export type RenewBody = z.infer<typeof RenewBodySchema>;

/** What a renewal carries to the custodians so that each can check it on its own. */
export const RenewalProofSchema = z
  .object({
    /** The certificate being renewed, base64 DER (threshold-signed: the coordinator cannot forge it). */
    certificate: z.string().regex(Base64),
    challenge: ChallengeSchema,
    signature: z.string().regex(Base64),
  })
  .strict();
export type RenewalProof = z.infer<typeof RenewalProofSchema>;

const Status = RequestStatusSchema;
/** GET /api/v1/renewals/{id}: the renewal's progress, and its chain once issued. */
export const RenewalViewSchema = z
  .object({
    id: z.string(),
    status: Status,
    /** The new certificate's serial (display form). */
    serial: z.string(),
    /** The serial of the certificate renewed (display form). */
    renewalOf: z.string(),
    notAfter: z.string(),
    approvals: z.number().int(),
    missing: z.number().int(),
    rejection: z.object({ by: z.string(), reason: z.string() }).nullable(),
    failure: z.string().nullable(),
    /** PEM chain, leaf first, once issued. */
    chain: z.string().nullable(),
  })
  .strict();
export type RenewalView = z.infer<typeof RenewalViewSchema>;

/** The answer to a renewal: the new request (follow it at GET /api/v1/renewals/{id}). */
export const RenewedSchema = z
  .object({ id: z.string(), status: Status, serial: z.string(), renewalOf: z.string() })
  .strict();
export type Renewed = z.infer<typeof RenewedSchema>;

/**
 * The exact bytes signed: the domain, then the serial (display form, so any written form of one
 * serial gives one message), the challenge and SHA-256 of the new CSR's DER, one per line.
 */
export function renewalMessage(serial: string, challenge: string, csrDer: Uint8Array): Buffer {
  const csrSha256 = createHash("sha256").update(csrDer).digest("hex");
  return Buffer.from(
    `${RENEWAL_DOMAIN}\nserial=${displaySerial(serial)}\nchallenge=${challenge}\ncsr-sha256=${csrSha256}\n`,
    "utf8",
  );
}

export class RenewalKeyError extends Error {}

/**
 * The digest a key signs with: RSA PKCS#1 v1.5 with SHA-256, ECDSA with its curve's hash (P-256:
 * SHA-256, P-384: SHA-384, P-521: SHA-512; RFC 5758 §3.2), none for Ed25519/Ed448 (RFC 8032).
 */
export function renewalDigest(key: KeyObject): string | null {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return "sha256";
    case "ed25519":
    case "ed448":
      return null;
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") return "sha256";
      if (curve === "secp384r1") return "sha384";
      if (curve === "secp521r1") return "sha512";
      throw new RenewalKeyError(`EC curve ${curve ?? "?"} cannot sign a renewal`);
    }
    default:
      throw new RenewalKeyError(`a ${key.asymmetricKeyType ?? "?"} key cannot sign a renewal`);
  }
}

/** Signs the message with the current certificate's private key; base64. */
export function signRenewal(privateKey: KeyObject, message: Uint8Array): string {
  return sign(renewalDigest(privateKey), message, privateKey).toString("base64");
}

/** Whether `signature` (base64) over `message` verifies with the SubjectPublicKeyInfo `spkiDer`. */
export function verifyRenewal(spkiDer: Uint8Array, message: Uint8Array, signature: string): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
    return verify(renewalDigest(key), message, key, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}

/** What a renewal compares: the certificate's subject bytes, SANs and key (RFC 5280 §4.1.2.6, §4.2.1.6). */
export function certificateFacts(certDer: Uint8Array): {
  serial: string;
  subjectDer: Uint8Array;
  sans: San[];
  spkiDer: Uint8Array;
  tbsSha256: string;
} {
  const { tbs } = splitCertificate(certDer);
  const t = readTbs(tbs);
  const san = t.extensions.find((e) => e.oid === OID.subjectAltName)?.value;
  return {
    serial: toHex(t.serial),
    subjectDer: t.subjectDer,
    sans: san ? decodeGeneralNames(san, "TBS_MALFORMED") : [],
    spkiDer: t.spkiDer,
    tbsSha256: createHash("sha256").update(tbs).digest("hex"),
  };
}

/**
 * Why a renewal's CSR does not keep the certificate's names (subject bytes and the set of SANs), or
 * undefined when it does: a renewal changes the key at most, never the names.
 */
export function namesDiffer(
  cert: { subjectDer: Uint8Array; sans: readonly San[] },
  csr: { subjectDer: Uint8Array; sans: readonly San[] },
): string | undefined {
  if (!bytesEqual(cert.subjectDer, csr.subjectDer))
    return `the subject ${derToName(csr.subjectDer) || "(empty)"} differs from ${derToName(cert.subjectDer) || "(empty)"}`;
  const key = (s: San) => `${s.type}:${s.value}`;
  const have = new Set(cert.sans.map(key));
  const want = new Set(csr.sans.map(key));
  const added = [...want].filter((k) => !have.has(k));
  const dropped = [...have].filter((k) => !want.has(k));
  if (added.length || dropped.length)
    return `the names differ (${[...added.map((k) => `+${k}`), ...dropped.map((k) => `-${k}`)].join(", ")})`;
  return undefined;
}
