// Verifies a PKCS#10 self-signature (RFC 2986 §4.2) with node:crypto over the ORIGINAL bytes of
// certificationRequestInfo. (@peculiar/x509's Pkcs10CertificateRequest.verify throws on Ed448.)
// Supported: RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-256/384/512 (RFC 4055), ECDSA with
// SHA-256/384/512 (RFC 5758 §3.2), Ed25519 and Ed448 (RFC 8410 §6).
import { constants, verify, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { RsaSaPssParams } from "@peculiar/asn1-rsa";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { X509Error } from "./errors.ts";
import { toArrayBuffer } from "./der.ts";
import { children, decodeOid, readDer } from "./der-read.ts";
import { OID } from "./oids.ts";

const HASH_BY_OID: Record<string, string> = {
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};
const RSA_PKCS1: Record<string, string> = {
  [OID.sha256WithRSA]: "sha256",
  [OID.sha384WithRSA]: "sha384",
  [OID.sha512WithRSA]: "sha512",
};
const ECDSA: Record<string, string> = {
  [OID.ecdsaWithSHA256]: "sha256",
  [OID.ecdsaWithSHA384]: "sha384",
  [OID.ecdsaWithSHA512]: "sha512",
};
const MGF1 = "1.2.840.113549.1.1.8";

function unsupported(what: string): never {
  throw new X509Error(
    "CSR_UNSUPPORTED_ALGORITHM",
    `The CSR is signed with ${what}, which tca does not accept; use RSA or ECDSA with SHA-256/384/512, Ed25519 or Ed448.`,
    "signatureAlgorithm",
  );
}

/** Throws CSR_BAD_SIGNATURE / CSR_UNSUPPORTED_ALGORITHM unless `sig` over `data` verifies. */
export function verifyCsrSignature(
  data: Uint8Array,
  algDer: Uint8Array,
  sig: Uint8Array,
  key: KeyObject,
): void {
  const parts = children(readDer(algDer));
  const alg = decodeOid(parts[0]!);
  const params = parts[1];
  const kt = key.asymmetricKeyType;
  const keyMismatch = () => {
    throw new X509Error(
      "CSR_BAD_SIGNATURE",
      `The CSR's signature algorithm ${alg} does not fit its ${kt} key.`,
      "signatureAlgorithm",
    );
  };
  let ok: boolean;
  if (alg === OID.ed25519 || alg === OID.ed448) {
    if (params) unsupported(`${alg} with parameters (RFC 8410 §3 forbids them)`);
    if (kt !== (alg === OID.ed25519 ? "ed25519" : "ed448")) keyMismatch();
    ok = verify(null, data, key, sig);
  } else if (alg in RSA_PKCS1) {
    if (params && !(params.tag === 0x05 && params.value.length === 0))
      unsupported(`${alg} with parameters other than NULL`);
    if (kt !== "rsa") keyMismatch();
    ok = verify(RSA_PKCS1[alg]!, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
  } else if (alg === OID.rsaPss) {
    if (kt !== "rsa" && kt !== "rsa-pss") keyMismatch();
    if (!params) unsupported("RSASSA-PSS without parameters (SHA-1)");
    const p = AsnConvert.parse(toArrayBuffer(params.raw), RsaSaPssParams);
    const hash =
      HASH_BY_OID[p.hashAlgorithm.algorithm] ??
      unsupported(`RSASSA-PSS with hash ${p.hashAlgorithm.algorithm}`);
    if (p.maskGenAlgorithm.algorithm !== MGF1 || !p.maskGenAlgorithm.parameters)
      unsupported(`RSASSA-PSS with mask generation ${p.maskGenAlgorithm.algorithm}`);
    // node:crypto uses the signature hash for MGF1 as well (RFC 4055 §3.1 recommends the same).
    const mgfHash = AsnConvert.parse(p.maskGenAlgorithm.parameters, AlgorithmIdentifier).algorithm;
    if (mgfHash !== p.hashAlgorithm.algorithm)
      unsupported(
        `RSASSA-PSS with MGF1 hash ${mgfHash} differing from the hash ${p.hashAlgorithm.algorithm}`,
      );
    if (p.trailerField !== 1) unsupported("RSASSA-PSS with a trailer field other than 1");
    ok = verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength }, sig);
  } else if (alg in ECDSA) {
    if (params) unsupported(`${alg} with parameters (RFC 5758 §3.2 forbids them)`);
    if (kt !== "ec") keyMismatch();
    ok = verify(ECDSA[alg]!, data, { key, dsaEncoding: "der" }, sig);
  } else {
    unsupported(`algorithm ${alg}`);
  }
  if (!ok)
    throw new X509Error(
      "CSR_BAD_SIGNATURE",
      "The CSR's signature does not verify with its own public key; it was altered or signed with another key.",
      "signature",
    );
}
