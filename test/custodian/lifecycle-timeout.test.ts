// A custodian's ceremony runner that times out waiting for the others aborts the ceremony at the
// coordinator with its reason (docs/key-lifecycle.md "Running a ceremony"), so a stuck ceremony
// ends at once instead of blocking every later one until its deadline. And an admin ends one with
// `tca ceremony cancel` (bin/tca.js runs dist/: build first).
import { afterAll, beforeAll, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { connectCustodian } from "../../src/custodian/connect.ts";
import type { KeyShare } from "../../src/custodian/home.ts";
import { LifecycleRunner } from "../../src/custodian/lifecycle/runner.ts";
import { CustodianError } from "../../src/custodian/errors.ts";
import type { LifecycleView } from "../../src/protocol/lifecycle.ts";
import { rosterOf } from "../../src/protocol/roster.ts";
import { bytesToHex, publicToWire } from "../../src/threshold/encoding.ts";
import {
  equipCustodians,
  exchangeUntil,
  runDkg,
  startHttpCa,
  type HttpCa,
} from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, Sandbox } from "../helpers/processes.ts";

let h: HttpCa;
let alice: KeyShare;

beforeAll(async () => {
  h = await startHttpCa({ names: ["alice", "bob", "carol"], threshold: 2 });
  const dkgId = (await h.ca.services.ceremonies.start()).id;
  const results = await runDkg(h.ca);
  equipCustodians(h.ca, results);
  await exchangeUntil(h.ca, async () => (await h.ca.services.ceremonies.view(dkgId)).status === "complete");
  const r = results[0]!;
  alice = {
    ceremonyId: dkgId,
    identifier: r.secret.identifier,
    signingShare: bytesToHex(r.secret.signingShare),
    publicPackage: publicToWire(r.public),
    caKeyId: h.ca.caKeyId!,
    activatedAt: new Date().toISOString(),
    epoch: 0,
    roster: rosterOf(h.ca.config.config),
  };
}, 60_000);
const sb = new Sandbox();
afterAll(async () => {
  await h?.ca.close();
  sb.cleanup();
});

it("a runner that times out waiting aborts the ceremony with its reason", async () => {
  const res = await fetch(`${h.url}/api/v1/lifecycle`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    body: JSON.stringify({ kind: "refresh" }),
  });
  expect(res.status).toBe(201);
  const view = (await res.json()) as LifecycleView;
  const signer = h.ca.signers.get("alice")!;
  const runner = new LifecycleRunner({
    client: connectCustodian({
      urls: h.url,
      identity: { name: "alice", signingSecret: signer.signingSecret },
    }),
    signer,
    signingKey: Buffer.from(ed25519.getPublicKey(signer.signingSecret)).toString("base64url"),
    config: h.ca.config,
    share: alice,
    ceremony: "current",
    timeoutMs: 1_500,
  });
  const err = await runner.run().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CustodianError);
  expect((err as CustodianError).code).toBe("TIMEOUT");
  const after = await h.ca.services.lifecycle.view(view.id);
  expect(after).toMatchObject({
    status: "failed",
    failure: {
      culprits: [],
      reason: expect.stringMatching(/^alice aborted: timed out waiting for lc\/round1 from/),
    },
  });
}, 30_000);

it("tca ceremony cancel ends the ceremony in progress, with the reason; again is a conflict", async () => {
  const res = await fetch(`${h.url}/api/v1/lifecycle`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    body: JSON.stringify({ kind: "refresh" }),
  });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as LifecycleView;
  const env = { TCA_ADMIN_TOKEN: EXAMPLE_ADMIN_TOKEN, TCA_COORDINATOR: h.url };
  const p = sb.tca(["ceremony", "cancel", id, "--reason", "carol is away"], env);
  expect(await p.exited, p.stderr).toBe(0);
  expect(p.stdout).toContain(`refresh ${id} failed: cancelled by an admin: carol is away`);
  expect((await h.ca.services.lifecycle.view(id)).failure).toMatchObject({ culprits: [] });
  const again = sb.tca(["ceremony", "cancel", id], env);
  expect(await again.exited).not.toBe(0);
  expect(again.stderr).toMatch(/already failed/);
}, 30_000);
