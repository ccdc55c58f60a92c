// Strict DER reader: returns each element's tag and its exact byte span, so callers can copy or
// compare original bytes (a CSR's certificationRequestInfo, a TBS's issuer). Refuses indefinite
// lengths, non-minimal length octets, multi-byte tags and trailing bytes (X.690 §10.1).
import { X509Error, type X509ErrorCode } from "./errors.ts";
import { TAG } from "./der.ts";

export interface Tlv {
  tag: number;
  /** The whole element: tag, length and content. */
  raw: Uint8Array;
  /** The content octets only. */
  value: Uint8Array;
}

export class DerReadError extends Error {}

function readOne(buf: Uint8Array, at: number): Tlv {
  if (at + 2 > buf.length) throw new DerReadError("truncated element");
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw new DerReadError("multi-byte tags are not used here");
  let len = buf[at + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerReadError("indefinite length is not DER");
    if (n > 4) throw new DerReadError("length too large");
    if (at + 2 + n > buf.length) throw new DerReadError("truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i]!;
    if (buf[at + 2] === 0 || len < 0x80) throw new DerReadError("non-minimal length");
    hdr += n;
  }
  const end = at + hdr + len;
  if (end > buf.length) throw new DerReadError("element runs past the end of its container");
  return { tag, raw: buf.subarray(at, end), value: buf.subarray(at + hdr, end) };
}

/** Reads a buffer that must be exactly one element. */
export function readDer(buf: Uint8Array): Tlv {
  const t = readOne(buf, 0);
  if (t.raw.length !== buf.length)
    throw new DerReadError(`${buf.length - t.raw.length} trailing bytes after the element`);
  return t;
}

/** The elements inside a constructed element, in order. */
export function children(t: Tlv): Tlv[] {
  if (!(t.tag & 0x20)) throw new DerReadError("not a constructed element");
  const out: Tlv[] = [];
  for (let at = 0; at < t.value.length;) {
    const c = readOne(t.value, at);
    out.push(c);
    at += c.raw.length;
  }
  return out;
}

/** Asserts a tag; `what` names the field for the error. */
export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) throw new DerReadError(`${what} is missing`);
  if (t.tag !== tag)
    throw new DerReadError(`${what} has tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t;
}

/** Decodes an OBJECT IDENTIFIER's content octets to dotted text. */
export function decodeOid(t: Tlv): string {
  expectTag(t, TAG.OID, "OBJECT IDENTIFIER");
  const c = t.value;
  // Arcs below 2^45 add up exactly in a double; larger ones take the BigInt path below.
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    if (v >= 2 ** 45) return decodeOidBig(c);
    const b = c[i]!;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  if (arcs.length === 0) throw new DerReadError("empty OBJECT IDENTIFIER");
  const first = arcs[0]!;
  const head = first < 80 ? `${Math.floor(first / 40)}.${first % 40}` : `2.${first - 80}`;
  return arcs.length === 1 ? head : `${head}.${arcs.slice(1).join(".")}`;
}

function decodeOidBig(c: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of c) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift();
  if (first === undefined) throw new DerReadError("empty OBJECT IDENTIFIER");
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs].join(".");
}

/**
 * Dotted text of OBJECT IDENTIFIER content octets that are in the plain form every decoder reads
 * alike (non-empty, each arc minimal and below 2^28, none cut short); undefined otherwise.
 */
export function simpleOid(c: Uint8Array): string | undefined {
  if (c.length === 0 || c[c.length - 1]! & 0x80) return undefined;
  let out = "";
  let v = 0;
  let len = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (len === 0 && b === 0x80) return undefined; // non-minimal arc
    if (++len > 4) return undefined;
    v = v * 128 + (b & 0x7f);
    if (b & 0x80) continue;
    if (out === "") out = v < 40 ? `0.${v}` : v < 80 ? `1.${v - 40}` : `2.${v - 80}`;
    else out += `.${v}`;
    v = 0;
    len = 0;
  }
  return out;
}

/** Runs `fn`, turning any DER decoding failure into an X509Error with `code`. */
export function withDerErrors<T>(code: X509ErrorCode, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof X509Error) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new X509Error(code, `${what} is not valid DER: ${why}.`, undefined, { cause: e });
  }
}
