// What a custodian checks in a lifecycle plan before it deals anything (docs/key-lifecycle.md
// "Running a ceremony"): its own ca-config's roster, its share's key state, the roster change's
// signatures and the rules of each kind. A coordinator that announces anything else is refused.
import { describe, expect, it } from "vitest";
import { planProblem } from "../../src/custodian/lifecycle/runner.ts";
import { caKeyIdFor } from "../../src/custodian/ceremony.ts";
import type { KeyShare } from "../../src/custodian/home.ts";
import { generateIdentity, publicIdentity } from "../../src/protocol/identity.ts";
import { rosterDigest, signRosterChange, type Roster } from "../../src/protocol/roster.ts";
import type { LifecyclePlan } from "../../src/protocol/lifecycle.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import { bytesToHex, publicToWire } from "../../src/threshold/encoding.ts";
import { publicPackageDigest } from "../../src/threshold/lifecycle.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import type { CaConfig } from "../../src/config/schema.ts";
import { inMemoryDkg } from "../helpers/dkg.ts";

const names = ["alice", "bob", "carol"];
const parts = inMemoryDkg(names, 2);
const ids = new Map(
  [...names, "dave"].map((n) => {
    const s = generateIdentity(n);
    return [n, { secrets: s, pub: publicIdentity(s) }];
  }),
);
const member = (name: string) => ({
  name,
  signingKey: ids.get(name)!.pub.signingKey,
  hpkeKey: ids.get(name)!.pub.hpkeKey,
});
const roster: Roster = { threshold: 2, custodians: names.map(member) };
const pub = parts[0]!.key.public;
const caKeyId = caKeyIdFor(groupPublicKey(pub));
const shareOf = (i: number): KeyShare => ({
  ceremonyId: "dkg-1",
  identifier: parts[i]!.id,
  signingShare: bytesToHex(parts[i]!.key.secret.signingShare),
  publicPackage: publicToWire(pub),
  caKeyId,
  activatedAt: new Date().toISOString(),
  epoch: 0,
  roster,
});
/** Only the roster part of a config matters to planProblem. */
const configOf = (r: Roster): LoadedConfig => ({
  config: { threshold: r.threshold, custodians: r.custodians } as unknown as CaConfig,
  digest: "x",
});
const refresh: LifecyclePlan = {
  ceremonyId: "4b3c2a1e-0000-4000-8000-000000000001",
  kind: "refresh",
  caKeyId,
  fromEpoch: 0,
  toEpoch: 1,
  publicPackageDigest: publicPackageDigest(pub),
  publicPackage: publicToWire(pub),
  oldRoster: roster,
  newRoster: roster,
  rosterChange: null,
  dealers: names,
  receivers: names,
  lost: null,
  createdAt: new Date().toISOString(),
};
const alice = {
  name: "alice",
  signingKey: member("alice").signingKey,
  config: configOf(roster),
  share: shareOf(0),
};

const next: Roster = { threshold: 3, custodians: [...roster.custodians, member("dave")] };
function signedChange(to: Roster, by: string[]) {
  const statement = {
    caKeyId,
    from: rosterDigest(roster),
    to: rosterDigest(to),
    roster: to,
    basis: "dkg-1",
  };
  return {
    statement,
    signatures: by.map((n) =>
      signRosterChange(
        {
          name: n,
          signingSecret: new Uint8Array(Buffer.from(ids.get(n)!.secrets.signingSecret, "base64url")),
        },
        statement,
      ),
    ),
  };
}
const reshare: LifecyclePlan = {
  ...refresh,
  kind: "reshare",
  newRoster: next,
  rosterChange: signedChange(next, ["alice", "bob"]),
  dealers: ["alice", "bob"],
  receivers: [...names, "dave"],
};

