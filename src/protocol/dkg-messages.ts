// Bodies of the DKG envelopes (docs/architecture.md §3.4, §3.5), and the HPKE binding of round-2 shares.
import { z } from "zod";
import { Round1WireSchema, PublicPackageWireSchema } from "../threshold/encoding.ts";
import { hexToBytes, bytesToHex } from "../common/hex.ts";
import { hpkeOpen, hpkeSeal, HPKE_DKG_SHARE_INFO } from "./hpke.ts";

const hex = (bytes?: number) =>
  z
    .string()
    .regex(/^(?:[0-9a-f]{2})*$/)
    .refine((s) => bytes === undefined || s.length === bytes * 2, `must be ${bytes} bytes`);

export const Round1BodySchema = z
  .object({ round1: Round1WireSchema, hpkePublicKey: hex(32), configDigest: z.string() })
  .strict();
export const Round1AckBodySchema = z.object({ transcriptHash: hex(32) }).strict();
export const SealedShareSchema = z
  .object({ enc: hex(32), ciphertext: hex().refine((s) => s.length <= 512) })
  .strict();
export const Round2BodySchema = z.object({ shares: z.record(z.string(), SealedShareSchema) }).strict();
export const ComplaintBodySchema = z
  .object({ accused: z.string(), reason: z.string().max(500), hpkePrivateKey: hex(32) })
  .strict();
export const ConfirmBodySchema = z
  .object({ publicPackageHash: hex(32), publicPackage: PublicPackageWireSchema })
  .strict();
export const AbortBodySchema = z
  .object({ reason: z.string().max(1000), culprits: z.array(z.string()).max(64) })
  .strict();

export type Round1Body = z.infer<typeof Round1BodySchema>;
export type Round2Body = z.infer<typeof Round2BodySchema>;
export type SealedShare = z.infer<typeof SealedShareSchema>;
export type ComplaintBody = z.infer<typeof ComplaintBodySchema>;
export type ConfirmBody = z.infer<typeof ConfirmBodySchema>;
export type AbortBody = z.infer<typeof AbortBodySchema>;

/** AAD of a round-2 share: ceremony, sender and recipient (docs/architecture.md §3.4). */
export const shareAad = (ceremonyId: string, sender: string, recipient: string): Uint8Array =>
  new TextEncoder().encode(`tca/dkg-share/v1\n${ceremonyId}\n${sender}\n${recipient}`);

export async function sealShare(
  recipientHpkeKey: Uint8Array,
  share: Uint8Array,
  ctx: { ceremonyId: string; sender: string; recipient: string },
): Promise<SealedShare> {
  const out = await hpkeSeal(
    recipientHpkeKey,
    share,
    shareAad(ctx.ceremonyId, ctx.sender, ctx.recipient),
    HPKE_DKG_SHARE_INFO,
  );
  return { enc: bytesToHex(out.enc), ciphertext: bytesToHex(out.ciphertext) };
}

export async function openShare(
  hpkePrivateKey: Uint8Array,
  sealed: SealedShare,
  ctx: { ceremonyId: string; sender: string; recipient: string },
): Promise<Uint8Array> {
  return hpkeOpen(
    hpkePrivateKey,
    hexToBytes(sealed.enc),
    hexToBytes(sealed.ciphertext),
    shareAad(ctx.ceremonyId, ctx.sender, ctx.recipient),
    HPKE_DKG_SHARE_INFO,
  );
}
