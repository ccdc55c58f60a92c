// Revocation on the coordinator's domain, in one process: revoking an issued certificate schedules a
// CRL signing job (docs/architecture.md §3.9) whose CRL is released only after verifySigned (§3.8); a
// revocation while a CRL job runs goes into the next one; bad input is refused and changes nothing (§3.10).
import { storedSerial } from "../../../src/x509/serial.ts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readCrl } from "../../../src/x509/crl.ts";
import type { CrlParams } from "../../../src/protocol/crl-params.ts";
import {
  approval,
  completeJob,
  exchangeUntil,
  makeCsr,
  readyCa,
  type InProcessCa,
} from "../../helpers/in-process-ca.ts";

let ca: InProcessCa;
const admin = { kind: "admin", name: "admin" } as const;

const crlJob = async () => {
  const id = (await ca.services.store.getCrlState()).job;
  return id ? ca.services.store.getSigningJob(id) : undefined;
};
const latestCrlNumber = async () => (await ca.services.store.latestCrl())?.number ?? 0;

async function issued(): Promise<{ id: string; serial: string }> {
  const r = ca.services.requests;
  const v = await r.submit({ requester: r.requesterFor("dev"), profile: "server", csr: await makeCsr() });
  for (const name of ["alice", "bob"]) await r.decide(v.id, approval(ca, name, v));
  await exchangeUntil(ca, async () => (await r.view(v.id)).status === "issued");
  return { id: v.id, serial: v.serial };
}

beforeEach(async () => {
  ca = await readyCa();
  // The first, empty CRL (scheduled with the root) is signed and published.
  await exchangeUntil(ca, async () => (await latestCrlNumber()) === 1);
});
afterEach(async () => {
  await ca.close();
});

describe("revocation", () => {
  it("revoking an issued certificate schedules a CRL job, and the signed CRL lists it", async () => {
    const cert = await issued();
    expect(await crlJob()).toBeUndefined();
    const out = await ca.services.revocations.revoke(cert.serial.toUpperCase(), "keyCompromise", admin);
    expect(out).toMatchObject({ serial: cert.serial, reason: "keyCompromise" });
    const job = await crlJob();
    expect(job).toMatchObject({ kind: "crl", status: "signing" });
    const params = job!.params as CrlParams;
    expect(params.crlNumber).toBe("2");
    expect(params.entries).toEqual([
      expect.objectContaining({ serial: storedSerial(cert.serial), reason: "keyCompromise" }),
    ]);
    // Every custodian may sign a CRL; it is released once it verifies.
    await exchangeUntil(ca, async () => (await latestCrlNumber()) === 2);
    const crl = readCrl(await ca.services.revocations.currentCrl());
    expect(crl.crlNumber).toBe(2n);
    expect(crl.entries.map((e) => e.serial)).toEqual([storedSerial(cert.serial)]);
  });

  it("a revocation while a CRL job runs goes into the next CRL", async () => {
    const a = await issued();
    const b = await issued();
    await ca.services.revocations.revoke(a.serial, "superseded", admin);
    const first = await crlJob();
    await ca.services.revocations.revoke(b.serial, "cessationOfOperation", admin);
    expect((await crlJob())!.id).toBe(first!.id); // one CRL job at a time
    await exchangeUntil(ca, async () => (await latestCrlNumber()) === 3);
    const crl = readCrl(await ca.services.revocations.currentCrl());
    expect(crl.entries.map((e) => e.serial).sort()).toEqual(
      [a.serial, b.serial].map((x) => storedSerial(x)).sort(),
    );
  });

  it("revoking twice is a conflict; an unknown serial is not found; a stranger may not revoke", async () => {
    const cert = await issued();
    await ca.services.revocations.revoke(cert.serial, "unspecified", { kind: "requester", name: "dev" });
    await expect(ca.services.revocations.revoke(cert.serial, "keyCompromise", admin)).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/already revoked/),
    });
    await expect(ca.services.revocations.revoke("0badc0ffee", "keyCompromise", admin)).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    const other = await issued();
    await expect(
      ca.services.revocations.revoke(other.serial, "keyCompromise", { kind: "requester", name: "mallory" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" }); // as for reads: another's certificate is "not found"
    expect((await ca.services.store.listRevocations()).map((r) => r.serial)).toEqual([
      storedSerial(cert.serial),
    ]);
  });

  it("refuses a reason or serial that is not one, and records nothing", async () => {
    const cert = await issued();
    await expect(
      ca.services.revocations.revoke(cert.serial, "because" as "keyCompromise", admin),
    ).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringMatching(/reason must be one of/) });
    await expect(ca.services.revocations.revoke("not-hex", "keyCompromise", admin)).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    expect(await ca.services.store.listRevocations()).toEqual([]);
    expect(await crlJob()).toBeUndefined();
  });

  it("a CRL whose signature does not verify is not published, and is tried again", async () => {
    const cert = await issued();
    await ca.services.revocations.revoke(cert.serial, "keyCompromise", admin);
    const job = (await crlJob())!;
    await ca.services.store.transaction(() =>
      completeJob(ca, { ...job, status: "done" }, new Uint8Array(64)),
    );
    expect(await latestCrlNumber()).toBe(1);
    expect(readCrl(await ca.services.revocations.currentCrl()).entries).toEqual([]);
    expect(await ca.services.store.getCrlState()).toMatchObject({ job: null, dirty: true, lastNumber: 2 });
    // The next scheduling uses a fresh number: custodians never sign one number twice.
    await ca.services.store.transaction(() => ca.services.revocations.scheduleCrl());
    expect((await crlJob())!.params).toMatchObject({ crlNumber: "3" });
    expect(await ca.services.store.getCrlState()).toMatchObject({ dirty: false, lastNumber: 3 });
  });
});
