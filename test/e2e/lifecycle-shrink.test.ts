// Reshare 3-of-5 → 2-of-3 on a fresh CA (docs/key-lifecycle.md), every node its own OS process: a
// dealer that cheats is named and nothing changes; then two custodians are removed (both deal
// their part on the way out), the key and root stay, the remaining three issue with two signers,
// and a copy of a removed custodian's old share is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { Sandbox } from "../helpers/processes.ts";
import {
  ceremonyEnd,
  cheat,
  devCa,
  keyStateOf,
  keystoreOf,
  issue,
  newConfig,
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
afterAll(() => sb.cleanup());
beforeAll(async () => {
  ca = await devCa(sb, { custodians: 5, threshold: 3, agents: false });
  work = sb.tempDir();
}, 120_000);

const everyone = ["alice", "bob", "carol", "dave", "erin"];

describe("reshare 3-of-5 → 2-of-3", () => {
  let threeConfig: string;
  let oldConfig: string;
  it("three custodians sign a roster without dave and erin", async () => {
    oldConfig = ca.configPath;
    threeConfig = newConfig(ca, "ca-config-3.yaml", (c) => ({
      threshold: 2,
      custodians: c.custodians.filter((m) => m.name !== "dave" && m.name !== "erin"),
    }));
    const signed = await signRosterBy(sb, ca, ["carol", "dave", "erin"], threeConfig);
    expect(signed.join("")).toMatch(/signed: 3 of 3 signatures/);
  });

  it("a dealer that cheats in a reshare is named; the reshare fails and every old share is kept", async () => {
    const before = await keyStateOf(ca);
    const shares = new Map<string, string | undefined>();
    for (const n of everyone) shares.set(n, (await keystoreOf(ca, n)).share?.signingShare);
    const { admin, id } = await startCeremony(sb, ca, [
      "reshare",
      "--config",
      threeConfig,
      "--dealers",
      "alice,dave,erin",
    ]);
    const procs = everyone.map((n) =>
      n === "erin"
        ? cheat(sb, ca, "erin", id, "round2", "bob", threeConfig)
        : takePart(sb, ca, n, id, { config: threeConfig }),
    );
    expect(await ceremonyEnd(admin, procs), admin.output).toBe(3);
    expect(admin.stderr).toMatch(/reshare \S+ failed: .*; culprit: erin; every old share still works/);
    await Promise.all(procs.map((p) => p.exited));
    expect(await keyStateOf(ca)).toEqual(before);
    for (const n of everyone) {
      const ks = await keystoreOf(ca, n);
      expect(ks.share?.signingShare).toBe(shares.get(n));
      expect(ks).not.toHaveProperty("pendingShare");
    }
  });

  it("removes dave and erin; alice and bob then issue under the unchanged root; dave's copy is refused", async () => {
    const root = readFileSync(ca.rootPath, "utf8");
    // A copy of dave's home as it is now: his share leaves the keystore with the reshare, but a
    // copy (a backup, a thief's) must not sign after it.
    const daveCopy = snapshotHome(ca, "dave", "dave-before");
    // The removed custodians deal: their shares go into the new sharing, then are refused.
    const { admin, id } = await startCeremony(sb, ca, [
      "reshare",
      "--config",
      threeConfig,
      "--dealers",
      "alice,dave,erin",
    ]);
    const procs = everyone.map((n) => takePart(sb, ca, n, id, { config: threeConfig }));
    expect(await ceremonyEnd(admin, procs), admin.output).toBe(0);
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes, procs.map((p) => p.output).join("\n----\n")).toEqual([0, 0, 0, 0, 0]);
    expect(admin.stdout).toMatch(
      /reshare complete: epoch 1; 3-of-5 → 2-of-3 \(threshold 3 → 2; remove dave; remove erin\); .*the removed custodians' shares are refused from now on; restart coordinators and agents with .*ca-config-3.yaml/,
    );
    expect((await keystoreOf(ca, "dave")).share).toBeUndefined();

    await serveCa(sb, ca, threeConfig);
    // dave's old share and ca-config, run anyway: whatever he sends is refused.
    const [dave] = await Promise.all([
      startAgent(sb, ca, "dave", { home: daveCopy, config: oldConfig }),
      startAgent(sb, ca, "alice"),
      startAgent(sb, ca, "bob"),
    ]);
    await issue(sb, ca, "two-of-three.svc.example.internal", work);
    expect(await (await fetch(`${ca.url}/ca.pem`)).text()).toBe(root);
    await dave.waitFor(/sender \\"dave\\" is not in the roster/);
    await stopAgents(ca);
  });
});
