// What a custodian checks before it signs a new roster (docs/key-lifecycle.md "Roster changes"), and
// how the admin CLI words a lifecycle ceremony's progress and end state.
import { describe, expect, it } from "vitest";
import { refusalReason } from "../../src/custodian/lifecycle/sign-roster.ts";
import { caKeyIdFor } from "../../src/custodian/ceremony.ts";
import type { KeyShare } from "../../src/custodian/home.ts";
import { generateIdentity, publicIdentity } from "../../src/protocol/identity.ts";
import { rosterDigest, type Roster } from "../../src/protocol/roster.ts";
import type { KeyState, LifecycleView } from "../../src/protocol/lifecycle.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import { bytesToHex, publicToWire } from "../../src/threshold/encoding.ts";
import { publicPackageDigest } from "../../src/threshold/lifecycle.ts";
import { lifecycleFailure, lifecycleOutcome, lifecycleProgress } from "../../src/cli/commands/ceremony.ts";
import { inMemoryDkg } from "../helpers/dkg.ts";

const names = ["alice", "bob", "carol"];
const parts = inMemoryDkg(names, 2);
const member = (name: string) => {
  const p = publicIdentity(generateIdentity(name));
  return { name, signingKey: p.signingKey, hpkeKey: p.hpkeKey };
};
const roster: Roster = { threshold: 2, custodians: names.map(member) };
const pub = parts[0]!.key.public;
const share: KeyShare = {
  ceremonyId: "dkg-1",
  identifier: parts[0]!.id,
  signingShare: bytesToHex(parts[0]!.key.secret.signingShare),
  publicPackage: publicToWire(pub),
  caKeyId: caKeyIdFor(groupPublicKey(pub)),
  activatedAt: new Date().toISOString(),
};
const keyState: KeyState = {
  epoch: 0,
  roster,
  rosterDigest: rosterDigest(roster),
  publicPackageDigest: publicPackageDigest(pub),
  ceremonyId: "dkg-1",
  since: new Date().toISOString(),
};
const next: Roster = { threshold: 2, custodians: [...roster.custodians, member("dave")] };

describe("sign-roster refuses unless the key state in force is its own", () => {
  it("signs a change from the roster and key state its share belongs to", () => {
    expect(refusalReason({ me: "alice", share, current: roster, keyState, next })).toBeUndefined();
  });

  it("refuses without a key state, with another roster in force, another package, or no change", () => {
    expect(refusalReason({ me: "alice", share, current: roster, keyState: null, next })).toMatch(
      /no key state/,
    );
    const otherRoster = { ...roster, threshold: 3 };
    expect(
      refusalReason({
        me: "alice",
        share,
        current: roster,
        keyState: { ...keyState, roster: otherRoster, rosterDigest: rosterDigest(otherRoster) },
        next,
      }),
    ).toMatch(/not the roster this custodian's key share belongs to/);
    expect(
      refusalReason({
        me: "alice",
        share,
        current: roster,
        keyState: { ...keyState, epoch: 1, publicPackageDigest: "00".repeat(32) },
        next,
      }),
    ).toMatch(/key state \(epoch 1\) is not the one/);
    expect(refusalReason({ me: "alice", share, current: roster, keyState, next: roster })).toMatch(
      /same roster/,
    );
    expect(refusalReason({ me: "mallory", share, current: roster, keyState, next })).toMatch(
      /not a custodian of the roster in force/,
    );
    expect(
      refusalReason({
        me: "alice",
        share: { ...share, caKeyId: "ab".repeat(32) },
        current: roster,
        keyState,
        next,
      }),
    ).toMatch(/inconsistent/);
  });
});

describe("the admin CLI's words for a lifecycle ceremony", () => {
  const view = (o: Partial<LifecycleView>): LifecycleView => ({
    id: "4b3c2a1e-0000-4000-8000-000000000001",
    status: "round1",
    plan: {
      ceremonyId: "4b3c2a1e-0000-4000-8000-000000000001",
      kind: "reshare",
      caKeyId: share.caKeyId,
      fromEpoch: 0,
      toEpoch: 1,
      publicPackageDigest: keyState.publicPackageDigest,
      publicPackage: share.publicPackage,
      oldRoster: roster,
      newRoster: next,
      rosterChange: null,
      dealers: ["alice", "bob"],
      receivers: ["alice", "bob", "carol", "dave"],
      lost: null,
      createdAt: new Date().toISOString(),
    },
    failure: null,
    received: {},
    result: null,
    ...o,
  });

  it("counts who has sent the stage in progress", () => {
    expect(lifecycleProgress(view({ received: { "lc/round1": ["alice", "dave"] } }))).toBe(
      "round 1 (ceremony keys and commitments): 2 of 4",
    );
    expect(lifecycleProgress(view({ status: "round2", received: { "lc/round2": ["bob"] } }))).toBe(
      "round 2 (sealed shares) from: 1 of 2",
    );
    expect(lifecycleProgress(view({ status: "confirm", received: { "lc/confirm": ["a", "bob"] } }))).toBe(
      "confirmed 1 of 4",
    );
  });

  it("says what changed and what did not, and who failed it", () => {
    const done = view({ status: "complete", result: { ...keyState, epoch: 1 } });
    expect(lifecycleOutcome(done, "new.yaml")).toMatch(
      /^reshare complete: epoch 1; 2-of-3 → 2-of-4 \(add dave .*\); the CA key and every certificate are unchanged; .*restart coordinators and agents with new.yaml$/,
    );
    expect(lifecycleOutcome({ ...done, plan: { ...done.plan, kind: "refresh" } })).toBe(
      "refresh complete: epoch 1; every custodian holds a new share; the CA key and every certificate are unchanged",
    );
    const failed = view({ status: "failed", failure: { reason: "bad share", culprits: ["bob"] } });
    expect(lifecycleFailure(failed).message).toBe(
      `reshare ${failed.id} failed: bad share; culprit: bob; every old share still works`,
    );
  });
});
