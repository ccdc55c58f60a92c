// A custodian's long-term identity: an Ed25519 key that signs every message it sends (docs/architecture.md
// §3.3) and an X25519 key for HPKE. The public halves go into the ca-config roster.
import { createHash, randomBytes } from "node:crypto";
import { x25519 } from "@noble/curves/ed25519.js";
import { ed25519PublicKey } from "../common/ed25519.ts";

export interface PublicIdentity {
  name: string;
  signingKey: string; // base64url, 32 bytes
  hpkeKey: string; // base64url, 32 bytes
}

export interface IdentitySecrets {
  name: string;
  signingSecret: string; // base64url, 32 bytes
  hpkeSecret: string; // base64url, 32 bytes
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");

export function generateIdentity(name: string): IdentitySecrets {
  return { name, signingSecret: b64(randomBytes(32)), hpkeSecret: b64(x25519.utils.randomSecretKey()) };
}

export function publicIdentity(secrets: IdentitySecrets): PublicIdentity {
  return {
    name: secrets.name,
    signingKey: b64(ed25519PublicKey(Buffer.from(secrets.signingSecret, "base64url"))),
    hpkeKey: b64(x25519.getPublicKey(Buffer.from(secrets.hpkeSecret, "base64url"))),
  };
}

/** What a person compares out of band: SHA-256 over both public keys, in groups of four hex digits. */
export function identityFingerprint(id: Pick<PublicIdentity, "signingKey" | "hpkeKey">): string {
  const h = createHash("sha256")
    .update("tca/identity/v1\n")
    .update(Buffer.from(id.signingKey, "base64url"))
    .update(Buffer.from(id.hpkeKey, "base64url"))
    .digest("hex");
  return h.slice(0, 32).match(/.{4}/g)!.join(":");
}
