// The coordinator's side of the key lifecycle (docs/key-lifecycle.md), in process over HTTP: a
// refresh run to completion with real signed envelopes and the threshold maths (src/threshold/
// lifecycle.ts) driven by a tiny in-test custodian driver; complaints and confirmations that name
// the cheater; plan validation for reshare and repair; the roster signature route; epochs in
// signing afterwards.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { canonicalJson } from "../../src/common/canonical-json.ts";
import { bytesToHex, hexToBytes } from "../../src/common/hex.ts";
import { CoordinatorError } from "../../src/coordinator/errors.ts";
import { listAudit } from "../../src/coordinator/audit/log.ts";
import { KeyStateReader, META_KEY_STATE } from "../../src/coordinator/lifecycle/key-state.ts";
import { LIFECYCLE_TIMEOUT_MS } from "../../src/coordinator/lifecycle/service.ts";
import type { LifecycleDatabase } from "../../src/coordinator/lifecycle/tables.ts";
import { verifyAuditChain } from "../../src/protocol/audit.ts";
import { ExchangeLink } from "../../src/custodian/exchange.ts";
import { SigningParticipant } from "../../src/custodian/signer.ts";
import { openEnvelope, sealEnvelope, type SignedEnvelope, type Signer } from "../../src/protocol/envelope.ts";
import { generateHpkeKeyPair, type HpkeKeyPair } from "../../src/protocol/hpke.ts";
import {
  lifecycleStages,
  participants,
  planHash,
  sealLcValue,
  type LcRound1Body,
  type LifecycleMessageType,
  type LifecyclePlan,
  type LifecycleView,
} from "../../src/protocol/lifecycle.ts";
import {
  rosterDigest,
  rosterOf,
  signRosterChange,
  type Roster,
  type RosterChangeStatement,
} from "../../src/protocol/roster.ts";
import { signReadHeader } from "../../src/protocol/signed-read.ts";
import type { ExchangeRequest } from "../../src/protocol/signing-messages.ts";
import { publicToWire, publicFromWire, PublicPackageWireSchema } from "../../src/threshold/encoding.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import type { DkgResult } from "../../src/custodian/dkg-runner.ts";
import {
  publicPackageDigest,
  refreshCombine,
  refreshDeal,
  refreshedPublic,
  repairDeal,
  repairSigma,
} from "../../src/threshold/lifecycle.ts";
import { identifierForName, type FrostPublic, type FrostSecret } from "../../src/threshold/suite.ts";
import {
  approval,
  equipCustodians,
  exchangeUntil,
  makeCsr,
  runDkg,
  startHttpCa,
  type HttpCa,
} from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";

const NAMES = ["alice", "bob", "carol"];
const ADMIN = { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const id = identifierForName;

let h: HttpCa;
let dkg: Map<string, DkgResult>;
let dkgId: string;

beforeAll(async () => {
  h = await startHttpCa({ names: NAMES, threshold: 2 });
  const started = await h.ca.services.ceremonies.start();
  dkgId = started.id;
  const results = await runDkg(h.ca);
  equipCustodians(h.ca, results);
  dkg = new Map(NAMES.map((n, i) => [n, results[i]!]));
  await exchangeUntil(h.ca, async () => (await h.ca.services.ceremonies.view(dkgId)).status === "complete");
}, 60_000);
afterAll(async () => h?.ca.close());

const svc = () => h.ca.services;
const api = (path: string, init: RequestInit = {}) => fetch(`${h.url}${path}`, init);
const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  api(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
async function problem(res: Response): Promise<{ status: number; detail: string }> {
  const b = (await res.json()) as { detail: string };
  return { status: res.status, detail: b.detail };
}
async function refused(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CoordinatorError) return { status: e.status, message: e.message };
    throw e;
  }
  throw new Error("expected a refusal");
}

// ---- a tiny custodian driver: just enough of the participant side to drive the coordinator ----

interface Party {
  signer: Signer;
  hpke: HpkeKeyPair;
  secret?: FrostSecret;
  dealt?: Record<string, Uint8Array>;
  commitment?: Uint8Array[];
}

class Driver {
  readonly parties = new Map<string, Party>();
  constructor(
    readonly plan: LifecyclePlan,
    signers: Map<string, Signer>,
    readonly oldPublic: FrostPublic,
    secrets: Map<string, FrostSecret>,
  ) {
    for (const n of participants(plan))
      this.parties.set(n, { signer: signers.get(n)!, hpke: undefined!, secret: secrets.get(n) });
  }

  send(from: string, type: LifecycleMessageType, body: unknown): Promise<LifecycleView> {
    return svc().lifecycle.receive(this.plan.ceremonyId, this.envelope(from, type, body));
  }

  envelope(from: string, type: LifecycleMessageType, body: unknown): SignedEnvelope {
    return sealEnvelope(this.parties.get(from)!.signer, {
      type,
      recipient: "*",
      scope: this.plan.ceremonyId,
      caKeyId: this.plan.caKeyId,
      body,
    });
  }

