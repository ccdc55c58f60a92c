// docs/architecture.md §3.6 at the custodian: a commitment offered ahead of time serves one signing package
// at most — a second package naming it gets no share, a refused package still uses it up, a restarted
// process has none — and the pool refills as the coordinator reports what it used or voided.
import { describe, expect, it } from "vitest";
import { inspect } from "node:util";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { identifierForName } from "../../src/threshold/suite.ts";
import { NoncePool } from "../../src/threshold/sign.ts";
import { commitmentKey, type CommitmentWire } from "../../src/threshold/encoding.ts";
import { SigningParticipant, type SigningHooks } from "../../src/custodian/signer.ts";
import { MAX_OFFERED, type SigningTask } from "../../src/protocol/signing-messages.ts";
import { openEnvelope, type SignedEnvelope } from "../../src/protocol/envelope.ts";
import { inMemoryDkg } from "../helpers/dkg.ts";

const keys = inMemoryDkg(["alice", "bob", "carol"], 2).map((p) => p.key);
const aliceSecret = randomBytes(32);
const roster = new Map([["alice", Buffer.from(ed25519.getPublicKey(aliceSecret)).toString("base64url")]]);
const tbs = randomBytes(200).toString("hex");

function participantFrom(
  derivers: Partial<Record<SigningTask["kind"], (t: SigningTask) => Uint8Array>>,
  hooks: SigningHooks = {},
  supersede = false,
) {
  return new SigningParticipant(
    { name: "alice", signingSecret: aliceSecret },
    {
      secret: keys[0]!.secret,
      public: keys[0]!.public,
      caKeyId: "a".repeat(64),
      threshold: 2,
      roster: ["alice", "bob", "carol"],
    },
    derivers,
    hooks,
    supersede,
  );
}

function participant(
  derive: (t: SigningTask) => Uint8Array = () => Buffer.from(tbs, "hex"),
  hooks: SigningHooks = {},
  supersede = false,
) {
  return participantFrom({ leaf: derive }, hooks, supersede);
}
const open = (e: SignedEnvelope) => openEnvelope(e, roster);
const offered = (p: SigningParticipant): CommitmentWire[] =>
  (open(p.offer()!).body as { commitments: CommitmentWire[] }).commitments;
const bobCommitment = () => new NoncePool(keys[1]!.secret).commit();
const task = (attempt: number, mine: CommitmentWire, body = tbs, id = "job-1"): SigningTask => ({
  id,
  kind: "leaf",
  subjectRef: "req-1",
  attempt,
  tbs: body,
  params: {},
  signingPackage: {
    attempt,
    signers: ["alice", "bob"],
    commitments: [mine, bobCommitment()],
    formedAt: new Date().toISOString(),
  },
});
const types = (envs: SignedEnvelope[]) => envs.map((e) => open(e).type);

