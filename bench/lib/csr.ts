// Pre-generated CSRs for the load phases (RFC 2986 PKCS#10): one fresh P-256 key per CSR from
// node:crypto, subject CN and a matching DNS SAN (RFC 5280 §4.2.1.6) `svc-<i>.<label>.internal`,
// ECDSA with SHA-256. Written with the DER helpers of src/x509/der.ts, which is ~30x faster than
// an ASN.1 object model (about 0.15 ms a CSR instead of 4 ms), so thousands are ready in a second.
import { generateKeyPairSync, sign } from "node:crypto";
import { ctx, oid, seq, smallInteger, tlv, TAG, toPem, bitString, octetString } from "../../src/x509/der.ts";

const OID_CN = "2.5.4.3";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"; // RFC 2985 §5.4.2
const OID_SAN = "2.5.29.17";
const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"; // RFC 5758 §3.2: parameters absent

const utf8 = (s: string) => tlv(TAG.UTF8_STRING, new Uint8Array(Buffer.from(s, "utf8")));

/** One CSR for `name` (PEM), signed by a fresh P-256 key. */
export function makeCsr(name: string): string {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = new Uint8Array(publicKey.export({ format: "der", type: "spki" }));
  const subject = seq(tlv(TAG.SET, seq(oid(OID_CN), utf8(name))));
  const dnsName = ctx(2, false, new Uint8Array(Buffer.from(name, "ascii")));
  const extensions = seq(seq(oid(OID_SAN), octetString(seq(dnsName))));
  const attributes = ctx(0, true, seq(oid(OID_EXTENSION_REQUEST), tlv(TAG.SET, extensions)));
  const info = seq(smallInteger(0), subject, spki, attributes);
  const signature = new Uint8Array(sign("sha256", info, privateKey));
  return toPem(seq(info, seq(oid(OID_ECDSA_SHA256)), bitString(signature)), "CERTIFICATE REQUEST");
}

/** `count` CSRs for `svc-<i>.<label>.internal`, i from `from`. */
export function generateCsrs(from: number, count: number, label = "bench"): string[] {
  return Array.from({ length: count }, (_, k) => makeCsr(`svc-${from + k}.${label}.internal`));
}
