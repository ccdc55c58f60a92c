// The audit chain across a roster change (docs/key-lifecycle.md, docs/audit.md): a real coordinator
// in process runs the DKG, then a repair that gives carol new identity keys (driven here by a tiny
// participant driver over the lifecycle service), then — restarted with the ca-config the custodians
// signed, on the same database — a CRL that carol signs with her new key. The offline verifier
// follows the roster along the chain: the DKG's envelopes check under carol's old key, the CRL's
// under her new one; the chain must end at the ca-config's roster; a roster change with fewer than t
// valid signatures breaks the chain at the entry that carries it.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { canonicalJson } from "../../src/common/canonical-json.ts";
import { bytesToHex } from "../../src/common/hex.ts";
import { listAudit } from "../../src/coordinator/audit/log.ts";
import { createServices } from "../../src/coordinator/services.ts";
import type { DkgResult } from "../../src/custodian/dkg-runner.ts";
import { chainEntry, verifyAuditChain, type AuditEntry } from "../../src/protocol/audit.ts";
import { sealEnvelope, type Signer } from "../../src/protocol/envelope.ts";
import { generateHpkeKeyPair, type HpkeKeyPair } from "../../src/protocol/hpke.ts";
import {
  participants,
  planHash,
  sealLcValue,
  type LcRound1Body,
  type LifecycleMessageType,
  type LifecyclePlan,
} from "../../src/protocol/lifecycle.ts";
import {
  rosterDigest,
  rosterOf,
  signRosterChange,
  type Roster,
  type RosterChangeStatement,
} from "../../src/protocol/roster.ts";
import { publicToWire } from "../../src/threshold/encoding.ts";
import { publicPackageDigest, repairDeal, repairSigma } from "../../src/threshold/lifecycle.ts";
import { identifierForName as id } from "../../src/threshold/suite.ts";
import {
  equipCustodians,
  exchangeUntil,
  newCoordinator,
  runDkg,
  testConfig,
  type InProcessCa,
} from "../helpers/in-process-ca.ts";

const NAMES = ["alice", "bob", "carol"];
const b64 = (k: Uint8Array) => Buffer.from(k).toString("base64url");

let before: InProcessCa; // the coordinator under the DKG's ca-config
let after: InProcessCa; // the same database, restarted with the ca-config the custodians signed
let entries: AuditEntry[];

/** Runs a repair of carol's share for her new identity keys through the lifecycle service. */
async function repairCarol(ca: InProcessCa, dkg: Map<string, DkgResult>, carolNew: Signer, rekeyed: Roster) {
  const s = ca.services;
  const ks = (await s.keyState.current())!;
  const statement: RosterChangeStatement = {
    caKeyId: ks.caKeyId,
    from: ks.state.rosterDigest,
    to: rosterDigest(rekeyed),
    roster: rekeyed,
    basis: ks.state.ceremonyId,
  };
  for (const n of ["alice", "bob"])
    await s.roster.submit({ statement, signature: signRosterChange(ca.signers.get(n)!, statement) });
  const v = await s.lifecycle.start({ kind: "repair", lost: "carol", rosterDigest: rosterDigest(rekeyed) });
  const plan: LifecyclePlan = v.plan;
  const signers = new Map([...ca.signers, ["carol", carolNew]]);
  const send = (from: string, type: LifecycleMessageType, body: unknown) =>
    s.lifecycle.receive(
      plan.ceremonyId,
      sealEnvelope(signers.get(from)!, {
        type,
        recipient: "*",
        scope: plan.ceremonyId,
        caKeyId: plan.caKeyId,
        body,
      }),
    );
  const helpers = plan.dealers;
  const keys = new Map<string, HpkeKeyPair>();
  const dealt = new Map<string, ReturnType<typeof repairDeal>>();
  const round1 = new Map<string, LcRound1Body>();
  for (const n of participants(plan)) {
    keys.set(n, await generateHpkeKeyPair());
    let pieceCommitments: Record<string, string> | null = null;
    if (helpers.includes(n)) {
      const deal = repairDeal(dkg.get(n)!.secret, helpers.map(id), id("carol"));
      dealt.set(n, deal);
      pieceCommitments = Object.fromEntries(helpers.map((x) => [x, bytesToHex(deal.commitments[id(x)]!)]));
    }
    const body: LcRound1Body = {
      planHash: planHash(plan),
      hpkePublicKey: bytesToHex(keys.get(n)!.publicKey),
      commitment: null,
      pieceCommitments,
    };
    round1.set(n, body);
    await send(n, "lc/round1", body);
  }
  const transcriptHash = createHash("sha256")
    .update(planHash(plan))
    .update(canonicalJson([...round1].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, b]) => b)))
    .digest("hex");
  for (const n of participants(plan)) await send(n, "lc/round1-ack", { transcriptHash });
  const seal = (to: string, value: Uint8Array, from: string, stage: "lc/round2" | "lc/round3") =>
    sealLcValue(keys.get(to)!.publicKey, value, {
      ceremonyId: plan.ceremonyId,
      stage,
      sender: from,
      recipient: to,
    });
  for (const n of helpers) {
    const shares: Record<string, { enc: string; ciphertext: string }> = {};
    for (const x of helpers) shares[x] = await seal(x, dealt.get(n)!.pieces[id(x)]!, n, "lc/round2");
    await send(n, "lc/round2", { shares });
  }
  for (const n of helpers) {
    const sigma = repairSigma(helpers.map((x) => dealt.get(x)!.pieces[id(n)]!));
    await send(n, "lc/round3", { shares: { carol: await seal("carol", sigma, n, "lc/round3") } });
  }
  const done = await send("carol", "lc/confirm", {
    publicPackageDigest: publicPackageDigest(ks.publicPackage),
    publicPackage: publicToWire(ks.publicPackage),
  });
  expect(done.status).toBe("complete");
}