  /** Round 1 (refresh): a ceremony HPKE key and a zero-constant dealing from every dealer. */
  async round1(tamper?: (name: string, body: LcRound1Body) => LcRound1Body): Promise<LifecycleView> {
    let v: LifecycleView | undefined;
    for (const [n, p] of this.parties) {
      p.hpke = await generateHpkeKeyPair();
      const d = refreshDeal(this.plan.newRoster.threshold, this.plan.receivers.map(id));
      p.dealt = d.shares;
      p.commitment = d.commitment;
      const body: LcRound1Body = {
        planHash: planHash(this.plan),
        hpkePublicKey: bytesToHex(p.hpke.publicKey),
        commitment: d.commitment.map(bytesToHex),
        pieceCommitments: null,
      };
      v = await this.send(n, "lc/round1", tamper ? tamper(n, body) : body);
    }
    return v!;
  }

  async ack(): Promise<LifecycleView> {
    const r1 = await svc().lifecycle.messages(this.plan.ceremonyId, "lc/round1");
    const bodies = r1.messages
      .map((e) => openEnvelope(e, new Map([...this.parties].map(([n, p]) => [n, pub(p.signer)]))))
      .sort((a, b) => (a.sender < b.sender ? -1 : 1))
      .map((x) => x.body);
    const transcriptHash = createHash("sha256")
      .update(planHash(this.plan))
      .update(canonicalJson(bodies))
      .digest("hex");
    let v: LifecycleView | undefined;
    for (const n of this.parties.keys()) v = await this.send(n, "lc/round1-ack", { transcriptHash });
    return v!;
  }

  /** Round 2: each dealer seals each receiver's value; `bad` swaps one dealer's value for one receiver. */
  async round2(bad?: { from: string; to: string }): Promise<LifecycleView> {
    let v: LifecycleView | undefined;
    for (const dealer of this.plan.dealers) {
      const p = this.parties.get(dealer)!;
      const shares: Record<string, { enc: string; ciphertext: string }> = {};
      for (const r of this.plan.receivers) {
        let value = p.dealt![id(r)]!;
        if (bad && bad.from === dealer && bad.to === r)
          value = p.dealt![id(this.plan.receivers.find((x) => x !== r)!)]!;
        shares[r] = await sealLcValue(this.parties.get(r)!.hpke.publicKey, value, {
          ceremonyId: this.plan.ceremonyId,
          stage: "lc/round2",
          sender: dealer,
          recipient: r,
        });
      }
      v = await this.send(dealer, "lc/round2", { shares });
    }
    return v!;
  }

  complain(by: string, accused: string): Promise<LifecycleView> {
    return this.send(by, "lc/complaint", {
      accused,
      stage: "lc/round2",
      reason: "does not match the commitment",
      hpkePrivateKey: bytesToHex(this.parties.get(by)!.hpke.privateKey),
    });
  }

  /** The refreshed package, from the round-1 commitments (what every receiver computes). */
  expected(): FrostPublic {
    return refreshedPublic(
      this.oldPublic,
      this.plan.dealers.map((d) => this.parties.get(d)!.commitment!),
    );
  }

  /** Every receiver's new share (they open their values; here the driver holds them in the clear). */
  newSecrets(): Map<string, FrostSecret> {
    return new Map(
      this.plan.receivers.map((r) => [
        r,
        refreshCombine(
          this.parties.get(r)!.secret!,
          this.plan.dealers.map((d) => this.parties.get(d)!.dealt![id(r)]!),
        ),
      ]),
    );
  }

  async confirm(lie?: string): Promise<LifecycleView> {
    const pubPkg = this.expected();
    const honest = { publicPackageDigest: publicPackageDigest(pubPkg), publicPackage: publicToWire(pubPkg) };
    let v: LifecycleView | undefined;
    for (const r of this.plan.receivers) {
      const body =
        r === lie
          ? {
              publicPackageDigest: publicPackageDigest(this.oldPublic),
              publicPackage: publicToWire(this.oldPublic),
            }
          : honest;
      v = await this.send(r, "lc/confirm", body);
    }
    return v!;
  }
}

const pub = (s: Signer) => Buffer.from(ed25519.getPublicKey(s.signingSecret)).toString("base64url");

async function state() {
  const ks = (await svc().keyState.current())!;
  return ks;
}

async function startRefresh(): Promise<Driver> {
  const res = await postJson("/api/v1/lifecycle", { kind: "refresh" }, ADMIN);
  expect(res.status).toBe(201);
  const v = (await res.json()) as LifecycleView;
  const ks = await state();
  const secrets = new Map<string, FrostSecret>(
    [...(currentSecrets ?? new Map([...dkg].map(([n, r]) => [n, r.secret])))].map(([n, s]) => [n, s]),
  );
  return new Driver(v.plan, h.ca.signers, ks.publicPackage, secrets);
}
let currentSecrets: Map<string, FrostSecret> | undefined;

