// Wire forms of FROST packages: hex strings for bytes, so they embed in JSON envelopes and hash
// stably. Decoders check shapes; the library checks the group arithmetic.
import { z } from "zod";
import type { DKG_Round1, FrostPublic, NonceCommitments } from "./suite.ts";
import { bytesToHex, hexToBytes } from "../common/hex.ts";
import { canonicalJson } from "../common/canonical-json.ts";

const hex = (len?: number) =>
  z
    .string()
    .regex(/^(?:[0-9a-f]{2})+$/, "lowercase hex")
    .refine((s) => len === undefined || s.length === len * 2, `must be ${len} bytes`);

/** Re-exported for existing importers; the helpers live in the bottom layer. */
export { bytesToHex, hexToBytes };

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
const PUBLIC_CACHE_MAX = 32;
const publicCache = new Map<string, FrostPublic>();

/**
 * Decodes a public key package. Memoized (bounded): the coordinator and every custodian decode the
 * same package for each signature, so they get one shared, frozen object, and the native backend
 * (native.ts) validates its points once. Callers must not modify the returned bytes.
 */
export function publicFromWire(w: PublicPackageWire): FrostPublic {
  const key = canonicalJson(w);
  const hit = publicCache.get(key);
  if (hit) return hit;
  const pub: FrostPublic = Object.freeze({
    signers: Object.freeze({ min: w.min, max: w.max }),
    commitments: Object.freeze(w.commitments.map(hexToBytes)) as Uint8Array<ArrayBuffer>[],
    verifyingShares: Object.freeze(
      Object.fromEntries(Object.entries(w.verifyingShares).map(([k, v]) => [k, hexToBytes(v)])),
    ),
  });
  if (publicCache.size >= PUBLIC_CACHE_MAX) publicCache.delete(publicCache.keys().next().value!);
  publicCache.set(key, pub);
  return pub;
}

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