beforeAll(async () => {
  before = await newCoordinator(NAMES, 2);
  const started = await before.services.ceremonies.start();
  const results = await runDkg(before);
  equipCustodians(before, results);
  await exchangeUntil(
    before,
    async () => (await before.services.ceremonies.view(started.id)).status === "complete",
  );
  const dkg = new Map(NAMES.map((n, i) => [n, results[i]!]));

  const carolNew: Signer = { name: "carol", signingSecret: new Uint8Array(randomBytes(32)) };
  const rekeyed: Roster = {
    threshold: 2,
    custodians: rosterOf(before.config.config).custodians.map((c) =>
      c.name === "carol"
        ? {
            name: "carol",
            signingKey: b64(ed25519.getPublicKey(carolNew.signingSecret)),
            hpkeKey: b64(randomBytes(32)),
          }
        : c,
    ),
  };
  await repairCarol(before, dkg, carolNew, rekeyed);

  // The operator's step: restart with the ca-config the custodians signed (same database).
  const { config } = testConfig(NAMES, 2, [], (doc) => {
    doc.custodians = rekeyed.custodians;
  });
  before.services.hooks.close();
  const store = before.services.store;
  const services = createServices(store, config, { shareTimeoutMs: 60_000 });
  after = {
    ...before,
    config,
    services,
    signers: new Map([...before.signers, ["carol", carolNew]]),
    custodians: new Map(),
    close: async () => {
      services.hooks.close();
      await store.close();
    },
  };
  // A repair restores carol's share itself: the DKG's shares sign on.
  equipCustodians(after, results);
  const repairedAt = (await listAudit(store, 0, 10_000)).at(-1)!.seq;
  const crlBefore = (await store.latestCrl())?.number ?? 0;
  await services.revocations.scheduleCrl();
  await exchangeUntil(after, async () => ((await store.latestCrl())?.number ?? 0) > crlBefore);
  // Until a signature after the repair has carol among its signers (the coordinator picks them
  // from the offers it holds): her share envelope is signed with her new key.
  const carolSigned = async () =>
    (await listAudit(store, 0, 10_000)).some(
      (e) =>
        e.kind === "signature" &&
        e.seq > repairedAt &&
        (e.body as { signers: string[] }).signers.includes("carol"),
    );
  for (let i = 0; i < 5 && !(await carolSigned()); i++) {
    const n = (await store.latestCrl())?.number ?? 0;
    await services.revocations.scheduleCrl();
    await exchangeUntil(after, async () => ((await store.latestCrl())?.number ?? 0) > n);
  }
  entries = await listAudit(store, 0, 10_000);
}, 120_000);
afterAll(async () => after?.close());