/** A roster statement from the key state in force to `next`, signed by `by`. */
async function signChange(next: Roster, by: string[], o: Partial<RosterChangeStatement> = {}) {
  const ks = await state();
  const statement: RosterChangeStatement = {
    caKeyId: ks.caKeyId,
    from: ks.state.rosterDigest,
    to: rosterDigest(next),
    roster: next,
    basis: ks.state.ceremonyId,
    ...o,
  };
  const answers = [];
  for (const n of by)
    answers.push(
      await postJson("/api/v1/roster/signatures", {
        statement,
        signature: signRosterChange(h.ca.signers.get(n)!, statement),
      }),
    );
  return { statement, answers };
}

function member(name: string) {
  return {
    name,
    signingKey: Buffer.from(ed25519.getPublicKey(randomBytes(32))).toString("base64url"),
    hpkeKey: Buffer.from(randomBytes(32)).toString("base64url"),
  };
}
const configRoster = () => rosterOf(h.ca.config.config);
const sorted = (r: Roster): Roster => ({
  threshold: r.threshold,
  custodians: [...r.custodians].sort((a, b) => (a.name < b.name ? -1 : 1)),
});

describe("key state", () => {
  it("the DKG stores epoch 0 under ca-config's roster; a CA from before the key lifecycle derives the same", async () => {
    const ks = await state();
    expect(ks.stored).toBe(true);
    expect(ks.state).toMatchObject({
      epoch: 0,
      roster: sorted(configRoster()),
      rosterDigest: rosterDigest(configRoster()),
      publicPackageDigest: publicPackageDigest(ks.publicPackage),
      ceremonyId: dkgId,
    });
    // Without the stored state (a CA from before this version) it is derived, and the same.
    const stored = (await svc().store.getMeta(META_KEY_STATE))!;
    const meta = () => svc().store.queryBuilder<LifecycleDatabase>();
    await meta().deleteFrom("meta").where("key", "=", META_KEY_STATE).execute();
    try {
      const derived = await state();
      expect(derived.stored).toBe(false);
      expect({ ...derived.state, since: "" }).toEqual({ ...ks.state, since: "" });
    } finally {
      await svc().store.setMeta(META_KEY_STATE, stored);
    }
    // A ca-config edited after the DKG (carol's keys changed) is a roster mismatch, not a new roster.
    const cfg = h.ca.config;
    const edited = {
      ...cfg,
      config: {
        ...cfg.config,
        custodians: cfg.config.custodians.map((c) =>
          c.name === "carol" ? { ...c, signingKey: member("carol").signingKey } : c,
        ),
      },
    };
    const reader = new KeyStateReader(svc().store, edited);
    expect(await reader.mismatch()).toMatch(/not the roster in force/);
    expect((await reader.current())!.state.rosterDigest).toBe(ks.state.rosterDigest);
    const res = await api("/api/v1/roster", { headers: ADMIN });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { keyState: { epoch: number } }).keyState.epoch).toBe(0);
    expect((await api("/api/v1/roster")).status).toBe(401);
    const health = (await (await api("/api/v1/health")).json()) as { status: string; keyEpoch: number };
    expect(health).toMatchObject({ status: "ok", keyEpoch: 0 });
  });
});

