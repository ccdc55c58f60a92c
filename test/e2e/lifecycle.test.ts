// The CA key outlives its custodians (docs/key-lifecycle.md), every node its own OS process: one
// 3-of-5 CA goes through `tca dev refresh`, a refresh with a cheating dealer, a repair of a deleted
// keystore (with a cheating helper first), and a reshare to 4-of-7. (A reshare with a cheating
// dealer, and one that removes custodians, run on a fresh CA: lifecycle-shrink.test.ts.)
// After each success certificates issue and verify under the unchanged root; after each failure the
// culprit is named and the old shares still issue.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import {
  ceremonyEnd,
  cheat,
  devCa,
  identityOf,
  issue,
  keyStateOf,
  keystoreOf,
  newConfig,
  newHome,
  serveCa,
  signRosterBy,
  snapshotHome,
  startAgent,
  startCeremony,
  stopAgents,
  takePart,
  type LcCa,
} from "../helpers/lifecycle-ca.ts";

const sb = new Sandbox();
let ca: LcCa;
let work: string;
let root: string;
afterAll(() => sb.cleanup());
beforeAll(async () => {
  ca = await devCa(sb, { custodians: 5, threshold: 3, agents: true });
  work = sb.tempDir();
  root = readFileSync(ca.rootPath, "utf8");
}, 120_000);

const keystore = (name: string) => keystoreOf(ca, name);
const keyState = () => keyStateOf(ca);
const shareOf = async (home: string, name: string) => (await keystoreOf(ca, name, home)).share!;

/** Every process exited 0; their output when not. */
async function allOk(procs: { exited: Promise<number>; output: string }[]): Promise<void> {
  const codes = await Promise.all(procs.map((p) => p.exited));
  expect(codes, procs.map((p) => p.output).join("\n----\n")).toEqual(procs.map(() => 0));
}

async function rootUnchanged(): Promise<void> {
  expect(await (await fetch(`${ca.url}/ca.pem`)).text()).toBe(root);
}

let aliceEpoch0: string;

describe("refresh (3-of-5)", () => {
  it("tca dev refresh gives every custodian a new share; tca request issues under the unchanged root", async () => {
    aliceEpoch0 = snapshotHome(ca, "alice", "alice-epoch0");
    const before = await shareOf(aliceEpoch0, "alice");
    const refresh = sb.tca(["dev", "refresh", "--dir", ca.dir]);
    expect(await refresh.exited, refresh.output).toBe(0);
    expect(refresh.stdout).toMatch(
      /refresh complete: epoch 1; every custodian holds a new share; the CA key and every certificate are unchanged/,
    );
    const after = await shareOf(ca.homes.get("alice")!.home, "alice");
    expect(after.signingShare).not.toBe(before.signingShare);
    expect(after.caKeyId).toBe(before.caKeyId);
    // tca dev's own agents picked their new shares up.
    await issue(sb, ca, "after-refresh.svc.example.internal", work, { cli: true });
    await rootUnchanged();
  });

  it("an old-epoch share is refused and issuance does not use it", async () => {
    // From here on the CA runs as an operator runs it: tca serve and one agent per custodian.
    await serveCa(sb, ca);
    const [old] = await Promise.all([
      startAgent(sb, ca, "alice", { home: aliceEpoch0, key: "alice-epoch0" }),
      startAgent(sb, ca, "bob"),
      startAgent(sb, ca, "carol"),
    ]);
    const issued = issue(sb, ca, "old-epoch.svc.example.internal", work);
    await old.waitFor(/key epoch 0, the key epoch in force is 1/);
    // Two valid shares of three: only a third current custodian completes it.
    await startAgent(sb, ca, "dave");
    await issued;
    await stopAgents(ca, ["alice-epoch0"]);
  });

  it("a dealer that cheats in a refresh is named, the refresh fails, and the old shares still issue", async () => {
    const { admin, id } = await startCeremony(sb, ca, ["refresh"]);
    const procs = [
      ...["alice", "bob", "carol", "dave"].map((n) => takePart(sb, ca, n, id)),
      cheat(sb, ca, "erin", id, "round2", "alice"),
    ];
    expect(await ceremonyEnd(admin, procs), admin.output).toBe(3);
    expect(admin.stderr).toMatch(/refresh \S+ failed: .*; culprit: erin; every old share still works/);
    await Promise.all(procs.map((p) => p.exited));
    const status = sb.tca([
      "ceremony",
      "status",
      id,
      "--coordinator",
      ca.url,
      "--token-file",
      ca.adminTokenPath,
    ]);
    expect(await status.exited, status.output).toBe(0);
    expect(status.stdout).toMatch(/refresh \S+ failed: .*; culprit: erin; every old share still works/);
    await issue(sb, ca, "after-failed-refresh.svc.example.internal", work);
  });
});

