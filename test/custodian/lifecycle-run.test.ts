// The custodian's ceremony runner against a real coordinator over HTTP (in process, loopback):
// a refresh run to completion by three LifecycleRunners (new shares of epoch 1 that sign under the
// same group key, the old package gone), and a cheating dealer named by a verifiable complaint
// while every old share keeps working (docs/key-lifecycle.md "Running a ceremony").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { rosterDigest, rosterOf, signRosterChange, type Roster } from "../../src/protocol/roster.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import type { Signer } from "../../src/protocol/envelope.ts";
import { CustodianHome } from "../../src/custodian/home.ts";
import { adoptRoster } from "../../src/custodian/lifecycle/participate.ts";
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

async function start(kind: "refresh" | "repair", more: Record<string, unknown> = {}): Promise<LifecycleView> {
  const res = await fetch(`${h.url}/api/v1/lifecycle`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    body: JSON.stringify({ kind, ...more }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as LifecycleView;
}

const client = (name: string, signer = h.ca.signers.get(name)!) =>
  connectCustodian({ urls: h.url, identity: { name, signingSecret: signer.signingSecret } });

/** Every custodian runs its LifecycleRunner at once; a runner's failure is returned, not thrown. */
async function runAll(
  tamper: Partial<Record<string, LifecycleTamper>> = {},
  o: { config?: LoadedConfig; signers?: Map<string, Signer> } = {},
): Promise<Map<string, LifecycleRunResult | Error>> {
  const signers = o.signers ?? h.ca.signers;
  const out = await Promise.all(
    NAMES.map(async (name): Promise<[string, LifecycleRunResult | Error]> => {
      const signer = signers.get(name)!;
      const runner = new LifecycleRunner({
        client: client(name, signer),
        signer,
        signingKey: Buffer.from(ed25519.getPublicKey(signer.signingSecret)).toString("base64url"),
        config: o.config ?? h.ca.config,
        share: shares.get(name),
        ceremony: "current",
        timeoutMs: 30_000,
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

describe("a repair through the custodian's runner", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("carol, with new identity keys and no share, gets hers back from alice and bob; bob adopts the new roster", async () => {
    const carolNew: Signer = { name: "carol", signingSecret: new Uint8Array(randomBytes(32)) };
    const oldRoster = rosterOf(h.ca.config.config);
    // The new ca-config: carol's new keys, everything else as it was.
    const config: LoadedConfig = {
      ...h.ca.config,
      config: {
        ...h.ca.config.config,
        custodians: h.ca.config.config.custodians.map((c) =>
          c.name === "carol"
            ? {
                ...c,
                signingKey: Buffer.from(ed25519.getPublicKey(carolNew.signingSecret)).toString("base64url"),
                hpkeKey: Buffer.from(randomBytes(32)).toString("base64url"),
              }
            : c,
        ),
      },
    };
    const next: Roster = rosterOf(config.config);
    const inForce = (await client("alice").get("/api/v1/roster", RosterViewSchema)).keyState!;
    const statement = {
      caKeyId: h.ca.caKeyId!,
      from: rosterDigest(oldRoster),
      to: rosterDigest(next),
      roster: next,
      basis: inForce.ceremonyId,
    };

    // bob, holding his share of the old roster and running with the new ca-config, refuses to sign
    // while nothing makes the new roster the one in force.
    const dir = mkdtempSync(join(tmpdir(), "tca-lc-run-"));
    dirs.push(dir);
    const bobHome = new CustodianHome(dir);
    await bobHome.init("bob", "pass phrase", { scryptN: 2 ** 14 });
    const bobSecrets = { ...(await bobHome.open("pass phrase")), share: shares.get("bob")! };
    await bobHome.save("pass phrase", bobSecrets);
    const adopt = () =>
      adoptRoster(bobHome, "pass phrase", client("bob"), config, bobSecrets, () => undefined);
    await expect(adopt()).rejects.toThrow(/not the roster in force at the coordinator/);

    for (const n of ["alice", "bob"]) {
      const res = await fetch(`${h.url}/api/v1/roster/signatures`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ statement, signature: signRosterChange(h.ca.signers.get(n)!, statement) }),
      });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
    }
    const view = await start("repair", { lost: "carol", rosterDigest: rosterDigest(next) });
    expect(view.plan).toMatchObject({ kind: "repair", dealers: ["alice", "bob"], receivers: ["carol"] });

    const lost = shares.get("carol")!;
    shares.delete("carol"); // a fresh home: no share
    const runs = await runAll({}, { config, signers: new Map([...h.ca.signers, ["carol", carolNew]]) });
    const failed = NAMES.filter((n) => runs.get(n) instanceof Error);
    if (failed.length > 0)
      throw new Error(failed.map((n) => `${n}: ${(runs.get(n) as Error).message}`).join("\n"));
    const restored = (runs.get("carol") as LifecycleRunResult).share!;
    expect((runs.get("alice") as LifecycleRunResult).share).toBeUndefined();
    const end = await waitForLifecycleEnd(client("carol", carolNew), view.id, 30_000);
    expect(end.status).toBe("complete");
    // The same share, at the same epoch, under the package in force; it signs with the others'.
    expect(restored.signingShare).toBe(lost.signingShare);
    expect(restored).toMatchObject({ epoch: lost.epoch, caKeyId: h.ca.caKeyId, roster: next });
    expect(restored.publicPackage).toEqual(lost.publicPackage);
    expect(signsUnderGroupKey([shares.get("alice")!, restored])).toBe(true);

    // bob now adopts the new roster: it is in force, and alice and bob signed the change.
    const said: string[] = [];
    const adopted = await adoptRoster(bobHome, "pass phrase", client("bob"), config, bobSecrets, (l) =>
      said.push(l),
    );
    expect(adopted.share?.roster).toEqual(next);
    expect((await bobHome.open("pass phrase")).share?.roster).toEqual(next);
    expect(said.join("\n")).toMatch(/adopted the new roster, signed by alice, bob/);
    // A ca-config nobody signed is still refused.
    const unsigned: LoadedConfig = { ...config, config: { ...config.config, threshold: 3 } };
    await expect(
      adoptRoster(bobHome, "pass phrase", client("bob"), unsigned, adopted, () => undefined),
    ).rejects.toThrow(/this ca-config's roster is not the one my key share belongs to/);
    shares.set("carol", restored);
  }, 60_000);
});