describe("roster signatures", () => {
  const next = () => sorted({ threshold: 2, custodians: [...configRoster().custodians, member("dave")] });

  it("refuses malformed bodies, stale statements, strangers and bad signatures; takes a signature once", async () => {
    expect((await postJson("/api/v1/roster/signatures", { statement: {} })).status).toBe(400);
    const n = next();
    const wrongBasis = await signChange(n, ["alice"], { basis: "another-ceremony" });
    expect(await problem(wrongBasis.answers[0]!)).toMatchObject({
      status: 409,
      detail: expect.stringMatching(/key state made by/),
    });
    const wrongFrom = await signChange(n, ["alice"], { from: "0".repeat(64) });
    expect(await problem(wrongFrom.answers[0]!)).toMatchObject({
      status: 409,
      detail: expect.stringMatching(/starts from roster/),
    });
    const wrongKey = await signChange(n, ["alice"], { caKeyId: "1".repeat(64) });
    expect(await problem(wrongKey.answers[0]!)).toMatchObject({
      status: 409,
      detail: expect.stringMatching(/for CA key/),
    });

    const { statement } = await signChange(n, []);
    const stranger = { name: "mallory", signingSecret: new Uint8Array(randomBytes(32)) };
    const r1 = await postJson("/api/v1/roster/signatures", {
      statement,
      signature: signRosterChange(stranger, statement),
    });
    expect(r1.status).toBe(403);
    const forged = { ...signRosterChange(stranger, statement), signer: "alice" };
    expect((await postJson("/api/v1/roster/signatures", { statement, signature: forged })).status).toBe(400);

    const a1 = await signChange(n, ["alice"]);
    const a2 = await signChange(n, ["alice"]);
    for (const a of [a1, a2]) {
      expect(a.answers[0]!.status).toBe(200);
      expect(await a.answers[0]!.json()).toMatchObject({ validSigners: ["alice"], approved: false });
    }
    const view = (await (await api("/api/v1/roster", { headers: ADMIN })).json()) as {
      changes: { change: { signatures: unknown[] }; approved: boolean }[];
    };
    expect(view.changes).toHaveLength(1);
    expect(view.changes[0]!.change.signatures).toHaveLength(1);
  });

  it("another statement of the same change keeps the one on file and its signatures, unless that one is stale", async () => {
    const n = next();
    await signChange(n, ["alice"]);
    // The same roster written in another order: the same `to` digest, different statement text.
    const reordered = { ...n, custodians: [...n.custodians].reverse() };
    const b = await signChange(reordered, ["bob"]);
    expect(await problem(b.answers[0]!)).toMatchObject({
      status: 409,
      detail: expect.stringMatching(/a different statement of this change is on file/),
    });
    expect((await svc().roster.get(rosterDigest(n)))!.signatures.map((x) => x.signer)).toEqual(["alice"]);

    // One on file for an earlier key state gives way to the current statement.
    const other = sorted({ threshold: 2, custodians: [...configRoster().custodians, member("erin")] });
    const ks = await state();
    const old: RosterChangeStatement = {
      caKeyId: ks.caKeyId,
      from: ks.state.rosterDigest,
      to: rosterDigest(other),
      roster: other,
      basis: "an-earlier-ceremony",
    };
    await svc()
      .store.queryBuilder<LifecycleDatabase>()
      .insertInto("roster_changes")
      .values({ to_digest: old.to, statement: canonicalJson(old), created_at: new Date().toISOString() })
      .execute();
    const fresh = await signChange(other, ["bob"]);
    expect(fresh.answers[0]!.status).toBe(200);
    expect((await svc().roster.get(old.to))!.statement.basis).toBe(ks.state.ceremonyId);
  });
});

describe("reshare and repair plans", () => {
  const erin = { name: "erin", signingSecret: new Uint8Array(randomBytes(32)) };
  const erinMember = { ...member("erin"), signingKey: pub(erin) };
  let grow: Roster;
  const noLifecycle = async () => (await svc().lifecycle.planOf("current")) === undefined;

  it("refuse without an approved change, with wrong dealers, or with a name whose keys changed; nothing is stored", async () => {
    grow = sorted({ threshold: 3, custodians: [...configRoster().custodians, erinMember] });
    // No change on file.
    let p = await problem(
      await postJson("/api/v1/lifecycle", { kind: "reshare", rosterDigest: rosterDigest(grow) }, ADMIN),
    );
    expect(p).toMatchObject({ status: 409, detail: expect.stringMatching(/no roster change/) });
    // One signature of the two it needs.
    await signChange(grow, ["bob"]);
    p = await problem(
      await postJson("/api/v1/lifecycle", { kind: "reshare", rosterDigest: rosterDigest(grow) }, ADMIN),
    );
    expect(p).toMatchObject({ status: 409, detail: expect.stringMatching(/1 of the 2/) });
    await signChange(grow, ["carol"]);
    // Approved now, but dealers must be exactly 2 members of the roster in force.
    for (const dealers of [["alice"], ["alice", "bob", "carol"], ["alice", "erin"], ["alice", "alice"]]) {
      p = await problem(
        await postJson(
          "/api/v1/lifecycle",
          { kind: "reshare", rosterDigest: rosterDigest(grow), dealers },
          ADMIN,
        ),
      );
      expect(p.status, dealers.join(",")).toBe(400);
    }
    // A name in both rosters with other keys is a repair, not a reshare.
    const rekey = sorted({
      threshold: 2,
      custodians: configRoster().custodians.map((c) => (c.name === "carol" ? member("carol") : c)),
    });
    await signChange(rekey, ["alice", "bob"]);
    p = await problem(
      await postJson("/api/v1/lifecycle", { kind: "reshare", rosterDigest: rosterDigest(rekey) }, ADMIN),
    );
    expect(p).toMatchObject({ status: 400, detail: expect.stringMatching(/repair/) });
    // Repair: the change must touch only the lost custodian's keys; helpers exclude it.
    p = await problem(
      await postJson(
        "/api/v1/lifecycle",
        { kind: "repair", lost: "bob", rosterDigest: rosterDigest(rekey) },
        ADMIN,
      ),
    );
    expect(p).toMatchObject({ status: 400, detail: expect.stringMatching(/not a repair of bob/) });
    p = await problem(
      await postJson(
        "/api/v1/lifecycle",
        { kind: "repair", lost: "carol", rosterDigest: rosterDigest(rekey), helpers: ["alice", "carol"] },
        ADMIN,
      ),
    );
    expect(p.status).toBe(400);
    p = await problem(
      await postJson(
        "/api/v1/lifecycle",
        { kind: "repair", lost: "zed", rosterDigest: rosterDigest(rekey) },
        ADMIN,
      ),
    );
    expect(p.status).toBe(400);
    expect(await noLifecycle()).toBe(true);
    // Admin only.
    expect((await postJson("/api/v1/lifecycle", { kind: "refresh" })).status).toBe(401);
  });

  it("a reshare plan names the kept dealers first, every new member as receiver, and lets new members read it", async () => {
    const res = await postJson(
      "/api/v1/lifecycle",
      { kind: "reshare", rosterDigest: rosterDigest(grow) },
      ADMIN,
    );
    expect(res.status).toBe(201);
    const v = (await res.json()) as LifecycleView;
    expect(v.plan).toMatchObject({ kind: "reshare", fromEpoch: 0, toEpoch: 1, dealers: ["alice", "bob"] });
    expect(v.plan.receivers).toEqual(["alice", "bob", "carol", "erin"]);
    expect(lifecycleStages(v.plan).map((s) => s.type)).toEqual([
      "lc/round1",
      "lc/round1-ack",
      "lc/round2",
      "lc/confirm",
    ]);
    // Another ceremony cannot start while this one runs.
    expect((await postJson("/api/v1/lifecycle", { kind: "refresh" }, ADMIN)).status).toBe(409);
    // A stranger's envelope is refused; an abort ends it (old shares untouched).
    const d = new Driver(v.plan, h.ca.signers, (await state()).publicPackage, new Map());
    // The new member reads the ceremony (it is in no ca-config yet); a stranger does not.
    const path = `/api/v1/lifecycle/${v.id}`;
    expect((await api(path, { headers: { authorization: signReadHeader(erin, "GET", path) } })).status).toBe(
      200,
    );
    const mpath = `${path}/messages?type=lc%2Fround1`;
    expect(
      (await api(mpath, { headers: { authorization: signReadHeader(erin, "GET", mpath) } })).status,
    ).toBe(200);
    const zed = { name: "zed", signingSecret: new Uint8Array(randomBytes(32)) };
    expect((await api(path, { headers: { authorization: signReadHeader(zed, "GET", path) } })).status).toBe(
      401,
    );
    expect(
      (
        await api("/api/v1/roster", {
          headers: { authorization: signReadHeader(erin, "GET", "/api/v1/roster") },
        })
      ).status,
    ).toBe(401);
    const outsider = { name: "erin", signingSecret: new Uint8Array(randomBytes(32)) };
    const forged = sealEnvelope(outsider, {
      type: "lc/abort",
      recipient: "*",
      scope: v.id,
      caKeyId: v.plan.caKeyId,
      body: { reason: "x", culprits: [] },
    });
    expect((await refused(svc().lifecycle.receive(v.id, forged))).status).toBe(400);
    const ended = await d.send("alice", "lc/abort", { reason: "changed my mind", culprits: [] });
    expect(ended).toMatchObject({ status: "failed", failure: { reason: "alice aborted: changed my mind" } });
    expect((await state()).state.epoch).toBe(0);
  });
});