describe("repair of a deleted keystore", () => {
  let repairConfig: string;
  it("erin loses her keystore, makes new identity keys, and three custodians sign the new roster", async () => {
    const erin = ca.homes.get("erin")!;
    rmSync(erin.home, { recursive: true });
    const passphraseFile = join(work, "erin-new.passphrase");
    writeFileSync(passphraseFile, "erin's new passphrase\n");
    const init = sb.tca([
      "custodian",
      "init",
      "--home",
      erin.home,
      "--name",
      "erin",
      "--passphrase-file",
      passphraseFile,
    ]);
    expect(await init.exited, init.output).toBe(0);
    ca.homes.set("erin", { home: erin.home, passphraseFile });
    const keys = identityOf(ca, "erin");
    repairConfig = newConfig(ca, "ca-config-repair.yaml", (c) => ({
      ...c,
      custodians: c.custodians.map((m) => (m.name === "erin" ? keys : m)),
    }));
    const out = await signRosterBy(sb, ca, ["alice", "bob", "carol"], repairConfig);
    expect(out.join("")).toMatch(/signed: 3 of 3 signatures/);
  });

  it("a helper that cheats in a repair is named; the repair fails and nothing changes", async () => {
    const before = await keyState();
    const { admin, id } = await startCeremony(sb, ca, [
      "repair",
      "--custodian",
      "erin",
      "--config",
      repairConfig,
      "--helpers",
      "alice,bob,carol",
    ]);
    const procs = [
      takePart(sb, ca, "alice", id, { config: repairConfig }),
      takePart(sb, ca, "bob", id, { config: repairConfig }),
      cheat(sb, ca, "carol", id, "round2", "bob", repairConfig),
      takePart(sb, ca, "erin", id, { config: repairConfig }),
    ];
    expect(await ceremonyEnd(admin, procs), admin.output).toBe(3);
    expect(admin.stderr).toMatch(/repair \S+ failed: .*; culprit: carol; every old share still works/);
    await Promise.all(procs.map((p) => p.exited));
    // Nothing changed: the key state, the helpers' shares, and erin still holds none.
    expect(await keyState()).toMatchObject({ epoch: 1, rosterDigest: before.rosterDigest });
    expect((await keystore("erin")).share).toBeUndefined();
    for (const n of ["alice", "bob", "carol"]) expect(await keystore(n)).not.toHaveProperty("pendingShare");
  });

  it("three helpers restore erin's share; with the new ca-config she signs", async () => {
    const { admin, id } = await startCeremony(sb, ca, [
      "repair",
      "--custodian",
      "erin",
      "--config",
      repairConfig,
      "--helpers",
      "alice,bob,carol",
    ]);
    const procs = ["alice", "bob", "carol", "erin"].map((n) =>
      takePart(sb, ca, n, id, { config: repairConfig }),
    );
    expect(await ceremonyEnd(admin, procs), admin.output).toBe(0);
    await allOk(procs);
    expect(admin.stdout).toMatch(
      /repair complete: erin holds its share again \(epoch 1\); the CA key and every certificate are unchanged; restart coordinators and agents with .*ca-config-repair.yaml/,
    );
    // The operator's step: coordinator and agents restart with the new ca-config (carol and dave,
    // who did not take part, adopt the new roster as they start). Then only three agents run,
    // erin's among them, so she must sign.
    await stopAgents(ca);
    await serveCa(sb, ca, repairConfig);
    await Promise.all(["alice", "bob", "carol", "dave", "erin"].map((n) => startAgent(sb, ca, n)));
    expect(ca.agents.get("dave")!.output).toMatch(/adopted the new roster/);
    await stopAgents(ca, ["carol", "dave"]);
    await issue(sb, ca, "signed-by-erin.svc.example.internal", work);
    await rootUnchanged();
  });
});

describe("reshare 3-of-5 → 4-of-7", () => {
  const everyone = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
  let sevenConfig: string;
  it("two new custodians; three of the five sign the new roster", async () => {
    const added = [await newHome(ca, "frank"), await newHome(ca, "grace")];
    sevenConfig = newConfig(ca, "ca-config-7.yaml", (c) => ({
      threshold: 4,
      custodians: [...c.custodians, ...added],
    }));
    const out = await signRosterBy(sb, ca, ["alice", "bob", "erin"], sevenConfig);
    expect(out.join("")).toMatch(/signed: 3 of 3 signatures/);
  });

  it("the key moves to 4-of-7; after the restart four signers issue under the unchanged root", async () => {
    const { admin, id } = await startCeremony(sb, ca, ["reshare", "--config", sevenConfig]);
    const procs = everyone.map((n) => takePart(sb, ca, n, id, { config: sevenConfig }));
    expect(await ceremonyEnd(admin, procs), admin.output).toBe(0);
    await allOk(procs);
    expect(admin.stdout).toMatch(
      /reshare complete: epoch 2; 3-of-5 → 4-of-7 \(threshold 3 → 4; add frank .*; add grace .*\); the CA key and every certificate are unchanged/,
    );
    await stopAgents(ca);
    await serveCa(sb, ca, sevenConfig);
    await Promise.all(["carol", "dave", "frank", "grace"].map((n) => startAgent(sb, ca, n)));
    await issue(sb, ca, "four-signers.svc.example.internal", work);
    await rootUnchanged();
  });
});
