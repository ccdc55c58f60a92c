// The signing pipeline in one process, with real key shares, real envelopes and the real SQLite
// store (docs/signing-pipeline.md): commitments offered ahead of time, packages formed from open
// offers, batched exchanges, a bad share named and routed around while the rest of the batch
// issues, withdrawals and restarts that re-form only what they must, and no commitment ever in two
// packages.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { parseCaConfig, type LoadedConfig } from "../../src/config/load.ts";
import type { Store } from "../../src/coordinator/store/types.ts";
import { storeKinds, type StoreKind } from "../helpers/stores.ts";
import { CoordinatorHooks } from "../../src/coordinator/hooks.ts";
import { SigningService } from "../../src/coordinator/signing.ts";
import { ExchangeService } from "../../src/coordinator/exchange.ts";
import type { SigningJobRecord } from "../../src/coordinator/store/types.ts";
import { SigningParticipant, type SigningHooks } from "../../src/custodian/signer.ts";
import { ExchangeLink } from "../../src/custodian/exchange.ts";
import { publicToWire, hexToBytes } from "../../src/threshold/encoding.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import {
  openEnvelope as openWith,
  rosterKeys,
  sealEnvelope,
  type SignedEnvelope,
} from "../../src/protocol/envelope.ts";
import { inMemoryDkg } from "../helpers/dkg.ts";

const NAMES = ["alice", "bob", "carol", "dave", "erin"];
const T = 3;
const KEY_ID = "c".repeat(64);
const dkg = inMemoryDkg(NAMES, T);
const groupKey = groupPublicKey(dkg[0]!.key.public);
const identities = new Map(NAMES.map((n) => [n, new Uint8Array(randomBytes(32))]));

function config(): LoadedConfig {
  const doc = parseYaml(readFileSync(new URL("../../ca-config/ca.yaml", import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;
  doc.threshold = T;
  doc.custodians = NAMES.map((name) => ({
    name,
    signingKey: Buffer.from(ed25519.getPublicKey(identities.get(name)!)).toString("base64url"),
    hpkeKey: Buffer.from(randomBytes(32)).toString("base64url"),
  }));
  return parseCaConfig(toYaml(doc));
}

const openEnvelope = (e: SignedEnvelope) => openWith(e, rosterKeys(config().config.custodians));

interface Custodian {
  name: string;
  participant: SigningParticipant;
  link: ExchangeLink;
  /** Envelopes per exchange this custodian sent. */
  batches: number[];
}

let dir: string;
let store: Store;
let signing: SigningService;
let exchange: ExchangeService;
let finished: Map<string, { signature: Uint8Array | null; failure?: string }>;
let custodians: Map<string, Custodian>;

function custodian(name: string, hooks: SigningHooks = {}, supersede = true): Custodian {
  const key = dkg.find((d) => d.name === name)!.key;
  const participant = new SigningParticipant(
    { name, signingSecret: identities.get(name)! },
    { secret: key.secret, public: key.public, caKeyId: KEY_ID, threshold: T, roster: NAMES },
    // A test job kind that signs the bytes it is given: this file tests the pipeline, not derivation.
    { root: (task) => hexToBytes(task.tbs) },
    hooks,
    supersede,
  );
  const c: Custodian = { name, participant, link: undefined as unknown as ExchangeLink, batches: [] };
  c.link = new ExchangeLink(
    async (body) => {
      c.batches.push(body.envelopes.length);
      return exchange.exchange(body, undefined, body.custodian);
    },
    name,
    participant,
  );
  return c;
}

/** One exchange round for one custodian: send what is queued, sign what came back. */
async function round(c: Custodian): Promise<void> {
  const res = await c.link.round({ wait: 0, review: false });
  const batch = await c.participant.signTasks(res.tasks);
  c.link.send(...batch.envelopes);
}

async function runUntilDone(jobs: string[], maxRounds = 60, who = [...custodians.values()]): Promise<number> {
  for (let i = 0; i < maxRounds; i++) {
    for (const c of who) await round(c);
    await new Promise((r) => setImmediate(r)); // let scheduled work (package forming) run, as a server would
    if (jobs.every((j) => finished.has(j))) return i + 1;
  }
  throw new Error(
    `not finished after ${maxRounds} rounds: ${jobs.filter((j) => !finished.has(j)).length} open`,
  );
}

const job = (id: string) => store.getSigningJob(id) as Promise<SigningJobRecord>;
const events = async (id: string) => (await job(id)).events;
/** Whether a job's current package names this custodian among its signers. */
const names = (j: SigningJobRecord, who: string) => j.signingPackage?.signers.includes(who) ?? false;

async function createJobs(n: number, eligible = NAMES): Promise<{ id: string; tbs: Uint8Array }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const tbs = new Uint8Array(randomBytes(300));
    out.push({
      id: await signing.createJob({
        kind: "root",
        subjectRef: `subject-${i}`,
        tbs,
        // Well-formed root parameters (the store checks them); the test signer ignores them.
        params: {
          ceremonyId: `subject-${i}`,
          serial: "01",
          notBefore: "2026-01-01T00:00:00.000Z",
          notAfter: "2036-01-01T00:00:00.000Z",
        },
        eligible,
      }),
      tbs,
    });
  }
  return out;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "tca-pipeline-"));
  store = await kind.open();
  const cfg = config();
  const hooks = new CoordinatorHooks(store, NAMES);
  signing = new SigningService(store, cfg, { shareTimeoutMs: 2_000, caKeyId: async () => KEY_ID }, hooks);
  await store.setMeta("ca.publicKeyPackage", JSON.stringify(publicToWire(dkg[0]!.key.public)));
  finished = new Map();
  signing.onComplete("root", async (j, signature, failure) => {
    finished.set(j.id, { signature, ...(failure ? { failure } : {}) });
  });
  const noRequests = {
    decideOpened: async () => undefined,
    reviewItems: async () => ({ items: [], cursor: "" }),
  };
  exchange = new ExchangeService(store, cfg, signing, noRequests, hooks);
  custodians = new Map(NAMES.map((n) => [n, custodian(n)]));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

