// Hex encoding shared by every layer (wire forms of FROST packages, hashes in logs and approvals).

/** Strict: Buffer.from(s, "hex") silently drops an odd final digit, which would let two strings name one value. */
export function hexToBytes(s: string): Uint8Array<ArrayBuffer> {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s))
    throw new TypeError(`not an even-length hex string: ${s.slice(0, 20)}`);
  return new Uint8Array(Buffer.from(s, "hex"));
}

/** Lowercase hex. */
export const bytesToHex = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
