// FROST signing rounds (RFC 9591 §5): commit, sign share, aggregate. The nonce rules of docs/architecture.md
// §3.6 live here: a nonce exists only as the object `commit()` returned, in one Map keyed by its
// commitment, and is taken out of the Map before it is used, so no code path can use it twice —
// not even for a signing package that is then refused.
import { inspect } from "node:util";
import {
  suite,
  type FrostPublic,
  type FrostSecret,
  type FrostSuite,
  type NonceCommitments,
} from "./suite.ts";
import { ThresholdError } from "./errors.ts";
import { commitmentKey, commitmentToWire, type CommitmentWire } from "./encoding.ts";

type Nonces = ReturnType<typeof suite.commit>["nonces"];

interface PoolEntry {
  nonces: Nonces;
  expiresAt: number;
}

/** Memory-only signing nonces of one custodian process. Never serialised, logged or copied. */
export class NoncePool {
  readonly #entries = new Map<string, PoolEntry>();
  constructor(
    private readonly secret: FrostSecret,
    private readonly ttlMs = 5 * 60_000,
    private readonly maxSize = 32,
    /** The FROST backend (tests and the bench pick one; production uses the process's suite). */
    private readonly frost: FrostSuite = suite,
  ) {}

  /** RFC 9591 §5.1 commit(): returns only the public commitment; the nonces stay here. */
  commit(now = Date.now()): CommitmentWire {
    this.expire(now);
    if (this.#entries.size >= this.maxSize) throw new ThresholdError("NONCE_UNKNOWN", "nonce pool is full");
    const { nonces, commitments } = this.frost.commit(this.secret);
    const wire = commitmentToWire(commitments);
    this.#entries.set(commitmentKey(wire), { nonces, expiresAt: now + this.ttlMs });
    return wire;
  }

  /**
   * Removes and returns the nonces for a commitment. Called synchronously before any check of the
   * signing package, so a refused package still uses the commitment up.
   */
  take(commitment: CommitmentWire, now = Date.now()): Nonces | undefined {
    const key = commitmentKey(commitment);
    const entry = this.#entries.get(key);
    this.#entries.delete(key);
    if (!entry) return undefined;
    if (entry.expiresAt < now) {
      wipe(entry.nonces);
      return undefined;
    }
    return entry.nonces;
  }

  /** Wipes the nonces of a commitment that will never be used (voided or used elsewhere). */
  discard(key: string): boolean {
    const entry = this.#entries.get(key);
    if (!entry) return false;
    this.#entries.delete(key);
    wipe(entry.nonces);
    return true;
  }

  /** Commitments still usable (expired ones are wiped first). */
  get size(): number {
    this.expire(Date.now());
    return this.#entries.size;
  }

  clear(): void {
    for (const e of this.#entries.values()) wipe(e.nonces);
    this.#entries.clear();
  }

  private expire(now: number): void {
    for (const [k, e] of this.#entries) {
      if (e.expiresAt < now) {
        wipe(e.nonces);
        this.#entries.delete(k);
      }
    }
  }

  toJSON(): string {
    return "<redacted>";
  }
  [inspect.custom](): string {
    return `NoncePool(${this.#entries.size}) <redacted>`;
  }
}

function wipe(n: Nonces): void {
  n.hiding.fill(0);
  n.binding.fill(0);
}

/** RFC 9591 §5.2 sign(): the caller has already taken `nonces` out of the pool. */
export function signShare(
  secret: FrostSecret,
  pub: FrostPublic,
  nonces: Nonces,
  commitments: NonceCommitments[],
  message: Uint8Array,
  frost: FrostSuite = suite,
): Uint8Array {
  try {
    return frost.signShare(secret, pub, nonces, commitments, message);
  } catch (e) {
    throw new ThresholdError("SIGNING_PACKAGE_INVALID", `cannot sign: ${(e as Error).message}`, [], {
      cause: e,
    });
  } finally {
    wipe(nonces);
  }
}

/** RFC 9591 §5.4: one share checked on its own against the signer's verifying share. */
export function verifySignatureShare(
  pub: FrostPublic,
  commitments: NonceCommitments[],
  message: Uint8Array,
  identifier: string,
  share: Uint8Array,
  frost: FrostSuite = suite,
): boolean {
  try {
    return frost.verifyShare(pub, commitments, message, identifier, share);
  } catch {
    return false;
  }
}

/**
 * RFC 9591 §5.3 aggregate(). noble verifies the aggregate against the group key and, only when that
 * fails, checks each share on its own (§5.4) and reports the identifiers whose shares are bad: the
 * happy path costs one verification, and a failure names the culprits (identifiable abort, §3.7).
 */
export function aggregateSignature(
  pub: FrostPublic,
  commitments: NonceCommitments[],
  message: Uint8Array,
  shares: Record<string, Uint8Array>,
  frost: FrostSuite = suite,
): Uint8Array {
  try {
    return frost.aggregate(pub, commitments, message, shares);
  } catch (e) {
    const cheaters = (e as { cheaters?: unknown }).cheaters;
    if (Array.isArray(cheaters) && cheaters.length > 0) {
      throw new ThresholdError("SIGNATURE_SHARE_INVALID", "invalid signature shares", cheaters.map(String), {
        cause: e,
      });
    }
    throw new ThresholdError("AGGREGATE_INVALID", `cannot aggregate: ${(e as Error).message}`, [], {
      cause: e,
    });
  }
}
