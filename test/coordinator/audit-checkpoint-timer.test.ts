// The checkpoint timer (docs/audit.md, "Checkpoints") on an idle CA whose custodians do not sign
// checkpoints (signCheckpoints: false, or people away): an attempt's own signing-job entry moves the
// head, but that alone starts no further attempt; a new entry of anything else does.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit } from "../../src/coordinator/audit/log.ts";
import { CheckpointService } from "../../src/coordinator/audit/checkpoints.ts";
import { makeCsr, readyCa, type InProcessCa } from "../helpers/in-process-ca.ts";

let ca: InProcessCa;
let timer: CheckpointService;

const checkpointJobs = async () =>
  (await listAudit(ca.services.store, 0, 10_000)).filter(
    (e) => e.kind === "signing-job" && (e.body as { kind: string }).kind === "checkpoint",
  ).length;

beforeAll(async () => {
  ca = await readyCa();
  const s = ca.services;
  // Due at every tick once something happened; a job is stale at the next tick.
  timer = new CheckpointService(
    s.store,
    s.config,
    s.signing,
    { certificate: s.caCertificate, publicKey: s.caPublicKey, keyId: async () => ca.caKeyId },
    { everyMs: 0, retryMs: 0, everyEntries: 1_000_000 },
  );
}, 60_000);
afterAll(async () => {
  await ca?.close();
});

describe("the checkpoint timer on an idle CA with no signers", () => {
  it("starts one attempt per change of the chain, not one per interval", async () => {
    const later = () => Date.now() + 1_000;
    expect(await checkpointJobs()).toBe(0);
    await timer.tick(later());
    expect(await checkpointJobs()).toBe(1);
    // Nobody signs: each tick gives the job up as stale; only its own entry followed it.
    for (let k = 0; k < 3; k++) await timer.tick(later());
    expect(await checkpointJobs()).toBe(1);
    // Something happens: the next tick starts an attempt for the new head, and again only one.
    const r = ca.services.requests;
    await r.submit({ requester: r.requesterFor("dev"), profile: "server", csr: await makeCsr() });
    await timer.tick(later());
    expect(await checkpointJobs()).toBe(2);
    await timer.tick(later());
    await timer.tick(later());
    expect(await checkpointJobs()).toBe(2);
  });
});
