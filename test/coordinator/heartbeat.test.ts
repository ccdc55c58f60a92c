// Heartbeats (docs/security-model.md): signed over the CA key id and a counter (the envelope seq, strictly
// increasing per custodian process); the last counter per process is kept in the database, so a
// replayed or older heartbeat is refused by every replica, not only the one that saw it.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServices, type CoordinatorServices } from "../../src/coordinator/services.ts";
import { openStore } from "../../src/coordinator/store/open.ts";
import { sealHeartbeat } from "../../src/protocol/heartbeat.ts";
import { sealEnvelope, type Signer } from "../../src/protocol/envelope.ts";
import { readyCa, testConfig } from "../helpers/in-process-ca.ts";
import { storeKinds } from "../helpers/stores.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-heartbeat-"));
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

const instance = () => randomBytes(16).toString("hex");
const refused = (p: Promise<unknown>, code: string, message: RegExp) =>
  expect(p).rejects.toMatchObject({ code, message: expect.stringMatching(message) });

describe.each(await storeKinds("heartbeat"))("heartbeats on $name", (kind) => {
  /** Two replicas (two stores, two service sets) on one database, before any CA key exists. */
  async function twoReplicas(): Promise<{ a: CoordinatorServices; b: CoordinatorServices; signer: Signer }> {
    const { config, signers } = testConfig(["alice", "bob", "carol"], 2);
    const location =
      kind.name === "sqlite" ? join(mkdtempSync(join(dir, "db-")), "c.db") : await kind.location();
    const [sa, sb] = [await openStore(location), await openStore(location)];
    const a = createServices(sa, config);
    const b = createServices(sb, config);
    for (const [s, st] of [
      [a, sa],
      [b, sb],
    ] as const)
      closers.push(async () => {
        s.hooks.close();
        await st.close();
      });
    return { a, b, signer: signers.get("alice")! };
  }

  it("accepts each new heartbeat once; a replay or an older counter is refused, on any replica", async () => {
    const { a, b, signer } = await twoReplicas();
    const me = instance();
    const first = sealHeartbeat(signer, null, { role: "agent", instance: me });
    const second = sealHeartbeat(signer, null, { role: "agent", instance: me });
    expect(await a.heartbeat(first)).toEqual({ name: "alice" });
    await refused(a.heartbeat(first), "CONFLICT", /heartbeat from alice .* is a replay/);
    await refused(b.heartbeat(first), "CONFLICT", /is a replay/); // the other replica knows too
    expect(await b.heartbeat(second)).toEqual({ name: "alice" });
    const third = sealHeartbeat(signer, null, { role: "agent", instance: me });
    const fourth = sealHeartbeat(signer, null, { role: "agent", instance: me });
    expect(await a.heartbeat(fourth)).toEqual({ name: "alice" });
    await refused(b.heartbeat(third), "CONFLICT", /counter \d+ is not greater/); // older than the last
    // Another process of the same custodian has its own counter.
    expect(await a.heartbeat(sealHeartbeat(signer, null, { role: "agent", instance: instance() }))).toEqual({
      name: "alice",
    });
  });

  it("refuses a heartbeat without a process instance, or not addressed to the coordinator", async () => {
    const { a, signer } = await twoReplicas();
    const bare = sealEnvelope(signer, {
      type: "heartbeat",
      recipient: "coordinator",
      scope: "heartbeat",
      caKeyId: null,
      body: { role: "agent" },
    });
    await refused(a.heartbeat(bare), "BAD_REQUEST", /malformed body/);
    const elsewhere = sealEnvelope(signer, {
      type: "heartbeat",
      recipient: "bob",
      scope: "heartbeat",
      caKeyId: null,
      body: { role: "agent", instance: instance() },
    });
    await refused(a.heartbeat(elsewhere), "BAD_REQUEST", /unexpected recipient/);
  });
});

describe("heartbeats and the CA key", () => {
  it("once the CA key exists, a heartbeat must name it: one for no key or another key is refused", async () => {
    const ca = await readyCa();
    closers.push(() => ca.close());
    const keyId = (await ca.services.health()).body.caKeyId as string;
    expect(keyId).toMatch(/^[0-9a-f]{64}$/);
    const signer = ca.signers.get("bob")!;
    const me = instance();
    await refused(
      ca.services.heartbeat(sealHeartbeat(signer, null, { role: "agent", instance: me })),
      "BAD_REQUEST",
      /unexpected CA key id null/,
    );
    await refused(
      ca.services.heartbeat(sealHeartbeat(signer, "00".repeat(32), { role: "agent", instance: me })),
      "BAD_REQUEST",
      /unexpected CA key id/,
    );
    expect(
      await ca.services.heartbeat(sealHeartbeat(signer, keyId, { role: "agent", instance: me })),
    ).toEqual({
      name: "bob",
    });
  });
});
