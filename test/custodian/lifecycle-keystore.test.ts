// A custodian's keystore across a lifecycle ceremony (docs/key-lifecycle.md "Running a ceremony"):
// the new share waits as pending beside the old one and is promoted or dropped by what the
// coordinator reports; a save from another process never loses the journal anchor a running agent
// writes meanwhile (docs/journal.md); and a share signs only packages of its own key epoch.
import { afterAll, describe, expect, it } from "vitest";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { CustodianHome, type KeyShare } from "../../src/custodian/home.ts";
import { settlePendingShare } from "../../src/custodian/lifecycle/participate.ts";
import type { CoordinatorClient } from "../../src/custodian/client.ts";
import { keystoreSealedVersion } from "../../src/custodian/keystore.ts";
import { SigningParticipant } from "../../src/custodian/signer.ts";
import { openEnvelope, sealEnvelope, type SignedEnvelope } from "../../src/protocol/envelope.ts";
import { publicPackageDigest } from "../../src/threshold/lifecycle.ts";
import type { SigningTask } from "../../src/protocol/signing-messages.ts";
import { NoncePool } from "../../src/threshold/sign.ts";
import {
  bytesToHex,
  publicFromWire,
  publicToWire,
  type CommitmentWire,
} from "../../src/threshold/encoding.ts";
import { inMemoryDkg } from "../helpers/dkg.ts";

const PASS = "correct horse battery";
const FAST = { scryptN: 2 ** 14 };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const parts = inMemoryDkg(["alice", "bob", "carol"], 2);
const shareOf = (epoch: number | undefined, ceremonyId = "dkg-1"): KeyShare => ({
  ceremonyId,
  identifier: parts[0]!.id,
  signingShare: bytesToHex(parts[0]!.key.secret.signingShare),
  publicPackage: publicToWire(parts[0]!.key.public),
  caKeyId: "a".repeat(64),
  activatedAt: new Date().toISOString(),
  ...(epoch === undefined ? {} : { epoch }),
});

async function custodian() {
  const dir = mkdtempSync(join(tmpdir(), "tca-lc-ks-"));
  dirs.push(dir);
  const home = new CustodianHome(dir);
  await home.init("alice", PASS, FAST);
  await home.save(PASS, { ...(await home.open(PASS)), share: shareOf(undefined) });
  return home;
}
const anchorOf = (home: CustodianHome) =>
  (JSON.parse(readFileSync(home.keystorePath, "utf8")) as { journalAnchor?: { seq: number } }).journalAnchor;

type Seen = "complete" | "complete-unconfirmed" | "failed" | "round1" | "down";
/**
 * A coordinator that knows one ceremony (alice its only receiver), in one state, or cannot be
 * reached. "complete-unconfirmed" says complete but shows no confirmation: a coordinator's word alone.
 */
const coordinator = (
  status: Seen,
  home: CustodianHome,
  secret: Uint8Array,
  share: KeyShare,
): CoordinatorClient => {
  const me = home.identity();
  const roster = {
    threshold: 2,
    custodians: [{ name: "alice", signingKey: me.signingKey, hpkeKey: me.hpkeKey }],
  };
  const plan = {
    ceremonyId: "lc-1",
    caKeyId: share.caKeyId,
    receivers: ["alice"],
    oldRoster: roster,
    newRoster: roster,
  };
  const confirm = sealEnvelope(
    { name: "alice", signingSecret: secret },
    {
      type: "lc/confirm",
      recipient: "*",
      scope: "lc-1",
      caKeyId: share.caKeyId,
      body: {
        publicPackageDigest: publicPackageDigest(publicFromWire(share.publicPackage)),
        publicPackage: share.publicPackage,
      },
    },
  );
  return {
    get: async (path: string) => {
      if (status === "down") throw new Error("connect ECONNREFUSED");
      if (path.includes("/messages")) return { messages: status === "complete" ? [confirm] : [] };
      return { status: status === "complete-unconfirmed" ? "complete" : status, plan };
    },
  } as unknown as CoordinatorClient;
};

