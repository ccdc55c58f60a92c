// Minimal DER tools. The builders write DER by hand (X.690 §10: definite, minimal lengths) so
// that bytes taken from elsewhere (a CSR's subject and SPKI, the CA's subject) are copied into
// the TBSCertificate unchanged, which re-encoding through an object model cannot promise
// (docs/architecture.md §3.2: issuer = the CA subject's exact bytes). The reader is strict: definite lengths
// only, minimal length octets, no trailing bytes, so every byte of an input is accounted for.
import { X509Error, type X509ErrorCode } from "./errors.ts";

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---- bytes and text ------------------------------------------------------------------------

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new TypeError("not an even-length hex string");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A plain Uint8Array copy (never a Buffer view into a shared pool). */
export function u8(data: ArrayBuffer | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? new Uint8Array(data) : new Uint8Array(data.slice(0));
}

/** An ArrayBuffer holding exactly these bytes (for the asn1 libraries). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // Copy through the Uint8Array constructor: Buffer#slice is a view into a shared pool.
  return new Uint8Array(bytes).buffer;
}

// ---- PEM (RFC 7468) ------------------------------------------------------------------------

/** Wraps DER in a PEM block with 64-character lines (RFC 7468 §2). */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * Reads the single PEM block of one of `labels`; text around the block is ignored (RFC 7468 §2
 * explanatory text), but a second block or a mismatched END label is refused.
 */
export function fromPem(
  pem: string,
  labels: readonly string[],
  code: X509ErrorCode = "CSR_MALFORMED",
): Uint8Array {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
  const blocks = [...pem.matchAll(re)];
  if (blocks.length !== 1) {
    throw new X509Error(
      code,
      blocks.length === 0
        ? "The input is neither DER nor a PEM block."
        : "The input holds more than one PEM block; send exactly one.",
    );
  }
  const [, begin, body, end] = blocks[0]!;
  if (begin !== end || !labels.includes(begin!)) {
    throw new X509Error(
      code,
      `Expected a PEM block labelled ${labels.map((l) => `"${l}"`).join(" or ")}, got "${begin}".`,
    );
  }
  const b64 = body!.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0 || b64.length === 0) {
    throw new X509Error(code, `The PEM block "${begin}" does not contain valid base64.`);
  }
  return new Uint8Array(Buffer.from(b64, "base64"));
}

// ---- writer --------------------------------------------------------------------------------

function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One TLV with a single-byte tag. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of content) n += c.length;
  const len = encodeLength(n);
  const out = new Uint8Array(1 + len.length + n);
  out[0] = tag;
  out.set(len, 1);
  let o = 1 + len.length;
  for (const c of content) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export const seq = (...items: Uint8Array[]): Uint8Array => tlv(TAG.SEQUENCE, ...items);
/** Context-specific tag [n]; `constructed` for EXPLICIT tags and constructed IMPLICIT ones. */
export const ctx = (n: number, constructed: boolean, ...content: Uint8Array[]): Uint8Array =>
  tlv(0x80 | (constructed ? 0x20 : 0) | n, ...content);
export const octetString = (b: Uint8Array): Uint8Array => tlv(TAG.OCTET_STRING, b);
export const bitString = (b: Uint8Array, unusedBits = 0): Uint8Array =>
  tlv(TAG.BIT_STRING, Uint8Array.of(unusedBits), b);
export const boolean = (v: boolean): Uint8Array => tlv(TAG.BOOLEAN, Uint8Array.of(v ? 0xff : 0x00)); // X.690 §11.1
export const ia5 = (s: string): Uint8Array => tlv(TAG.IA5_STRING, new Uint8Array(Buffer.from(s, "ascii")));

/** INTEGER from already-minimal two's-complement content octets (serial numbers). */
export const integerContent = (content: Uint8Array): Uint8Array => tlv(TAG.INTEGER, content);

/** INTEGER from a small non-negative number. */
export function smallInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a small non-negative integer: ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(TAG.INTEGER, Uint8Array.from(bytes));
}

const oidCache = new Map<string, Uint8Array>();

/** OBJECT IDENTIFIER from dotted text (X.690 §8.19). Encodings are remembered (a fresh copy each call). */
export function oid(dotted: string): Uint8Array {
  let der = oidCache.get(dotted);
  if (!der) {
    der = encodeOid(dotted);
    if (oidCache.size < 1024) oidCache.set(dotted, der);
  }
  return der.slice();
}

function encodeOid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map((a) => {
    if (!/^\d+$/.test(a)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const first = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  for (const arc of first) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...chunk);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}