/** Moves a ceremony's last stage change back past the deadline. */
async function backdate(ceremonyId: string) {
  await svc()
    .store.queryBuilder<LifecycleDatabase>()
    .updateTable("lifecycle_ceremonies")
    .set({ updated_at: new Date(Date.now() - LIFECYCLE_TIMEOUT_MS - 1000).toISOString() })
    .where("id", "=", ceremonyId)
    .execute();
}

describe("stuck ceremonies", () => {
  it("an admin cancels one (no culprits, audited); only an admin, only once", async () => {
    const d = await startRefresh();
    const path = `/api/v1/lifecycle/${d.plan.ceremonyId}/cancel`;
    expect((await postJson(path, { reason: "x" })).status).toBe(401);
    expect((await postJson(path, { reason: 5 }, ADMIN)).status).toBe(400);
    expect(
      (await api(path, { method: "POST", headers: { ...ADMIN, "content-type": "text/plain" }, body: "hi" }))
        .status,
    ).toBe(415);
    const res = await postJson(path, { reason: "bob is on holiday" }, ADMIN);
    expect(res.status).toBe(200);
    const v = (await res.json()) as LifecycleView;
    expect(v).toMatchObject({
      status: "failed",
      failure: { culprits: [], reason: expect.stringMatching(/^cancelled by an admin: bob is on holiday/) },
    });
    expect(await problem(await postJson(path, {}, ADMIN))).toMatchObject({
      status: 409,
      detail: expect.stringMatching(/already failed/),
    });
    const audit = await listAudit(svc().store, 0, 10_000);
    expect(
      audit.some(
        (e) =>
          e.kind === "lifecycle" &&
          e.subject === v.id &&
          /cancelled by an admin/.test(JSON.stringify(e.body)),
      ),
    ).toBe(true);
    // A bare POST (no body) cancels too, with no reason given.
    const next = await startRefresh();
    const bare = await api(`/api/v1/lifecycle/${next.plan.ceremonyId}/cancel`, {
      method: "POST",
      headers: ADMIN,
    });
    expect(bare.status).toBe(200);
    expect(((await bare.json()) as LifecycleView).failure?.reason).toMatch(/no reason given/);
  });

  it("one that has not moved for LIFECYCLE_TIMEOUT fails, naming the stage and who it waits for; the next can start", async () => {
    const d = await startRefresh();
    await d.round1();
    await d.send("alice", "lc/round1-ack", { transcriptHash: "00".repeat(32) });
    await backdate(d.plan.ceremonyId);
    // The next start finds it overdue and fails it first.
    const next = await startRefresh();
    const v = await svc().lifecycle.view(d.plan.ceremonyId);
    expect(v).toMatchObject({
      status: "failed",
      failure: {
        culprits: [],
        reason: "timed out in stage round1-ack waiting for bob, carol (no progress for 15 minutes)",
      },
    });
    // A message that comes too late finds it overdue (and is refused); so does a read.
    await backdate(next.plan.ceremonyId);
    expect(await refused(next.round1())).toMatchObject({
      status: 409,
      message: expect.stringMatching(/is failed/),
    });
    expect((await svc().lifecycle.view("current")).failure?.reason).toMatch(
      /^timed out in stage round1 waiting for alice, bob, carol/,
    );
    const late = await startRefresh();
    await backdate(late.plan.ceremonyId);
    expect((await svc().lifecycle.view(late.plan.ceremonyId)).status).toBe("failed");
    // A ceremony that moves is not timed out.
    const live = await startRefresh();
    await live.round1();
    expect((await svc().lifecycle.view(live.plan.ceremonyId)).status).toBe("round1-ack");
    await postJson(`/api/v1/lifecycle/${live.plan.ceremonyId}/cancel`, {}, ADMIN);
  });
});