describe("pending shares", () => {
  it("a keystore from before the key lifecycle reads as epoch 0 with no roster", async () => {
    const home = await custodian();
    const s = await home.open(PASS);
    expect(s.share?.epoch).toBeUndefined();
    expect(s.share?.roster).toBeUndefined();
    expect(s.pendingShare).toBeUndefined();
  });

  it("is promoted once every receiver's signed confirmation is in, dropped when it failed, kept otherwise", async () => {
    for (const [status, expectEpoch, pendingLeft] of [
      ["complete", 1, false],
      ["complete-unconfirmed", undefined, true],
      ["failed", undefined, false],
      ["round1", undefined, true],
      ["down", undefined, true],
    ] as const) {
      const home = await custodian();
      const before = await home.open(PASS);
      await home.save(PASS, { ...before, pendingShare: { ceremonyId: "lc-1", share: shareOf(1, "lc-1") } });
      const withPending = await home.open(PASS);
      expect(withPending.pendingShare?.share.epoch).toBe(1);
      expect(withPending.share?.epoch).toBeUndefined(); // the old share stays in use meanwhile
      const said: string[] = [];
      const secret = new Uint8Array(Buffer.from(withPending.identity.signingSecret, "base64url"));
      const client = coordinator(status, home, secret, withPending.pendingShare!.share);
      const now = await settlePendingShare(home, PASS, client, withPending, (l) => said.push(l));
      const stored = await home.open(PASS);
      expect(stored.share?.epoch, status).toBe(expectEpoch);
      expect(now.share?.epoch, status).toBe(expectEpoch);
      expect(stored.pendingShare !== undefined, status).toBe(pendingLeft);
      if (status === "down")
        expect(said.join("\n")).toMatch(/cannot ask about ceremony lc-1.*keeping the current share/);
      if (status === "complete") expect(stored.share?.ceremonyId).toBe("lc-1");
    }
  });
});

describe("saving the keystore from another process", () => {
  it("keeps the anchor a running agent writes meanwhile", async () => {
    const home = await custodian();
    const secrets = await home.open(PASS);
    const secret = new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url"));
    const agentJournal = await home.openJournal(secrets, PASS);
    const entry = (n: number) => ({
      kind: "signature" as const,
      requestId: `r-${n}`,
      tbsSha256: "a".repeat(64),
      serial: `0${n}`,
      jobId: `job-${n}`,
      attempt: 0,
    });
    agentJournal.append(secret, entry(1));
    const sealed = keystoreSealedVersion(home.keystorePath);

    // Another process (a ceremony storing a new share) saves while the agent holds the journal lock
    // and anchors a new head: the save waits for the lock and keeps the newer anchor.
    const other = new CustodianHome(home.dir);
    const lock = `${home.journalPath}.lock`;
    closeSync(openSync(lock, "wx", 0o600));
    const saving = other.save(PASS, { ...secrets, share: shareOf(1, "lc-1") });
    await new Promise((r) => setTimeout(r, 300)); // scrypt done; the save now waits on the lock
    unlinkSync(lock);
    agentJournal.append(secret, entry(2)); // the agent's next anchor, racing the save
    await saving;
    agentJournal.append(secret, entry(3));
    expect(anchorOf(home)?.seq).toBe(agentJournal.nextSeq);
    // Both hold: the new share and a journal that checks against the anchor.
    const after = await home.open(PASS);
    expect(after.share?.epoch).toBe(1);
    expect((await home.openJournal(after, PASS)).nextSeq).toBe(agentJournal.nextSeq);
    // A running agent notices the new encrypted part (and not a mere anchor write).
    expect(keystoreSealedVersion(home.keystorePath)).not.toBe(sealed);
    const v = keystoreSealedVersion(home.keystorePath);
    agentJournal.append(secret, entry(4));
    expect(keystoreSealedVersion(home.keystorePath)).toBe(v);
  });

  it("an anchor written while the save waits for the lock is the one kept", async () => {
    const home = await custodian();
    const secrets = await home.open(PASS);
    const secret = new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url"));
    const j = await home.openJournal(secrets, PASS);
    const lock = `${home.journalPath}.lock`;
    const sealed = keystoreSealedVersion(home.keystorePath);
    closeSync(openSync(lock, "wx", 0o600));
    const saving = new CustodianHome(home.dir).save(PASS, { ...secrets, share: shareOf(2) });
    await new Promise((r) => setTimeout(r, 300));
    // Nothing is written while the lock is held (an anchor could be in the middle of being written).
    expect(keystoreSealedVersion(home.keystorePath)).toBe(sealed);
    // The agent, holding the lock, anchors (Journal writes under this same lock; here by hand).
    unlinkSync(lock);
    j.append(secret, {
      kind: "signature",
      requestId: "r-9",
      tbsSha256: "b".repeat(64),
      serial: "09",
      jobId: "job-9",
      attempt: 0,
    });
    const anchored = anchorOf(home)?.seq;
    await saving;
    expect(anchorOf(home)?.seq).toBe(anchored);
    expect((await home.open(PASS)).share?.epoch).toBe(2);
  });
});

