// Key pair and PKCS#10 CSR generation for `tca request`: WebCrypto keys (Node's own), a CSR made
// with @peculiar/x509, and the private key exported as PKCS#8 PEM. Nothing here prints a key.
import "reflect-metadata";
import { KeyObject, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import { parseCsr, type ParsedCsr } from "../x509/csr.ts";
import { toPem } from "../x509/der.ts";

export const KEY_TYPES = ["ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

interface KeySpec {
  generate: RsaHashedKeyGenParams | EcKeyGenParams | Algorithm;
  sign: Algorithm | EcdsaParams;
}

const F4 = new Uint8Array([1, 0, 1]);
const rsa = (modulusLength: number): KeySpec => ({
  generate: { name: "RSASSA-PKCS1-v1_5", modulusLength, publicExponent: F4, hash: "SHA-256" },
  sign: { name: "RSASSA-PKCS1-v1_5" },
});

const SPECS: Record<KeyType, KeySpec> = {
  "ec-p256": {
    generate: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
  },
  "ec-p384": {
    generate: { name: "ECDSA", namedCurve: "P-384" },
    sign: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams,
  },
  ed25519: { generate: { name: "Ed25519" }, sign: { name: "Ed25519" } },
  "rsa-2048": rsa(2048),
  "rsa-3072": rsa(3072),
  "rsa-4096": rsa(4096),
};

export interface San {
  type: "dns" | "ip" | "email" | "url";
  value: string;
}

/** An IP address is an IP SAN, `x@y` an email, `scheme://…` a URI, anything else a DNS name. */
export function classifySan(value: string): San {
  const v = value.trim();
  if (!v) throw new Error("a subject alternative name cannot be empty");
  if (isIP(v)) return { type: "ip", value: v };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    try {
      new URL(v);
    } catch {
      throw new Error(`"${v}" is not a valid URI`);
    }
    return { type: "url", value: v };
  }
  if (/^[^@\s]+@[^@\s]+$/.test(v)) return { type: "email", value: v };
  if (
    !/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/.test(
      v,
    )
  )
    throw new Error(`"${v}" is neither a DNS name, an IP address, an email address nor a URI`);
  return { type: "dns", value: v.toLowerCase() };
}

/** The name first, then each extra name, without repeats. */
export function sansFor(name: string, extra: readonly string[]): San[] {
  const out: San[] = [];
  for (const s of [name, ...extra].map(classifySan))
    if (!out.some((o) => o.type === s.type && o.value === s.value)) out.push(s);
  return out;
}

export interface GeneratedRequest {
  /** PKCS#8 PEM; the caller writes it with mode 0600 and never prints it. */
  privateKeyPem: string;
  csrPem: string;
  /** DER SubjectPublicKeyInfo, to check the issued certificate against. */
  spki: Uint8Array;
  sans: San[];
}

/** A fresh key pair and a CSR with subject CN=<name> and the SANs (the name plus `extraSans`). */
export async function generateKeyAndCsr(
  name: string,
  extraSans: readonly string[],
  keyType: KeyType,
): Promise<GeneratedRequest> {
  const spec = SPECS[keyType];
  const crypto = webcrypto as unknown as Crypto;
  const sans = sansFor(name, extraSans);
  const keys = (await crypto.subtle.generateKey(spec.generate, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: new x509.Name([{ CN: [name] }]),
      keys,
      signingAlgorithm: spec.sign,
      extensions: [new x509.SubjectAlternativeNameExtension(sans)],
    },
    crypto,
  );
  const privateKeyPem = KeyObject.from(keys.privateKey as unknown as webcrypto.CryptoKey)
    .export({ type: "pkcs8", format: "pem" })
    .toString();
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  return { privateKeyPem, csrPem: csr.toString("pem"), spki, sans };
}

/** A CSR file that is not a CSR we can submit: the message says what is wrong with it. */
export class CsrError extends Error {}

export interface ReadCsr {
  csrPem: string;
  /** DER SubjectPublicKeyInfo, to check the issued certificate against. */
  spki: Uint8Array;
  /** The subject's common name, if it has one. */
  commonName: string | undefined;
  /** Its subject alternative names, in CSR order. */
  sans: { type: string; value: string }[];
}

/**
 * Reads a CSR given as PEM or DER with the parser the coordinator uses (src/x509/csr.ts, which also
 * checks its signature): returns it as PEM, its public key and the names it asks for. Throws
 * CsrError with that parser's own account of what is wrong.
 */
export function readCsr(data: Uint8Array): ReadCsr {
  let csr: ParsedCsr;
  try {
    csr = parseCsr(data);
  } catch (e) {
    throw new CsrError((e as Error).message);
  }
  const text = Buffer.from(data).toString("latin1");
  const cn = /(?:^|,\s*)CN=((?:[^,\\]|\\.)*)/.exec(csr.subjectString)?.[1];
  return {
    csrPem: text.includes("-----BEGIN") ? text : toPem(csr.der, "CERTIFICATE REQUEST"),
    spki: csr.spkiDer,
    commonName: cn,
    sans: csr.sans.map((s) => ({ type: s.type, value: String(s.value) })),
  };
}

/** The certificates of a PEM chain, in order. */
export function splitPemChain(pem: string): string[] {
  return (
    pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((c) => `${c}\n`) ?? []
  );
}

export function certificateSpki(certPem: string): Uint8Array {
  return new Uint8Array(new x509.X509Certificate(certPem).publicKey.rawData);
}