describe("SigningParticipant nonce discipline", () => {
  it("offers a bounded pool of commitments and tops it up only as they are used", () => {
    const p = participant();
    const first = offered(p);
    expect(first).toHaveLength(MAX_OFFERED);
    expect(new Set(first.map(commitmentKey)).size).toBe(MAX_OFFERED);
    expect(first.every((c) => c.identifier === keys[0]!.secret.identifier)).toBe(true);
    expect(p.offer()).toBeUndefined(); // full: nothing more to offer, and no error
    // The coordinator used three elsewhere and voided two: their nonces are wiped, room for five.
    const still = first.slice(5).map(commitmentKey);
    expect(p.sync(still, [])).toBe(5);
    expect(p.pendingNonces).toBe(MAX_OFFERED - 5);
    expect(offered(p)).toHaveLength(5);
  });

  it("the first offer of an agent voids its predecessors' offers; a CLI's never does", () => {
    const agent = participantFrom({}, {}, true);
    expect((open(agent.offer()!).body as { supersede: boolean }).supersede).toBe(true);
    agent.sync([], []);
    expect((open(agent.offer()!).body as { supersede: boolean }).supersede).toBe(false);
    expect((open(participant().offer()!).body as { supersede: boolean }).supersede).toBe(false);
  });

  it("two signing packages naming one commitment get one share", async () => {
    const p = participant();
    const mine = offered(p)[0]!;
    const a = await p.signTasks([task(0, mine)]);
    expect(types(a.envelopes)).toEqual(["sign/share"]);
    // The coordinator tries again: a new attempt naming the same commitment, even with the same bytes,
    // and another job naming it: no share, the commitment is handed back instead.
    const b = await p.signTasks([task(1, mine), task(0, mine, randomBytes(200).toString("hex"), "job-2")]);
    expect(types(b.envelopes)).toEqual(["sign/withdraw"]);
    expect(b.outcomes.map((o) => o.kind)).toEqual(["lost", "lost"]);
    expect(p.pendingNonces).toBe(MAX_OFFERED - 1);
  });

  it("a refused package still uses its commitment up", async () => {
    const p = participant();
    const mine = offered(p)[0]!;
    // The package proposes other bytes than the custodian derives: refused.
    const a = await p.signTasks([task(0, mine, randomBytes(200).toString("hex"))]);
    expect(types(a.envelopes)).toEqual(["sign/refusal"]);
    expect(a.outcomes[0]).toMatchObject({ kind: "refused", reason: expect.stringMatching(/differs/) });
    // Then the right bytes with the same commitment: the nonce is gone, no share.
    const b = await p.signTasks([task(1, mine)]);
    expect(types(b.envelopes)).toEqual(["sign/withdraw"]);
  });

  it("a restarted process holds no nonces: it signs nothing its predecessor offered, and hands it back", async () => {
    const before = participant();
    const mine = offered(before)[0]!;
    before.close(); // the process dies
    const after = participant();
    expect(after.instance).not.toBe(before.instance);
    expect(after.pendingNonces).toBe(0);
    const r = await after.signTasks([task(0, mine)]);
    expect(types(r.envelopes)).toEqual(["sign/withdraw"]);
    expect(open(r.envelopes[0]!).body).toEqual({
      instance: after.instance,
      commitments: [commitmentKey(mine)],
    });
  });

  it("one bad task in a batch does not stop the others", async () => {
    const p = participant((t) => {
      if (t.id === "job-bad") throw new Error("my ca-config has no such profile");
      return Buffer.from(tbs, "hex");
    });
    const [c1, c2, c3] = offered(p);
    const r = await p.signTasks([
      task(0, c1!, tbs, "job-a"),
      task(0, c2!, tbs, "job-bad"),
      task(0, c3!, tbs, "job-c"),
    ]);
    expect(r.outcomes.map((o) => [o.task.id, o.kind])).toEqual([
      ["job-a", "signed"],
      ["job-bad", "refused"],
      ["job-c", "signed"],
    ]);
    expect(types(r.envelopes).sort()).toEqual(["sign/refusal", "sign/share", "sign/share"]);
  });

  it("journals each share before the next task is checked, and before any share leaves", async () => {
    const order: string[] = [];
    const p = participantFrom(
      { leaf: () => Buffer.from(tbs, "hex") },
      { beforeShare: (t) => void order.push(`journal ${t.id}`) },
    );
    const [c1, c2] = offered(p);
    const r = await p.signTasks([task(0, c1!, tbs, "j1"), task(0, c2!, tbs, "j2")]);
    order.push(...types(r.envelopes));
    expect(order).toEqual(["journal j1", "journal j2", "sign/share", "sign/share"]);
  });

  it("a check sees the journal entries of the tasks before it in the same batch", async () => {
    // Stand-in for the journal's serial check: two tasks for one serial in one batch get one share.
    const recorded = new Set<string>();
    const p = participantFrom(
      {
        leaf: () => {
          if (recorded.has("serial-1"))
            throw new Error("I have already signed serial serial-1 for another TBS");
          return Buffer.from(tbs, "hex");
        },
      },
      { beforeShare: () => void recorded.add("serial-1") },
    );
    const [c1, c2] = offered(p);
    const r = await p.signTasks([task(0, c1!, tbs, "j1"), task(0, c2!, tbs, "j2")]);
    expect(r.outcomes.map((o) => o.kind)).toEqual(["signed", "refused"]);
    expect(types(r.envelopes)).toEqual(["sign/share", "sign/refusal"]);
  });

  it("a share whose journal entry cannot be written never leaves", async () => {
    const p = participantFrom(
      { leaf: () => Buffer.from(tbs, "hex") },
      {
        beforeShare: () => {
          throw new Error("journal is locked by another process");
        },
      },
    );
    const r = await p.signTasks([task(0, offered(p)[0]!)]);
    // Nothing leaves: not the share (it is on no record), nor a refusal (a local fault, not a verdict).
    expect(r.envelopes).toEqual([]);
    expect(r.outcomes[0]).toMatchObject({
      kind: "unrecorded",
      reason: expect.stringMatching(/journal is locked/),
    });
  });

  it("no share of a batch leaves when the journal's anchor cannot be written; refusals still do", async () => {
    let released = 0;
    const p = participantFrom(
      {
        leaf: (t) => {
          if (t.id === "j2") throw new Error("not approved");
          return Buffer.from(tbs, "hex");
        },
      },
      {
        beforeRelease: () => {
          released++;
          throw new Error("Cannot anchor the journal in keystore /x/keystore.json: ENOSPC");
        },
      },
    );
    const [c1, c2, c3] = offered(p);
    const r = await p.signTasks([task(0, c1!, tbs, "j1"), task(0, c2!, tbs, "j2"), task(0, c3!, tbs, "j3")]);
    expect(released).toBe(1); // one anchor for the whole batch
    expect(types(r.envelopes)).toEqual(["sign/refusal"]);
    expect(r.outcomes.map((o) => o.kind)).toEqual(["unrecorded", "refused", "unrecorded"]);
    expect(r.outcomes[0]).toMatchObject({ reason: expect.stringMatching(/Cannot anchor the journal/) });
  });

  it("never prints its key share", () => {
    const p = participant();
    const share = Buffer.from(keys[0]!.secret.signingShare).toString("hex");
    expect(inspect(p, { depth: 10 })).not.toContain(share);
    expect(JSON.stringify({ p })).not.toContain(share);
  });

  it("refuses a package naming an identifier outside the roster", async () => {
    const p = participant();
    const mine = offered(p)[0]!;
    const stranger = { ...bobCommitment(), identifier: identifierForName("mallory") };
    const bad: SigningTask = {
      ...task(0, mine),
      signingPackage: {
        attempt: 0,
        signers: ["alice", "mallory"],
        commitments: [mine, stranger],
        formedAt: "",
      },
    };
    const r = await p.signTasks([bad]);
    expect(r.outcomes[0]).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/outside the roster/),
    });
  });
});
