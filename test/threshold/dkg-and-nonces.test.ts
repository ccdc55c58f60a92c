import { describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { identifierForName } from "../../src/threshold/suite.ts";
import {
  dkgPart1,
  dkgPart2,
  groupPublicKey,
  publicPackageHash,
  round1TranscriptHash,
  shareMatchesCommitment,
} from "../../src/threshold/dkg.ts";
import { NoncePool, aggregateSignature, signShare } from "../../src/threshold/sign.ts";
import { commitmentFromWire } from "../../src/threshold/encoding.ts";
import { inspect } from "node:util";
import { inMemoryDkg } from "../helpers/dkg.ts";

/** An in-memory DKG that also checks every share a participant received against its sender's commitment. */
function runDkg(names: string[], t: number) {
  const out = inMemoryDkg(names, t);
  for (const p of out)
    for (const o of p.others) expect(shareMatchesCommitment(p.id, o.round1, p.received[o.id]!)).toBe(true);
  return out;
}

describe("DKG", () => {
  it("gives every participant the same group key and a share that signs with any t of n", () => {
    const out = runDkg(["alice", "bob", "carol", "dave", "erin"], 3);
    const hashes = new Set(out.map((o) => publicPackageHash("c1", o.key.public)));
    expect(hashes.size).toBe(1);
    const pub = out[0]!.key.public;
    const msg = new TextEncoder().encode("tbs bytes");
    const signers = [out[0]!, out[2]!, out[4]!];
    const pools = signers.map((s) => new NoncePool(s.key.secret));
    const wires = pools.map((p) => p.commit());
    const list = wires.map(commitmentFromWire);
    const shares = Object.fromEntries(
      signers.map((s, i) => [s.id, signShare(s.key.secret, pub, pools[i]!.take(wires[i]!)!, list, msg)]),
    );
    const sig = aggregateSignature(pub, list, msg, shares);
    expect(ed25519.verify(sig, msg, groupPublicKey(pub))).toBe(true);
  });

  it("detects a share that does not match its sender's commitment", () => {
    const a = identifierForName("alice");
    const b = identifierForName("bob");
    const p1 = dkgPart1(a, 2, 2);
    const p2 = dkgPart1(b, 2, 2);
    const share = dkgPart2(p1.state, [p2.round1])[b]!;
    expect(shareMatchesCommitment(b, p1.round1, share)).toBe(true);
    const bad = Uint8Array.from(share);
    bad[0]! ^= 1;
    expect(shareMatchesCommitment(b, p1.round1, bad)).toBe(false);
  });

  it("transcript hash changes when any package differs", () => {
    const ids = ["a", "b"].map(identifierForName);
    const pk = ids.map((id) => ({
      round1: dkgPart1(id, 2, 2).round1,
      hpkePublicKey: new Uint8Array(32).fill(1),
    }));
    const h1 = round1TranscriptHash({ ceremonyId: "c", threshold: 2, identifiers: ids, packages: pk });
    const h2 = round1TranscriptHash({
      ceremonyId: "c",
      threshold: 2,
      identifiers: ids,
      packages: [...pk].reverse(),
    });
    expect(h1).toBe(h2);
    const altered = [{ ...pk[0]!, hpkePublicKey: new Uint8Array(32).fill(2) }, pk[1]!];
    expect(
      round1TranscriptHash({ ceremonyId: "c", threshold: 2, identifiers: ids, packages: altered }),
    ).not.toBe(h1);
    expect(round1TranscriptHash({ ceremonyId: "d", threshold: 2, identifiers: ids, packages: pk })).not.toBe(
      h1,
    );
  });
});

describe("NoncePool (nonces are used once)", () => {
  const [alice] = runDkg(["alice", "bob", "carol"], 2);
  it("hands each nonce out once, and redacts itself", () => {
    const pool = new NoncePool(alice!.key.secret);
    const c = pool.commit();
    expect(pool.take(c)).toBeDefined();
    expect(pool.take(c)).toBeUndefined();
    expect(inspect(pool)).not.toMatch(/[0-9a-f]{64}/);
    expect(JSON.stringify({ pool })).toBe('{"pool":"<redacted>"}');
  });
  it("expires commitments and caps the pool", () => {
    const pool = new NoncePool(alice!.key.secret, 1000, 2);
    const c = pool.commit(0);
    pool.commit(0);
    expect(() => pool.commit(0)).toThrow(/full/);
    expect(pool.take(c, 5000)).toBeUndefined();
  });
});