describe("key epochs in signing", () => {
  const aliceSecret = randomBytes(32);
  const roster = new Map([["alice", Buffer.from(ed25519.getPublicKey(aliceSecret)).toString("base64url")]]);
  const tbs = randomBytes(100).toString("hex");
  const participant = (epoch?: number) =>
    new SigningParticipant(
      { name: "alice", signingSecret: aliceSecret },
      {
        secret: parts[0]!.key.secret,
        public: parts[0]!.key.public,
        caKeyId: "a".repeat(64),
        threshold: 2,
        roster: ["alice", "bob", "carol"],
        ...(epoch === undefined ? {} : { epoch }),
      },
      { leaf: () => Buffer.from(tbs, "hex") },
    );
  const open = (e: SignedEnvelope) => openEnvelope(e, roster);
  const offer = (p: SigningParticipant) =>
    open(p.offer()!).body as { keyEpoch?: number; commitments: CommitmentWire[] };
  const task = (mine: CommitmentWire, keyEpoch: number | undefined, attempt = 0): SigningTask => ({
    id: "job-1",
    kind: "leaf",
    subjectRef: "req-1",
    attempt,
    tbs,
    params: {},
    signingPackage: {
      attempt,
      signers: ["alice", "bob"],
      commitments: [mine, new NoncePool(parts[1]!.key.secret).commit()],
      formedAt: new Date().toISOString(),
      ...(keyEpoch === undefined ? {} : { keyEpoch }),
    },
  });

  it("offers carry the share's epoch (none for epoch 0)", () => {
    expect(offer(participant()).keyEpoch).toBeUndefined();
    expect(offer(participant(0)).keyEpoch).toBeUndefined();
    expect(offer(participant(3)).keyEpoch).toBe(3);
  });

  it("a package of another epoch is refused with the reason, and its commitment is used up", async () => {
    const p = participant(1);
    const mine = offer(p).commitments[0]!;
    const r = await p.signTasks([task(mine, 0)]);
    expect(r.envelopes.map((e) => open(e).type)).toEqual(["sign/refusal"]);
    expect(r.outcomes[0]).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/key epoch 0; this custodian's share is of epoch 1/),
    });
    const again = await p.signTasks([task(mine, 1, 1)]);
    expect(again.envelopes.map((e) => open(e).type)).toEqual(["sign/withdraw"]);
  });

  it("signs a package of its own epoch; absent means 0", async () => {
    const p1 = participant(1);
    const r1 = await p1.signTasks([task(offer(p1).commitments[0]!, 1)]);
    expect(r1.envelopes.map((e) => open(e).type)).toEqual(["sign/share"]);
    const p0 = participant();
    const r0 = await p0.signTasks([task(offer(p0).commitments[0]!, undefined)]);
    expect(r0.envelopes.map((e) => open(e).type)).toEqual(["sign/share"]);
  });
});