describe("a custodian checks the plan before it deals", () => {
  it("takes part in a plan that matches its own ca-config, share and the signed roster change", () => {
    expect(planProblem(refresh, alice)).toBeUndefined();
    expect(planProblem(reshare, { ...alice, config: configOf(next) })).toBeUndefined();
    // A new member without a share, with the new ca-config.
    expect(
      planProblem(reshare, {
        name: "dave",
        signingKey: member("dave").signingKey,
        config: configOf(next),
        share: undefined,
      }),
    ).toBeUndefined();
  });

  it("refuses another key state: epoch, package, CA key, roster", () => {
    expect(planProblem({ ...refresh, fromEpoch: 3, toEpoch: 4 }, alice)).toMatch(
      /epoch 3; my share is of epoch 0/,
    );
    expect(planProblem({ ...refresh, caKeyId: "00".repeat(32) }, alice)).toMatch(/another CA key/);
    const other = inMemoryDkg(names, 2)[0]!.key.public;
    expect(
      planProblem(
        { ...refresh, publicPackage: publicToWire(other), publicPackageDigest: publicPackageDigest(other) },
        alice,
      ),
    ).toMatch(/not the one my share belongs to/);
    expect(planProblem({ ...refresh, publicPackageDigest: "11".repeat(32) }, alice)).toMatch(
      /does not match its digest/,
    );
    expect(planProblem(refresh, { ...alice, config: configOf(next) })).toMatch(/not the one in my ca-config/);
  });

  it("refuses a roster change without t valid signatures of the old roster", () => {
    const cfg = { ...alice, config: configOf(next) };
    expect(planProblem({ ...reshare, rosterChange: signedChange(next, ["alice"]) }, cfg)).toMatch(
      /not approved: 1 of the 2/,
    );
    expect(planProblem({ ...reshare, rosterChange: null }, cfg)).toMatch(/without a signed roster change/);
    // Signed by someone outside the old roster: not counted.
    expect(planProblem({ ...reshare, rosterChange: signedChange(next, ["alice", "dave"]) }, cfg)).toMatch(
      /not approved/,
    );
    const tampered = signedChange(next, ["alice", "bob"]);
    const otherNext: Roster = { ...next, threshold: 2 };
    expect(
      planProblem(
        {
          ...reshare,
          newRoster: otherNext,
          rosterChange: {
            ...tampered,
            statement: { ...tampered.statement, to: rosterDigest(otherNext), roster: otherNext },
          },
        },
        { ...alice, config: configOf(otherNext) },
      ),
    ).toMatch(/not approved/);
  });

  it("refuses plans that break the kind's rules", () => {
    expect(planProblem({ ...refresh, dealers: ["alice", "bob"] }, alice)).toMatch(/every custodian deals/);
    expect(planProblem({ ...refresh, toEpoch: 5 }, alice)).toMatch(/next epoch/);
    const cfg = { ...alice, config: configOf(next) };
    expect(planProblem({ ...reshare, dealers: ["alice", "bob", "carol"] }, cfg)).toMatch(
      /exactly 2 distinct dealers/,
    );
    expect(planProblem({ ...reshare, receivers: ["alice", "bob", "dave"] }, cfg)).toMatch(
      /every member of the new roster/,
    );
    expect(
      planProblem(reshare, {
        name: "dave",
        signingKey: member("carol").signingKey,
        config: configOf(next),
        share: undefined,
      }),
    ).toMatch(/other identity keys than mine/);
    expect(planProblem({ ...reshare, dealers: ["dave", "bob"] }, cfg)).toMatch(/exactly 2 distinct dealers/);
  });

  it("a repair changes only the lost custodian's keys, with helpers other than it", () => {
    const fresh = publicIdentity(generateIdentity("carol"));
    const repaired: Roster = {
      threshold: 2,
      custodians: roster.custodians.map((c) =>
        c.name === "carol" ? { name: "carol", signingKey: fresh.signingKey, hpkeKey: fresh.hpkeKey } : c,
      ),
    };
    const plan: LifecyclePlan = {
      ...refresh,
      kind: "repair",
      toEpoch: 0,
      newRoster: repaired,
      rosterChange: signedChange(repaired, ["alice", "bob"]),
      dealers: ["alice", "bob"],
      receivers: ["carol"],
      lost: "carol",
    };
    expect(planProblem(plan, { ...alice, config: configOf(repaired) })).toBeUndefined();
    expect(
      planProblem(plan, {
        name: "carol",
        signingKey: fresh.signingKey,
        config: configOf(repaired),
        share: undefined,
      }),
    ).toBeUndefined();
    expect(
      planProblem({ ...plan, dealers: ["alice", "carol"] }, { ...alice, config: configOf(repaired) }),
    ).toMatch(/helpers other than carol/);
    expect(planProblem({ ...plan, toEpoch: 1 }, { ...alice, config: configOf(repaired) })).toMatch(
      /keeps the epoch/,
    );
  });

  it("a share from before the key lifecycle takes part only in a plan from its own ca-config's roster", () => {
    const { roster: _r, ...legacy } = shareOf(0);
    void _r;
    expect(planProblem(refresh, { ...alice, share: legacy })).toBeUndefined();
    // A coordinator inventing the old roster (other keys for bob and carol) to pass its own signatures off.
    const fake: Roster = {
      threshold: 2,
      custodians: [member("alice"), { ...member("dave"), name: "bob" }, { ...member("dave"), name: "carol" }],
    };
    const statement = {
      caKeyId,
      from: rosterDigest(fake),
      to: rosterDigest(next),
      roster: next,
      basis: "dkg-1",
    };
    const dave = {
      signingSecret: new Uint8Array(Buffer.from(ids.get("dave")!.secrets.signingSecret, "base64url")),
    };
    const forged = {
      statement,
      signatures: ["bob", "carol"].map((name) => signRosterChange({ name, ...dave }, statement)),
    };
    const plan = { ...reshare, oldRoster: fake, rosterChange: forged };
    // With a share that records its roster this is refused too; without one, only the ca-config can tell.
    expect(planProblem(plan, { ...alice, config: configOf(next), share: legacy })).toMatch(
      /records no roster/,
    );
    expect(planProblem(plan, { ...alice, config: configOf(next) })).toMatch(
      /not the one my share belongs to/,
    );
  });

  it("refuses a repair that does not give the lost custodian new keys", () => {
    const plan: LifecyclePlan = {
      ...refresh,
      kind: "repair",
      toEpoch: 0,
      dealers: ["alice", "bob"],
      receivers: ["carol"],
      lost: "carol",
    };
    expect(planProblem(plan, alice)).toMatch(/new identity keys/);
  });
});
