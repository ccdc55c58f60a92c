/**
 * RFC 9180 HPKE, base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, via
 * @hpke/core. Keys travel as raw 32-byte X25519 values. Used for confidential DKG round-2
 * shares (docs/architecture.md §3.4) with info "tca/dkg-share/v1" and an AAD binding ceremony, sender and
 * recipient.
 */
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { x25519 } from "@noble/curves/ed25519.js";

export const HPKE_DKG_SHARE_INFO = new TextEncoder().encode("tca/dkg-share/v1");
export const HPKE_KEY_LENGTH = 32;

export type HpkeErrorCode = "HPKE_OPEN_FAILED" | "HPKE_SEAL_FAILED" | "HPKE_INVALID_KEY";

export class HpkeError extends Error {
  override readonly name = "HpkeError";
  constructor(
    readonly code: HpkeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HpkeKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export interface HpkeSealed {
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

const kem = new DhkemX25519HkdfSha256();
const suite = new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes128Gcm() });

function requireKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== HPKE_KEY_LENGTH) {
    throw new HpkeError("HPKE_INVALID_KEY", `The HPKE ${what} must be ${HPKE_KEY_LENGTH} raw bytes.`);
  }
}

export async function generateHpkeKeyPair(): Promise<HpkeKeyPair> {
  const kp = await kem.generateKeyPair();
  const privateKey = new Uint8Array(await kem.serializePrivateKey(kp.privateKey)).slice();
  const publicKey = new Uint8Array(await kem.serializePublicKey(kp.publicKey)).slice();
  return { publicKey, privateKey };
}

/** The X25519 public key of a raw 32-byte HPKE private key. */
export function hpkePublicFromPrivate(privateKey: Uint8Array): Uint8Array {
  requireKey(privateKey, "private key");
  return x25519.getPublicKey(privateKey);
}

export async function hpkeSeal(
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  info: Uint8Array,
): Promise<HpkeSealed> {
  requireKey(recipientPublicKey, "recipient public key");
  try {
    const pk = await kem.deserializePublicKey(recipientPublicKey);
    const out = await suite.seal({ recipientPublicKey: pk, info }, plaintext, aad);
    return { enc: new Uint8Array(out.enc).slice(), ciphertext: new Uint8Array(out.ct).slice() };
  } catch (e) {
    throw new HpkeError("HPKE_SEAL_FAILED", "HPKE encryption failed (is the recipient public key valid?).", {
      cause: e,
    });
  }
}

export async function hpkeOpen(
  privateKey: Uint8Array,
  enc: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
  info: Uint8Array,
): Promise<Uint8Array> {
  try {
    requireKey(privateKey, "private key");
    requireKey(enc, "encapsulated key");
    const sk = await kem.deserializePrivateKey(privateKey);
    const pt = await suite.open({ recipientKey: sk, enc, info }, ciphertext, aad);
    return new Uint8Array(pt).slice();
  } catch (e) {
    throw new HpkeError(
      "HPKE_OPEN_FAILED",
      "HPKE decryption failed: wrong key, or the ciphertext, enc, AAD or info do not match.",
      { cause: e },
    );
  }
}
