// The one place FROST is set up. Everything else imports `suite` from here, so a faster group
// backend (createFROST with another Point implementation) or Ed448 is a change to this file only.
import { ed25519, ed25519_FROST } from "@noble/curves/ed25519.js";

/** FROST(Ed25519, SHA-512), RFC 9591 §6.1. Its signatures are plain RFC 8032 Ed25519 signatures. */
export const suite = ed25519_FROST;
export const SUITE_NAME = "FROST-ED25519-SHA512-v1";

/** RFC 9591 identifiers are non-zero scalars; tca derives them from roster names (DESIGN §3.3). */
export function identifierForName(custodianName: string): string {
  return suite.Identifier.derive(`tca/custodian/${custodianName}`);
}

/** A canonical encoding of a group element other than the identity (RFC 9591 §3.1 DeserializeElement). */
export function isGroupElement(bytes: Uint8Array): boolean {
  try {
    return !ed25519.Point.fromBytes(bytes).is0();
  } catch {
    return false;
  }
}

/** A canonical scalar encoding (RFC 9591 §3.1 DeserializeScalar): below the group order. */
export function isScalar(bytes: Uint8Array): boolean {
  try {
    suite.utils.Fn.fromBytes(bytes);
    return bytes.length === suite.utils.Fn.BYTES;
  } catch {
    return false;
  }
}

export type {
  DKG_Round1,
  DKG_Round2,
  FrostPublic,
  FrostSecret,
  NonceCommitments,
} from "@noble/curves/abstract/frost.js";
