// The one place FROST is set up. Everything else imports `suite` from here, so the group backend
// (or, later, Ed448) is a change to this file only.
//
// FROST(Ed25519, SHA-512) is RFC 9591 §6.1; both backends build it with noble's createFROST and
// the same ciphersuite parameters as noble's own ed25519_FROST, minus its extra `validatePoint`
// hook, which repeated the subgroup check createFROST already performs (RFC 9591 §3.1
// DeserializeElement) and doubled the cost of every point parse.
//  - "noble": pure JS (noble's Point class).
//  - "native": libsodium through sodium-native for scalar multiplication and point validation,
//    and a direct path for sign / verify-share / aggregate (see native.ts).
// The native backend is used when sodium-native loads; TCA_FROST_BACKEND=noble|native forces one.
import { ed25519 } from "@noble/curves/ed25519.js";
import { createFROST } from "@noble/curves/abstract/frost.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { loadSodium, makeNativePoint, nativeSigningOps } from "./native.ts";

export type FrostSuite = ReturnType<typeof createFROST>;
export const FROST_BACKENDS = ["noble", "native"] as const;
export type FrostBackend = (typeof FROST_BACKENDS)[number];

export const SUITE_NAME = "FROST-ED25519-SHA512-v1";
/** RFC 9591 §6.1: H2 is undecorated (plain SHA-512), so the result is an RFC 8032 signature. */
const CIPHERSUITE = { name: SUITE_NAME, hash: sha512, H2: "" } as const;

const suites = new Map<FrostBackend, FrostSuite>();
let nativeError: string | undefined;

function build(backend: FrostBackend): FrostSuite {
  if (backend === "noble") return createFROST({ ...CIPHERSUITE, Point: ed25519.Point });
  const loaded = loadSodium();
  if ("error" in loaded) {
    nativeError = loaded.error;
    throw new Error(`the native FROST backend is unavailable: ${loaded.error}`);
  }
  const generic = createFROST({ ...CIPHERSUITE, Point: makeNativePoint(loaded.sodium) });
  return Object.freeze({ ...generic, ...nativeSigningOps(loaded.sodium) });
}

/** The FROST suite of one backend, built on first use (throws if "native" cannot load). */
export function frostSuite(backend: FrostBackend): FrostSuite {
  let s = suites.get(backend);
  if (!s) {
    s = build(backend);
    suites.set(backend, s);
  }
  return s;
}

/** Whether sodium-native loads on this machine. */
export function nativeAvailable(): boolean {
  try {
    frostSuite("native");
    return true;
  } catch {
    return false;
  }
}

/**
 * Which backend to use for a TCA_FROST_BACKEND value: unset or empty picks native when it can load
 * and noble otherwise; "noble" or "native" forces one; anything else is a configuration error.
 */
export function selectBackend(requested: string | undefined, canLoadNative: () => boolean): FrostBackend {
  if (requested === undefined || requested === "") return canLoadNative() ? "native" : "noble";
  if (requested === "noble") return "noble";
  if (requested === "native") {
    if (!canLoadNative())
      throw new Error(
        `TCA_FROST_BACKEND=native, but sodium-native cannot be used: ${nativeError ?? "unknown"}`,
      );
    return "native";
  }
  throw new Error(
    `TCA_FROST_BACKEND must be "noble" or "native" (or unset), not ${JSON.stringify(requested)}`,
  );
}

/** The backend this process signs with. */
export const suiteBackend: FrostBackend = selectBackend(process.env.TCA_FROST_BACKEND, nativeAvailable);

/** FROST(Ed25519, SHA-512), RFC 9591 §6.1. Its signatures are plain RFC 8032 Ed25519 signatures. */
export const suite: FrostSuite = frostSuite(suiteBackend);

/** RFC 9591 identifiers are non-zero scalars, derived from roster names (docs/architecture.md §3.3). */
export function identifierForName(custodianName: string): string {
  return suite.Identifier.derive(`tca/custodian/${custodianName}`);
}

/** A canonical encoding of a group element other than the identity (RFC 9591 §3.1 DeserializeElement). */
export function isGroupElement(bytes: Uint8Array): boolean {
  if (bytes.length !== 32) return false;
  // RFC 9591 §6.1: canonical, not the identity, in the prime-order subgroup. libsodium's check does
  // all three in ≈ 40 µs; noble's path is the fallback.
  if (validPoint) return validPoint(bytes);
  try {
    const p = ed25519.Point.fromBytes(bytes);
    return !p.is0() && p.isTorsionFree();
  } catch {
    return false;
  }
}
const validPoint: ((b: Uint8Array) => boolean) | undefined = (() => {
  if (suiteBackend !== "native") return undefined;
  const loaded = loadSodium();
  if ("error" in loaded) return undefined;
  return (b: Uint8Array) => loaded.sodium.crypto_core_ed25519_is_valid_point(b);
})();

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
  Nonces,
} from "@noble/curves/abstract/frost.js";