describe("refresh", () => {
  it("a false complaint names the complainer", async () => {
    const d = await startRefresh();
    await d.round1();
    await d.ack();
    expect((await d.round2()).status).toBe("confirm");
    const v = await d.complain("bob", "alice");
    expect(v.status).toBe("failed");
    expect(v.failure).toMatchObject({ culprits: ["bob"], reason: expect.stringMatching(/false complaint/) });
    expect((await state()).state.epoch).toBe(0);
  });

  it("a bad dealt share is proved by the complaint and names its dealer", async () => {
    const d = await startRefresh();
    await d.round1();
    await d.ack();
    await d.round2({ from: "carol", to: "alice" });
    const v = await d.complain("alice", "carol");
    expect(v.failure).toMatchObject({ culprits: ["carol"], reason: expect.stringMatching(/does not match/) });
  });

  it("a dealing of the wrong degree fails round 1 naming the dealer", async () => {
    const d = await startRefresh();
    const v = await d.round1((n, b) =>
      n === "bob" ? { ...b, commitment: [...b.commitment!, b.commitment![0]!] } : b,
    );
    expect(v).toMatchObject({ status: "failed", failure: { culprits: ["bob"] } });
  });

  it("a confirmation of another package names the confirmer; the package in force stays", async () => {
    const before = await state();
    const d = await startRefresh();
    await d.round1();
    await d.ack();
    await d.round2();
    const v = await d.confirm("carol");
    expect(v.failure).toMatchObject({ culprits: ["carol"] });
    expect((await state()).publicPackageRaw).toBe(before.publicPackageRaw);
  });

  it("runs to completion: new package, same group key, epoch 1; epoch-0 offers refused, packages carry epoch 1", async () => {
    const before = await state();
    const d = await startRefresh();
    const stages: string[] = [(await d.round1()).status];
    stages.push((await d.ack()).status);
    stages.push((await d.round2()).status);
    // Only receivers confirm, and only in the confirm stage.
    expect((await refused(d.send("alice", "lc/round2", { shares: {} }))).status).toBe(409);
    const done = await d.confirm();
    expect(stages).toEqual(["round1-ack", "round2", "confirm"]);
    expect(done.status).toBe("complete");
    const after = await state();
    expect(after.stored).toBe(true);
    expect(after.state).toMatchObject({
      epoch: 1,
      ceremonyId: done.id,
      rosterDigest: before.state.rosterDigest,
    });
    expect(done.result).toEqual(after.state);
    expect(after.publicPackageRaw).not.toBe(before.publicPackageRaw);
    expect(groupPublicKey(after.publicPackage)).toEqual(groupPublicKey(before.publicPackage));
    expect(after.state.publicPackageDigest).toBe(publicPackageDigest(d.expected()));
    const stored = publicFromWire(PublicPackageWireSchema.parse(JSON.parse(after.publicPackageRaw)));
    expect(publicPackageDigest(stored)).toBe(after.state.publicPackageDigest);

    // The old custodians' offers (epoch 0, the default) are refused now.
    const old = h.ca.custodians.get("alice")!;
    const results = [];
    for (let i = 0; i < 3; i++) results.push(...(await old.link.round({ wait: 0, review: false })).results);
    expect(
      results.some(
        (r) => !r.ok && r.status === 409 && /key epoch 0.*epoch in force is 1/.test(r.detail ?? ""),
      ),
    ).toBe(true);

    // Custodians with their refreshed shares offer for epoch 1, and sign a CRL under the same key.
    currentSecrets = d.newSecrets();
    for (const n of NAMES) equip(n, currentSecrets.get(n)!, after.publicPackage, 1);
    const crlBefore = (await svc().store.latestCrl())?.number ?? 0;
    await svc().revocations.scheduleCrl();
    await exchangeUntil(h.ca, async () => ((await svc().store.latestCrl())?.number ?? 0) > crlBefore);
    const jobs = await svc().store.listSigningJobs("done");
    const last = jobs
      .filter((j) => j.kind === "crl")
      .sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : -1))[0]!;
    expect(last.signingPackage?.keyEpoch).toBe(1);
  }, 60_000);
});