const seqOf = (event: string) =>
  entries.find((e) => e.kind === "lifecycle" && (e.body as { event: string }).event === event)!.seq;

/** The chain with entry `seq`'s body changed and every hash from there on made again. */
function tampered(seq: number, edit: (body: Record<string, unknown>) => void): AuditEntry[] {
  const out: AuditEntry[] = entries.slice(0, seq - 1);
  for (const e of entries.slice(seq - 1)) {
    const body = JSON.parse(JSON.stringify(e.body)) as Record<string, unknown>;
    if (e.seq === seq) edit(body);
    const prev = out.at(-1);
    out.push(
      chainEntry(prev ? { seq: prev.seq, hash: prev.hash } : null, {
        at: e.at,
        kind: e.kind,
        ...(e.subject !== undefined ? { subject: e.subject } : {}),
        body,
      }),
    );
  }
  return out;
}

describe("the audit chain across a repair (carol's identity keys change)", () => {
  it("holds the DKG, the repair and a CRL that carol signed with her new key", () => {
    const done = seqOf("lifecycle-complete");
    expect(entries.some((e) => e.kind === "ceremony" && e.seq < done)).toBe(true);
    expect(entries.some((e) => e.kind === "crl" && e.seq > done)).toBe(true);
    const sig = entries.find(
      (e) =>
        e.kind === "signature" && e.seq > done && (e.body as { signers: string[] }).signers.includes("carol"),
    );
    expect(sig).toBeDefined();
  });

  it("verifies with the ca-config the custodians signed", () => {
    const v = verifyAuditChain(entries, { config: after.config.config });
    expect(v.firstBroken).toBeUndefined();
    expect(v).toMatchObject({ ok: true, checked: entries.length });
  });

  it("with the DKG's ca-config, says the chain ends with another roster", () => {
    const v = verifyAuditChain(entries, { config: before.config.config });
    expect(v.ok).toBe(false);
    expect(v.firstBroken).toMatchObject({
      seq: seqOf("lifecycle-complete"),
      reason: expect.stringMatching(
        /the chain ends with roster [0-9a-f]{16}… .*; the ca-config given has roster/,
      ),
    });
    // A prefix (the console's bounded check) is not compared with ca-config at its end.
    const head = entries.slice(0, seqOf("lifecycle-started") - 1);
    expect(verifyAuditChain(head, { config: before.config.config, prefix: true }).ok).toBe(true);
  });

  it("a roster change with fewer than t valid signatures breaks the chain at its plan", () => {
    const at = seqOf("lifecycle-started");
    const chain = tampered(at, (b) => {
      const change = (b.plan as { rosterChange: { signatures: unknown[] } }).rosterChange;
      change.signatures = change.signatures.slice(0, 1);
    });
    const v = verifyAuditChain(chain, { config: after.config.config });
    expect(v.firstBroken).toMatchObject({
      seq: at,
      reason: expect.stringMatching(
        /roster change of repair ceremony .* is not approved by the roster in force: 1 of the 2 custodian signatures/,
      ),
    });
  });

  it("a confirmation that is not signed with the plan's key for carol breaks the chain at the completion", () => {
    const at = seqOf("lifecycle-complete");
    const chain = tampered(at, (b) => {
      b.confirmations = [];
    });
    expect(verifyAuditChain(chain, { config: after.config.config }).firstBroken).toMatchObject({
      seq: at,
      reason: expect.stringMatching(/carol did not confirm repair ceremony/),
    });
  });

  it("a roster signature entry is checked against the roster in force", () => {
    const at = entries.find(
      (e) => e.kind === "lifecycle" && (e.body as { event: string }).event === "roster-signature",
    )!.seq;
    const chain = tampered(at, (b) => {
      (b.signature as { signer: string }).signer = "carol";
    });
    expect(verifyAuditChain(chain, { config: after.config.config }).firstBroken).toMatchObject({
      seq: at,
      reason: expect.stringMatching(/carol's signature on the roster change to .* does not verify/),
    });
  });
});