let kind: StoreKind;
describe.each(await storeKinds("signing pipeline"))("signing pipeline on $name", (k) => {
  beforeAll(() => {
    kind = k;
  });
  it("signs a burst of jobs with one round trip each, batched, every signature valid", async () => {
    const jobs = await createJobs(300);
    // Round 1 only offers (nothing is approved yet in this test's sense); later rounds sign.
    const rounds = await runUntilDone(jobs.map((j) => j.id));
    for (const j of jobs) {
      const f = finished.get(j.id)!;
      expect(f.failure).toBeUndefined();
      expect(ed25519.verify(f.signature!, j.tbs, groupKey)).toBe(true);
    }
    // 300 jobs in a handful of rounds: shares travel many to an exchange.
    expect(rounds).toBeLessThan(40);
    expect(Math.max(...[...custodians.values()].flatMap((c) => c.batches))).toBeGreaterThan(20);
    // Load spreads: every custodian signed a fair part.
    for (const c of custodians.values()) expect(c.batches.reduce((a, b) => a + b, 0)).toBeGreaterThan(60);
  });

  it("never puts one commitment in two packages, across re-formed attempts", async () => {
    const jobs = await createJobs(40);
    // bob never answers: every package naming him times out and re-forms with fresh offers.
    const others = [...custodians.values()].filter((c) => c.name !== "bob");
    await round(custodians.get("bob")!);
    for (let i = 0; i < 3; i++) for (const c of others) await round(c);
    await signing.expireStale(Date.now() + 10_000);
    await runUntilDone(
      jobs.map((j) => j.id),
      60,
      others,
    );
    const seen = new Set<string>();
    for (const j of jobs) {
      const rec = await job(j.id);
      for (let a = 0; a <= rec.attempt; a++)
        for (const o of await store.listOffersInJob(j.id, a)) {
          expect(seen.has(o.commitmentKey), `commitment in two packages (job ${j.id})`).toBe(false);
          seen.add(o.commitmentKey);
        }
    }
    const timedOut = await Promise.all(
      jobs.map(async (j) => (await events(j.id)).some((e) => e.kind === "timeout")),
    );
    expect(timedOut.some(Boolean)).toBe(true);
    // Silence is not a strike: bob timed out, and is left out of no job.
    for (const j of jobs) expect((await job(j.id)).excluded).toEqual([]);
  });

  it("a batch with one bad share names that custodian and still issues the others", async () => {
    const jobs = await createJobs(29);
    // The target job has exactly three approvers, so carol is in its first package.
    const [target] = await createJobs(1, ["alice", "bob", "carol"]);
    jobs.push(target!);
    custodians.set(
      "carol",
      custodian("carol", {
        tamperShare: (task, share) =>
          task.id === target!.id ? Uint8Array.from(share, (b, i) => (i === 0 ? b ^ 0x55 : b)) : share,
      }),
    );
    for (let i = 0; i < 4; i++) for (const c of custodians.values()) await round(c);
    const ev = await events(target!.id);
    expect(ev).toContainEqual(expect.objectContaining({ kind: "bad-share", custodian: "carol" }));
    expect((await job(target!.id)).excluded).toEqual(["carol"]);
    // A fourth custodian approves later (as a person would), and the job completes without carol.
    await signing.addEligible(target!.id, "dave");
    await runUntilDone(jobs.map((j) => j.id)).catch(async (e) => {
      throw e;
    });
    for (const j of jobs) {
      const f = finished.get(j.id)!;
      expect(f.failure, j.id).toBeUndefined();
      expect(ed25519.verify(f.signature!, j.tbs, groupKey)).toBe(true);
    }
    // Nobody else was blamed anywhere, and carol only for the job whose share she broke.
    for (const j of jobs) {
      const blamed = (await events(j.id)).filter((e) => e.kind === "bad-share").map((e) => e.custodian);
      expect(blamed).toEqual(j.id === target!.id ? ["carol"] : []);
    }
    // carol's other shares in the same batches counted.
    const carolSigned = await Promise.all(
      jobs.map(async (j) =>
        (await events(j.id)).some(
          (e) => e.kind === "package" && String((e as { detail?: string }).detail).includes("carol"),
        ),
      ),
    );
    expect(carolSigned.filter(Boolean).length).toBeGreaterThan(2);
  });

  it("a withdrawing process re-forms only the attempts that hold its commitments, once", async () => {
    const jobs = await createJobs(10);
    for (const c of custodians.values()) await round(c); // offers
    for (const c of custodians.values()) await round(c); // packages formed and delivered
    const pending = await Promise.all(jobs.map((j) => job(j.id)));
    const withAlice = pending.filter((j) => names(j, "alice"));
    const withoutAlice = pending.filter((j) => j.signingPackage && !names(j, "alice"));
    expect(withAlice.length).toBeGreaterThan(0);
    // alice shuts down before answering her tasks.
    const alice = custodians.get("alice")!;
    const withdraw: SignedEnvelope = alice.participant.withdrawAll();
    const res = await exchange.exchange(
      {
        custodian: "alice",
        instance: alice.participant.instance,
        envelopes: [withdraw],
        wait: 0,
      },
      undefined,
      "alice",
    );
    expect(res.results).toEqual([expect.objectContaining({ ok: true })]);
    for (const j of withAlice) {
      const now = await job(j.id);
      if (finished.has(j.id)) continue;
      expect(now.attempt).toBe(j.attempt + 1);
      expect(await events(j.id)).toContainEqual(
        expect.objectContaining({ kind: "withdrawn", custodian: "alice" }),
      );
    }
    for (const j of withoutAlice) expect((await job(j.id)).attempt).toBe(j.attempt);
    // The same withdrawal again (a replay, or a resend after a lost answer) is answered as the first
    // time and resets nothing.
    const before = await Promise.all(jobs.map(async (j) => (await job(j.id)).attempt));
    const again = await exchange.exchange(
      {
        custodian: "alice",
        instance: alice.participant.instance,
        envelopes: [withdraw],
        wait: 0,
      },
      undefined,
      "alice",
    );
    expect(again.results[0]).toMatchObject({ ok: true, status: 202 });
    expect(await Promise.all(jobs.map(async (j) => (await job(j.id)).attempt))).toEqual(before);
    // The others finish every job without alice.
    await runUntilDone(
      jobs.map((j) => j.id),
      40,
      [...custodians.values()].filter((c) => c.name !== "alice"),
    );
  });

  it("a restarted agent voids its predecessor's offers at once; its jobs re-form with fresh commitments", async () => {
    const jobs = await createJobs(10);
    // dave offers first, so the packages formed in this round name him.
    const first = [custodians.get("dave")!, ...[...custodians.values()].filter((c) => c.name !== "dave")];
    for (const c of first) await round(c);
    // Everyone but dave answers: the jobs whose package names dave stay open.
    for (const c of custodians.values()) if (c.name !== "dave") await round(c);
    for (const c of custodians.values()) if (c.name !== "dave") await round(c);
    const held = (await Promise.all(jobs.map((j) => job(j.id)))).filter((j) => names(j, "dave"));
    expect(held.length).toBeGreaterThan(0);
    // dave is SIGKILLed (no withdrawal) and starts again: a new process, no nonces.
    custodians.set("dave", custodian("dave"));
    await round(custodians.get("dave")!);
    for (const j of held) {
      if (finished.has(j.id)) continue;
      expect((await job(j.id)).attempt).toBeGreaterThan(j.attempt);
    }
    await runUntilDone(jobs.map((j) => j.id));
    for (const j of jobs) expect(finished.get(j.id)!.failure).toBeUndefined();
  });

  it("refuses an envelope from another custodian inside an exchange, and a share outside the package", async () => {
    const [j] = await createJobs(1);
    const bob = custodians.get("bob")!;
    const offer = bob.participant.offer()!;
    const res = await exchange.exchange(
      {
        custodian: "alice",
        instance: "0".repeat(32),
        envelopes: [offer],
        wait: 0,
      },
      undefined,
      "alice",
    );
    expect(res.results[0]).toMatchObject({ ok: false, status: 403 });
    // erin is not in the job's package (there is none yet): her share is refused and changes nothing.
    const share = [
      sealEnvelope(
        { name: "erin", signingSecret: identities.get("erin")! },
        {
          type: "sign/share",
          recipient: "coordinator",
          scope: j!.id,
          caKeyId: KEY_ID,
          body: { jobId: j!.id, attempt: 0, share: "01".padEnd(64, "0") },
        },
      ),
    ];
    const r2 = await exchange.exchange(
      {
        custodian: "erin",
        instance: custodians.get("erin")!.participant.instance,
        envelopes: share,
        wait: 0,
      },
      undefined,
      "erin",
    );
    expect(r2.results).toEqual([expect.objectContaining({ ok: false, status: 409 })]);
    expect(r2.results[0]!.detail).toMatch(/not in the current signing package/);
    expect((await job(j!.id)).status).toBe("signing");
  });

  it("answers an envelope sent again after a lost answer as the first time, and changes nothing", async () => {
    const bob = custodians.get("bob")!;
    const offer = bob.participant.offer()!;
    const send = () =>
      exchange.exchange(
        {
          custodian: "bob",
          instance: bob.participant.instance,
          envelopes: [offer],
          wait: 0,
        },
        undefined,
        "bob",
      );
    expect((await send()).results[0]).toMatchObject({ ok: true });
    const open = (await store.listOffersOf("bob", ["offered"])).map((o) => o.commitmentKey);
    expect(open.length).toBeGreaterThan(0);
    expect((await send()).results[0]).toMatchObject({ ok: true, status: 202 }); // e.g. to another replica
    expect((await store.listOffersOf("bob", ["offered"])).map((o) => o.commitmentKey)).toEqual(open);
  });

  it("caps the open offers of a process, so nobody can crowd the others out of packages", async () => {
    const bob = custodians.get("bob")!;
    await round(bob); // 32 offered
    const more = new SigningParticipant(
      { name: "bob", signingSecret: identities.get("bob")! },
      {
        secret: dkg[1]!.key.secret,
        public: dkg[1]!.key.public,
        caKeyId: KEY_ID,
        threshold: T,
        roster: NAMES,
      },
      {},
    );
    // A second batch of offers under bob's first process id (sealed by bob: a malicious custodian).
    const extra = sealEnvelope(
      { name: "bob", signingSecret: identities.get("bob")! },
      {
        type: "sign/offer",
        recipient: "coordinator",
        scope: bob.participant.instance,
        caKeyId: KEY_ID,
        body: {
          instance: bob.participant.instance,
          batch: 99,
          supersede: false,
          commitments: (openEnvelope(more.offer(4)!).body as { commitments: unknown[] }).commitments,
          expiresAt: new Date(Date.now() + 60_000).toISOString(),
        },
      },
    );
    const res = await exchange.exchange(
      {
        custodian: "bob",
        instance: bob.participant.instance,
        envelopes: [extra],
        wait: 0,
      },
      undefined,
      "bob",
    );
    expect(res.results[0]).toMatchObject({
      ok: false,
      status: 409,
      detail: expect.stringMatching(/at most 32/),
    });
    expect(res.offered).toHaveLength(32);
  });

  it("leaves a custodian out of a job after it cost the job two attempts", async () => {
    // Exactly t approvers: alice is in every package until she is left out.
    const [j] = await createJobs(1, ["alice", "bob", "carol"]);
    // alice keeps offering and withdrawing (a new process each time, as a flapping agent would).
    for (let i = 0; i < 4 && !(await job(j!.id)).excluded.includes("alice"); i++) {
      const alice = custodian("alice", {}, false);
      custodians.set("alice", alice);
      const order = [alice, ...["bob", "carol"].map((n) => custodians.get(n)!)];
      for (const c of order) await round(c);
      const rec = await job(j!.id);
      if (names(rec, "alice"))
        await exchange.exchange(
          {
            custodian: "alice",
            instance: alice.participant.instance,
            envelopes: [alice.participant.withdrawAll()],
            wait: 0,
          },
          undefined,
          "alice",
        );
    }
    const rec = await job(j!.id);
    const withdrawn = (await events(j!.id)).filter((e) => e.kind === "withdrawn" && e.custodian === "alice");
    expect(withdrawn.length).toBeGreaterThanOrEqual(2);
    expect(rec.excluded).toEqual(["alice"]);
    // A fourth custodian approves later, and the others finish it.
    await signing.addEligible(j!.id, "dave");
    await runUntilDone(
      [j!.id],
      20,
      ["bob", "carol", "dave"].map((n) => custodians.get(n)!),
    );
    expect(finished.get(j!.id)!.failure).toBeUndefined();
  });

  it("refuses a share whose envelope names another job than its body", async () => {
    const [a, b] = await createJobs(2);
    for (const c of custodians.values()) await round(c);
    const rec = await job(a!.id);
    const signer = rec.signingPackage!.signers[0]!;
    const env = sealEnvelope(
      { name: signer, signingSecret: identities.get(signer)! },
      {
        type: "sign/share",
        recipient: "coordinator",
        scope: b!.id,
        caKeyId: KEY_ID,
        body: { jobId: a!.id, attempt: rec.attempt, share: "01".padEnd(64, "0") },
      },
    );
    const res = await exchange.exchange(
      {
        custodian: signer,
        instance: custodians.get(signer)!.participant.instance,
        envelopes: [env],
        wait: 0,
      },
      undefined,
      signer,
    );
    expect(res.results[0]).toMatchObject({
      ok: false,
      status: 400,
      detail: expect.stringMatching(/another job/),
    });
  });
});
