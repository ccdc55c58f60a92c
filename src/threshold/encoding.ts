// Wire forms of FROST packages: hex strings for bytes, so they embed in JSON envelopes and hash
// stably. Decoders check shapes; the library checks the group arithmetic.
import { z } from "zod";
import type { DKG_Round1, FrostPublic, NonceCommitments } from "./suite.ts";

const hex = (len?: number) =>
  z
    .string()
    .regex(/^(?:[0-9a-f]{2})+$/, "lowercase hex")
    .refine((s) => len === undefined || s.length === len * 2, `must be ${len} bytes`);

/** Strict: Buffer.from(s, "hex") silently drops an odd final digit, which would let two strings name one value. */
export function hexToBytes(s: string): Uint8Array<ArrayBuffer> {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s))
    throw new TypeError(`not an even-length hex string: ${s.slice(0, 20)}`);
  return new Uint8Array(Buffer.from(s, "hex"));
}
export const bytesToHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export const Round1WireSchema = z
  .object({ identifier: hex(32), commitment: z.array(hex(32)).min(1).max(64), proofOfKnowledge: hex(64) })
  .strict();
export type Round1Wire = z.infer<typeof Round1WireSchema>;

export const round1ToWire = (p: DKG_Round1): Round1Wire => ({
  identifier: p.identifier,
  commitment: p.commitment.map(bytesToHex),
  proofOfKnowledge: bytesToHex(p.proofOfKnowledge),
});
export const round1FromWire = (w: Round1Wire): DKG_Round1 => ({
  identifier: w.identifier,
  commitment: w.commitment.map(hexToBytes),
  proofOfKnowledge: hexToBytes(w.proofOfKnowledge),
});

export const PublicPackageWireSchema = z
  .object({
    min: z.number().int().min(1),
    max: z.number().int().min(1),
    commitments: z.array(hex(32)).min(1),
    verifyingShares: z.record(hex(32), hex(32)),
  })
  .strict();
export type PublicPackageWire = z.infer<typeof PublicPackageWireSchema>;

export const publicToWire = (p: FrostPublic): PublicPackageWire => ({
  min: p.signers.min,
  max: p.signers.max,
  commitments: p.commitments.map(bytesToHex),
  verifyingShares: Object.fromEntries(
    Object.entries(p.verifyingShares)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, bytesToHex(v)]),
  ),
});
export const publicFromWire = (w: PublicPackageWire): FrostPublic => ({
  signers: { min: w.min, max: w.max },
  commitments: w.commitments.map(hexToBytes),
  verifyingShares: Object.fromEntries(Object.entries(w.verifyingShares).map(([k, v]) => [k, hexToBytes(v)])),
});

export const CommitmentWireSchema = z
  .object({ identifier: hex(32), hiding: hex(32), binding: hex(32) })
  .strict();
export type CommitmentWire = z.infer<typeof CommitmentWireSchema>;
export const commitmentToWire = (c: NonceCommitments): CommitmentWire => ({
  identifier: c.identifier,
  hiding: bytesToHex(c.hiding),
  binding: bytesToHex(c.binding),
});
export const commitmentFromWire = (w: CommitmentWire): NonceCommitments => ({
  identifier: w.identifier,
  hiding: hexToBytes(w.hiding),
  binding: hexToBytes(w.binding),
});
/** Key under which a commitment's nonces are held: both points, so it is unique per commit(). */
export const commitmentKey = (c: CommitmentWire): string => `${c.identifier}:${c.hiding}:${c.binding}`;
