// The custodian's ceremony runner against a real coordinator over HTTP (in process, loopback):
// a refresh run to completion by three LifecycleRunners (new shares of epoch 1 that sign under the
// same group key, the old package gone), and a cheating dealer named by a verifiable complaint
// while every old share keeps working (docs/key-lifecycle.md "Running a ceremony").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { connectCustodian } from "../../src/custodian/connect.ts";
import type { DkgResult } from "../../src/custodian/dkg-runner.ts";
import type { KeyShare } from "../../src/custodian/home.ts";
import {
  LifecycleRunner,
  waitForLifecycleEnd,
  type LifecycleRunResult,
  type LifecycleTamper,
} from "../../src/custodian/lifecycle/runner.ts";
import { RosterViewSchema, type LifecycleView } from "../../src/protocol/lifecycle.ts";
import { rosterOf } from "../../src/protocol/roster.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import {
  bytesToHex,
  commitmentFromWire,
  hexToBytes,
  publicFromWire,
  publicToWire,
} from "../../src/threshold/encoding.ts";
import { aggregateSignature, NoncePool, signShare } from "../../src/threshold/sign.ts";
import type { FrostSecret } from "../../src/threshold/suite.ts";
import {
  equipCustodians,
  exchangeUntil,
  runDkg,
  startHttpCa,
  type HttpCa,
} from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";

const NAMES = ["alice", "bob", "carol"];
let h: HttpCa;
let shares: Map<string, KeyShare>;

beforeAll(async () => {
  h = await startHttpCa({ names: NAMES, threshold: 2 });
  const dkgId = (await h.ca.services.ceremonies.start()).id;
  const results = await runDkg(h.ca);
  equipCustodians(h.ca, results);
  await exchangeUntil(h.ca, async () => (await h.ca.services.ceremonies.view(dkgId)).status === "complete");
  const roster = rosterOf(h.ca.config.config);
  shares = new Map(NAMES.map((n, i) => [n, keyShare(results[i]!, dkgId, roster)]));
}, 60_000);
afterAll(async () => h?.ca.close());

function keyShare(r: DkgResult, ceremonyId: string, roster: ReturnType<typeof rosterOf>): KeyShare {
  return {
    ceremonyId,
    identifier: r.secret.identifier,
    signingShare: bytesToHex(r.secret.signingShare),
    publicPackage: publicToWire(r.public),
    caKeyId: h.ca.caKeyId!,
    activatedAt: new Date().toISOString(),
    epoch: 0,
    roster,
  };
}