/** Equips a custodian with a share of `epoch`: its offers name that epoch, and it refuses packages of another. */
function equip(name: string, secret: FrostSecret, pkg: FrostPublic, epoch: number) {
  const signer = h.ca.signers.get(name)!;
  const participant = new SigningParticipant(
    signer,
    { secret, public: pkg, caKeyId: h.ca.caKeyId!, threshold: 2, roster: NAMES, epoch },
    { crl: (t) => hexToBytes(t.tbs), leaf: (t) => hexToBytes(t.tbs), root: (t) => hexToBytes(t.tbs) },
    {},
    true,
  );
  const link = new ExchangeLink(
    (body: ExchangeRequest) => svc().exchange.exchange(body, undefined, body.custodian),
    name,
    participant,
  );
  h.ca.custodians.set(name, { name, signer, participant, link });
}

describe("roster in force vs ca-config", () => {
  it("the audit chain with lifecycle entries still verifies", async () => {
    const entries = await listAudit(svc().store, 0, 10_000);
    expect(entries.some((e) => e.kind === "lifecycle")).toBe(true);
    const verdict = verifyAuditChain(entries, { config: h.ca.config.config });
    expect(verdict.firstBroken).toBeUndefined();
    expect(verdict.ok).toBe(true);
  });

  it("a coordinator whose ca-config roster is not the roster in force signs nothing and says why", async () => {
    const before = await svc().store.getMeta(META_KEY_STATE);
    const ks = await state();
    const other = sorted({ threshold: 2, custodians: [...configRoster().custodians, member("frank")] });
    await svc().store.setMeta(
      META_KEY_STATE,
      canonicalJson({ ...ks.state, roster: other, rosterDigest: rosterDigest(other) }),
    );
    try {
      const res = await api("/api/v1/health");
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        status: "roster-mismatch",
        rosterMismatch: expect.stringMatching(/not the roster in force/),
      });
      expect(await svc().signing.refusal()).toMatch(/restart with the ca-config the custodians signed/);
      // A fresh participant has an empty nonce pool, so it offers at once (a full pool offers nothing).
      equip("bob", currentSecrets!.get("bob")!, ks.publicPackage, ks.state.epoch);
      const results = [];
      for (let i = 0; i < 3; i++)
        results.push(...(await h.ca.custodians.get("bob")!.link.round({ wait: 0, review: false })).results);
      expect(results.some((r) => !r.ok && r.status === 409 && /signs nothing/.test(r.detail ?? ""))).toBe(
        true,
      );
      expect(await svc().signing.formPackages()).toBe(0);
      const p = await problem(await postJson("/api/v1/lifecycle", { kind: "refresh" }, ADMIN));
      expect(p).toMatchObject({ status: 409, detail: expect.stringMatching(/not the roster in force/) });
      // The lifecycle and roster routes still answer.
      expect((await api("/api/v1/lifecycle/current", { headers: ADMIN })).status).toBe(200);
      expect((await api("/api/v1/roster", { headers: ADMIN })).status).toBe(200);
    } finally {
      await svc().store.setMeta(META_KEY_STATE, before!);
    }
    expect((await api("/api/v1/health")).status).toBe(200);
  });
});

