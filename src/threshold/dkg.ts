// Distributed key generation on noble's DKG rounds (the split-round API of frost-rs, keys/dkg.rs).
// noble checks proofs of knowledge and each received share, but authenticates nobody, checks only
// the local view and throws a bare error naming no sender. The functions here add what docs/architecture.md
// §3.5 asks for: a per-sender share check that names the culprit, and transcript hashes that every
// custodian signs so that nobody proceeds on a view the others do not share.
import { createHash } from "node:crypto";
import { inspect } from "node:util";
import {
  suite,
  type DKG_Round1,
  type DKG_Round2,
  type FrostPublic,
  type FrostSecret,
  type FrostSuite,
} from "./suite.ts";
import { ThresholdError } from "./errors.ts";
import { bytesToHex, publicToWire, round1ToWire } from "./encoding.ts";
import { canonicalJson } from "../common/canonical-json.ts";

type NobleDkgSecret = ReturnType<typeof suite.DKG.round1>["secret"];

/**
 * The local secret state of one DKG participant between rounds. Memory only (docs/architecture.md §3.5):
 * never serialised, logged or sent; a crash aborts the ceremony.
 */
export class DkgSecretState {
  #secret: NobleDkgSecret | undefined;
  constructor(secret: NobleDkgSecret) {
    this.#secret = secret;
  }
  /** @internal */ use(): NobleDkgSecret {
    if (!this.#secret) throw new ThresholdError("DKG_BAD_PACKAGE", "DKG state already finished or wiped");
    return this.#secret;
  }
  wipe(): void {
    if (this.#secret) suite.DKG.clean(this.#secret);
    this.#secret = undefined;
  }
  toJSON(): string {
    return "<redacted>";
  }
  [inspect.custom](): string {
    return "DkgSecretState <redacted>";
  }
}

/** Part 1: a random polynomial of degree t-1, its commitment and proof of knowledge. */
export function dkgPart1(
  identifier: string,
  threshold: number,
  participants: number,
  frost: FrostSuite = suite,
) {
  const { public: pkg, secret } = frost.DKG.round1(identifier, { min: threshold, max: participants });
  return { round1: pkg, state: new DkgSecretState(secret) };
}

/** Part 2: one secret share per other participant, keyed by recipient identifier. */
export function dkgPart2(
  state: DkgSecretState,
  others: DKG_Round1[],
  frost: FrostSuite = suite,
): Record<string, Uint8Array> {
  let out: Record<string, DKG_Round2>;
  try {
    out = frost.DKG.round2(state.use(), others);
  } catch (e) {
    throw new ThresholdError("DKG_BAD_PACKAGE", `a round-1 package is invalid: ${(e as Error).message}`, [], {
      cause: e,
    });
  }
  return Object.fromEntries(Object.entries(out).map(([id, p]) => [id, p.signingShare]));
}

/**
 * Checks one received share against its sender's commitment on its own (RFC 9591 Appendix C.2
 * vss_verify), so that a failure names that sender rather than "some share is bad".
 */
export function shareMatchesCommitment(
  recipient: string,
  sender: DKG_Round1,
  share: Uint8Array,
  frost: FrostSuite = suite,
): boolean {
  const pub: FrostPublic = {
    signers: { min: sender.commitment.length, max: sender.commitment.length },
    commitments: sender.commitment,
    verifyingShares: {},
  };
  const secret: FrostSecret = { identifier: recipient, signingShare: new Uint8Array(share) };
  try {
    frost.validateSecret(secret, pub);
    return true;
  } catch {
    return false;
  }
}

/** Part 3: the participant's signing share and the group's public key package. */
export function dkgPart3(
  state: DkgSecretState,
  others: DKG_Round1[],
  received: Record<string, Uint8Array>,
  frost: FrostSuite = suite,
): { secret: FrostSecret; public: FrostPublic } {
  const me = state.use();
  const round2: DKG_Round2[] = Object.entries(received).map(([identifier, share]) => ({
    identifier,
    signingShare: new Uint8Array(share),
  }));
  try {
    const key = frost.DKG.round3(me, others, round2);
    return { secret: key.secret, public: key.public };
  } catch (e) {
    throw new ThresholdError("DKG_BAD_SHARE", `DKG round 3 failed: ${(e as Error).message}`, [], {
      cause: e,
    });
  } finally {
    state.wipe();
  }
}

const sha256 = (label: string, value: unknown): string =>
  createHash("sha256").update(`${label}\n`).update(canonicalJson(value)).digest("hex");

/**
 * H(ceremony id ‖ t ‖ n ‖ identifiers ‖ sorted round-1 packages): what each custodian signs after
 * round 1 (docs/architecture.md §3.5). `extras` binds per-sender data sent beside the package (the HPKE key).
 */
export function round1TranscriptHash(input: {
  ceremonyId: string;
  threshold: number;
  identifiers: string[];
  packages: { round1: DKG_Round1; hpkePublicKey: Uint8Array }[];
}): string {
  const sorted = [...input.packages].sort((a, b) => (a.round1.identifier < b.round1.identifier ? -1 : 1));
  return sha256("tca/dkg/round1-transcript/v1", {
    ceremonyId: input.ceremonyId,
    t: input.threshold,
    n: input.identifiers.length,
    identifiers: [...input.identifiers].sort(),
    packages: sorted.map((p) => ({ ...round1ToWire(p.round1), hpke: bytesToHex(p.hpkePublicKey) })),
  });
}

/** H(ceremony id ‖ public key package incl. verifying shares): signed by all n at the end. */
export function publicPackageHash(ceremonyId: string, pub: FrostPublic): string {
  return sha256("tca/dkg/public-package/v1", { ceremonyId, publicPackage: publicToWire(pub) });
}

/** The CA public key: `commitments[0]` of the public package (noble's layout). */
export function groupPublicKey(pub: FrostPublic): Uint8Array {
  const pk = pub.commitments[0];
  if (!pk) throw new ThresholdError("DKG_BAD_PACKAGE", "public key package has no commitments");
  return pk;
}