async function start(kind: "refresh"): Promise<LifecycleView> {
  const res = await fetch(`${h.url}/api/v1/lifecycle`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    body: JSON.stringify({ kind }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as LifecycleView;
}

const client = (name: string) =>
  connectCustodian({ urls: h.url, identity: { name, signingSecret: h.ca.signers.get(name)!.signingSecret } });

/** Every custodian runs its LifecycleRunner at once; a runner's failure is returned, not thrown. */
async function runAll(
  tamper: Partial<Record<string, LifecycleTamper>> = {},
): Promise<Map<string, LifecycleRunResult | Error>> {
  const lines = new Map<string, string[]>();
  const out = await Promise.all(
    NAMES.map(async (name): Promise<[string, LifecycleRunResult | Error]> => {
      const signer = h.ca.signers.get(name)!;
      lines.set(name, []);
      const runner = new LifecycleRunner({
        client: client(name),
        signer,
        signingKey: Buffer.from(ed25519.getPublicKey(signer.signingSecret)).toString("base64url"),
        config: h.ca.config,
        share: shares.get(name),
        ceremony: "current",
        timeoutMs: 30_000,
        progress: (l) => lines.get(name)!.push(l),
        ...(tamper[name] ? { tamper: tamper[name] } : {}),
      });
      return [name, await runner.run().catch((e: unknown) => e as Error)];
    }),
  );
  return new Map(out);
}

const secretOf = (s: KeyShare): FrostSecret => ({
  identifier: s.identifier,
  signingShare: hexToBytes(s.signingShare),
});

/** A threshold signature by `who` with their shares, checked under the group key. */
function signsUnderGroupKey(who: KeyShare[]): boolean {
  const pub = publicFromWire(who[0]!.publicPackage);
  const msg = new TextEncoder().encode("a message to sign");
  const pools = who.map((s) => new NoncePool(secretOf(s)));
  const wires = pools.map((p) => p.commit());
  const commitments = wires.map(commitmentFromWire);
  const sigShares = Object.fromEntries(
    who.map((s, i) => [
      s.identifier,
      signShare(secretOf(s), pub, pools[i]!.take(wires[i]!)!, commitments, msg),
    ]),
  );
  try {
    return ed25519.verify(aggregateSignature(pub, commitments, msg, sigShares), msg, h.ca.caPublicKey!);
  } catch {
    return false; // a share that does not fit the package is named by the aggregator
  }
}

describe("a refresh through the custodian's runner", () => {
  it("every custodian gets a new share of epoch 1 under the same group key", async () => {
    const view = await start("refresh");
    expect(view.plan).toMatchObject({ kind: "refresh", fromEpoch: 0, toEpoch: 1 });
    const runs = await runAll();
    const news = NAMES.map((n) => {
      const r = runs.get(n)!;
      if (r instanceof Error) throw r;
      expect(r.plan.ceremonyId).toBe(view.id);
      return r.share!;
    });
    const end = await waitForLifecycleEnd(client("alice"), view.id, 30_000);
    expect(end.status).toBe("complete");
    expect(end.result?.epoch).toBe(1);
    for (const s of news) {
      expect(s).toMatchObject({ epoch: 1, ceremonyId: view.id, caKeyId: h.ca.caKeyId });
      expect(s.publicPackage).toEqual(news[0]!.publicPackage);
      expect(s.signingShare).not.toBe(shares.get(NAMES[news.indexOf(s)]!)!.signingShare);
    }
    expect(news[0]!.publicPackage).not.toEqual(shares.get("alice")!.publicPackage);
    expect(groupPublicKey(publicFromWire(news[0]!.publicPackage))).toEqual(h.ca.caPublicKey);
    expect(signsUnderGroupKey([news[0]!, news[2]!])).toBe(true);
    expect(signsUnderGroupKey([news[1]!, news[2]!])).toBe(true);
    // Old and new shares do not mix (which is why packages carry the key epoch).
    expect(
      signsUnderGroupKey([news[0]!, { ...shares.get("bob")!, publicPackage: news[0]!.publicPackage }]),
    ).toBe(false);
    shares = new Map(NAMES.map((n, i) => [n, news[i]!]));
  }, 60_000);

  it("a dealer's bad value is named by a verifiable complaint; the ceremony fails and the shares in force stay", async () => {
    const view = await start("refresh");
    expect(view.plan).toMatchObject({ fromEpoch: 1, toEpoch: 2 });
    const runs = await runAll({
      alice: {
        value: (stage, recipient, v) => {
          if (stage !== "lc/round2" || recipient !== "bob") return v;
          const bad = Uint8Array.from(v);
          bad[0] = bad[0]! ^ 1;
          return bad;
        },
      },
    });
    for (const n of NAMES) expect(runs.get(n), n).toBeInstanceOf(Error);
    for (const n of NAMES)
      expect((runs.get(n) as Error & { culprits?: string[] }).culprits, n).toEqual(["alice"]);
    expect((runs.get("bob") as Error).message).toMatch(
      /alice sent me a bad round-2 value; complaint published/,
    );
    expect((runs.get("carol") as Error).message).toMatch(/does not match alice's round-1 commitments/);
    const end = await waitForLifecycleEnd(client("carol"), view.id, 30_000);
    expect(end.status).toBe("failed");
    expect(end.failure?.culprits).toEqual(["alice"]);
    // The key state in force is untouched, as a custodian reads it.
    const inForce = await client("bob").get("/api/v1/roster", RosterViewSchema);
    expect(inForce.keyState?.epoch).toBe(1);
    expect(signsUnderGroupKey([shares.get("alice")!, shares.get("bob")!])).toBe(true);
  }, 60_000);
});