/** A repair of carol (new identity keys) planned and run through round 1 and its acks. */
async function repairThroughRound1() {
  const carolNew = { name: "carol", signingSecret: new Uint8Array(randomBytes(32)) };
  const rekeyed = sorted({
    threshold: 2,
    custodians: configRoster().custodians.map((c) =>
      c.name === "carol" ? { ...member("carol"), signingKey: pub(carolNew) } : c,
    ),
  });
  await signChange(rekeyed, ["alice", "bob"]);
  const before = await state();
  const res = await postJson(
    "/api/v1/lifecycle",
    { kind: "repair", lost: "carol", rosterDigest: rosterDigest(rekeyed) },
    ADMIN,
  );
  expect(res.status).toBe(201);
  const v = (await res.json()) as LifecycleView;
  const signers = new Map([...h.ca.signers, ["carol", carolNew]]);
  const d = new Driver(v.plan, signers, before.publicPackage, currentSecrets!);
  const helpers = v.plan.dealers;
  const keys = new Map<string, HpkeKeyPair>();
  const dealt = new Map<string, ReturnType<typeof repairDeal>>();
  for (const n of participants(v.plan)) {
    keys.set(n, await generateHpkeKeyPair());
    d.parties.get(n)!.hpke = keys.get(n)!;
    let pieceCommitments: Record<string, string> | null = null;
    if (helpers.includes(n)) {
      const deal = repairDeal(currentSecrets!.get(n)!, helpers.map(id), id("carol"));
      dealt.set(n, deal);
      pieceCommitments = Object.fromEntries(helpers.map((x) => [x, bytesToHex(deal.commitments[id(x)]!)]));
    }
    await d.send(n, "lc/round1", {
      planHash: planHash(v.plan),
      hpkePublicKey: bytesToHex(keys.get(n)!.publicKey),
      commitment: null,
      pieceCommitments,
    });
  }
  await d.ack();
  const seal = (to: string, value: Uint8Array, from: string, stage: "lc/round2" | "lc/round3") =>
    sealLcValue(keys.get(to)!.publicKey, value, { ceremonyId: v.id, stage, sender: from, recipient: to });
  const round2 = async (n: string) => {
    const shares: Record<string, { enc: string; ciphertext: string }> = {};
    for (const x of helpers) shares[x] = await seal(x, dealt.get(n)!.pieces[id(x)]!, n, "lc/round2");
    return d.send(n, "lc/round2", { shares });
  };
  return { v, d, rekeyed, before, helpers, keys, dealt, seal, round2 };
}

describe("approvals", () => {
  it("only custodians of the roster in force count towards t", async () => {
    const before = (await svc().store.getMeta(META_KEY_STATE))!;
    const ks = await state();
    // The roster in force without carol (as after a reshare that removed her).
    const without = sorted({
      threshold: 2,
      custodians: configRoster().custodians.filter((c) => c.name !== "carol"),
    });
    await svc().store.setMeta(
      META_KEY_STATE,
      canonicalJson({ ...ks.state, roster: without, rosterDigest: rosterDigest(without) }),
    );
    try {
      const r = svc().requests;
      const req = await r.submit({
        requester: r.requesterFor("dev"),
        profile: "server",
        csr: await makeCsr(["approvals.example.internal"]),
      });
      await r.decide(req.id, approval(h.ca, "carol", req));
      const v = await r.decide(req.id, approval(h.ca, "alice", req));
      expect(v.status).toBe("pending");
    } finally {
      await svc().store.setMeta(META_KEY_STATE, before);
    }
  });
});

describe("repair", () => {
  it("the lost custodian complaining about a helper's round-2 pieces (sealed to helpers only) is a false complaint naming it", async () => {
    const r = await repairThroughRound1();
    await r.round2("alice");
    const v = await r.d.send("carol", "lc/complaint", {
      accused: "alice",
      stage: "lc/round2",
      reason: "no piece for me",
      hpkePrivateKey: bytesToHex(r.keys.get("carol")!.privateKey),
    });
    expect(v.status).toBe("failed");
    expect(v.failure).toMatchObject({
      culprits: ["carol"],
      reason: expect.stringMatching(/carol receives no lc\/round2 value from alice: false complaint/),
    });
  });

  it("restores carol's share for her new identity keys; the key state names her new keys, the package stays", async () => {
    const { v, d, rekeyed, before, helpers, dealt, seal, round2 } = await repairThroughRound1();
    expect(v.plan).toMatchObject({
      dealers: ["alice", "bob"],
      receivers: ["carol"],
      fromEpoch: 1,
      toEpoch: 1,
    });
    expect(lifecycleStages(v.plan).map((s) => s.type)).toContain("lc/round3");
    for (const n of helpers) await round2(n);
    expect((await svc().lifecycle.view(v.id)).status).toBe("round3");
    for (const n of helpers) {
      const sigma = repairSigma(helpers.map((x) => dealt.get(x)!.pieces[id(n)]!));
      await d.send(n, "lc/round3", { shares: { carol: await seal("carol", sigma, n, "lc/round3") } });
    }
    expect((await svc().lifecycle.view(v.id)).status).toBe("confirm");
    const done = await d.send("carol", "lc/confirm", {
      publicPackageDigest: publicPackageDigest(before.publicPackage),
      publicPackage: publicToWire(before.publicPackage),
    });
    expect(done.status).toBe("complete");
    const after = await state();
    expect(after.state).toMatchObject({ epoch: 1, rosterDigest: rosterDigest(rekeyed), ceremonyId: v.id });
    expect(after.publicPackageRaw).toBe(before.publicPackageRaw);
    // This coordinator's ca-config still has carol's old keys: it signs nothing until restarted.
    expect(await svc().signing.refusal()).toMatch(/not the roster in force/);
  });
});
