// Certificate serial numbers. RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets,
// unique per issuer. docs/architecture.md §3.2 and §3.8 add: at least 64 bits from a CSPRNG, and a custodian
// accepts a serial only as a positive, minimally encoded DER INTEGER of 9..20 content octets.
import { randomBytes } from "node:crypto";
import { X509Error } from "./errors.ts";
import { toHex } from "./der.ts";

export const SERIAL_MIN_OCTETS = 9;
export const SERIAL_MAX_OCTETS = 20;

/**
 * Returns the content octets of a fresh positive DER INTEGER: 16 random bytes (128 bits), with
 * a leading 0x00 when the high bit is set so the value stays positive (X.690 §8.3.2), and
 * re-drawn if the top byte is zero so the encoding is minimal and the value never zero.
 */
export function randomSerial(): Uint8Array {
  for (;;) {
    const r = new Uint8Array(randomBytes(16));
    if (r[0] === 0) continue; // would be non-minimal (or zero); draw again
    return r[0]! & 0x80 ? Uint8Array.of(0, ...r) : r;
  }
}

/** Throws SERIAL_INVALID unless `bytes` are the content octets of a serial we accept. */
export function checkSerial(bytes: Uint8Array): void {
  const fail = (why: string): never => {
    throw new X509Error(
      "SERIAL_INVALID",
      `The serial number ${toHex(bytes) || "(empty)"} ${why}.`,
      "serialNumber",
    );
  };
  if (bytes.length < SERIAL_MIN_OCTETS)
    fail(`has ${bytes.length} octets; at least ${SERIAL_MIN_OCTETS} are required (64 random bits)`);
  if (bytes.length > SERIAL_MAX_OCTETS)
    fail(`has ${bytes.length} octets; RFC 5280 allows at most ${SERIAL_MAX_OCTETS}`);
  if (bytes[0]! & 0x80) fail("is negative (its first octet has the high bit set)");
  // X.690 §8.3.2: the first nine bits must not be all zero (nor all one).
  if (bytes[0] === 0 && !(bytes[1]! & 0x80))
    fail("is not minimally encoded (a leading zero octet that is not needed)");
  if (bytes.every((b) => b === 0)) fail("is zero");
}

/** The serial as lowercase hex without the sign octet, for display and logs. */
export function serialHex(bytes: Uint8Array): string {
  return toHex(bytes[0] === 0 && bytes.length > 1 ? bytes.subarray(1) : bytes);
}

/**
 * The one way tca shows a serial (CLI, API, logs): lowercase hex, no sign octet, no colons. What
 * the database keeps is the DER content octets (with the sign octet); `storedSerial` maps back.
 */
export function displaySerial(stored: string): string {
  return stored.length > 2 && stored.startsWith("00") ? stored.slice(2) : stored;
}

/**
 * A serial as a person or tool may write it — `0x` prefix, colons (`openssl x509 -serial` prints
 * `D068…`, `openssl` text output `00:d0:68:…`), any case, with or without the sign octet — as the
 * DER content octets in lowercase hex (the stored form). Undefined when it is not a serial.
 */
export function storedSerial(input: string): string | undefined {
  const hex = input.trim().toLowerCase().replace(/^0x/, "").replace(/:/g, "");
  if (!/^[0-9a-f]{1,42}$/.test(hex)) return undefined;
  const even = hex.length % 2 ? `0${hex}` : hex;
  const stripped = even.replace(/^(00)+/, "") || "00";
  return parseInt(stripped.slice(0, 2), 16) & 0x80 ? `00${stripped}` : stripped;
}
