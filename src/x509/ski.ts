// Key identifiers. RFC 5280 §4.2.1.2 leaves the method open; we use RFC 7093 §2 method 1:
// the leftmost 160 bits of the SHA-256 hash of the value of the BIT STRING subjectPublicKey
// (excluding tag, length and the unused-bits octet).
import { createHash } from "node:crypto";
import { X509Error } from "./errors.ts";
import { TAG, u8 } from "./der.ts";
import { children, expectTag, readDer, withDerErrors } from "./der-read.ts";

/** The subjectPublicKey bits (without the unused-bits octet) of a DER SubjectPublicKeyInfo. */
export function spkiPublicKeyBits(spkiDer: Uint8Array): Uint8Array {
  return withDerErrors("KEY_INVALID", "The SubjectPublicKeyInfo", () => {
    const parts = children(expectTag(readDer(spkiDer), TAG.SEQUENCE, "SubjectPublicKeyInfo"));
    const bits = expectTag(parts[1], TAG.BIT_STRING, "subjectPublicKey");
    if (parts.length !== 2 || bits.value[0] !== 0) {
      throw new X509Error(
        "KEY_INVALID",
        "The SubjectPublicKeyInfo is not SEQUENCE { algorithm, BIT STRING with whole octets }.",
      );
    }
    return bits.value.subarray(1);
  });
}

/** RFC 7093 §2 method 1 key identifier (20 bytes) of a DER SubjectPublicKeyInfo. */
export function keyIdentifier(spkiDer: Uint8Array): Uint8Array {
  return u8(createHash("sha256").update(spkiPublicKeyBits(spkiDer)).digest().subarray(0, 20));
}

/** SHA-256 over the whole SPKI DER, hex: the key fingerprint shown to people. */
export function spkiFingerprint(spkiDer: Uint8Array): string {
  return createHash("sha256").update(spkiDer).digest("hex");
}
