// Publishing a leaf on the coordinator's domain, in one process: t approvals, the real threshold
// signing among the approvers, then release only after verifySigned (docs/architecture.md §3.8). A signature
// that does not verify fails the request and releases nothing.
import { X509Certificate } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  approval,
  completeJob,
  exchangeUntil,
  makeCsr,
  readyCa,
  type InProcessCa,
} from "../../helpers/in-process-ca.ts";

let ca: InProcessCa;
beforeEach(async () => {
  ca = await readyCa();
});
afterEach(async () => {
  await ca.close();
});

const requests = () => ca.services.requests;

async function approved(by: string[]) {
  const v = await requests().submit({
    requester: requests().requesterFor("dev"),
    profile: "server",
    csr: await makeCsr(["api.example.internal"]),
  });
  for (const name of by) await requests().decide(v.id, approval(ca, name, v));
  const r = await ca.services.store.getRequest(v.id);
  return { view: v, job: (await ca.services.store.getSigningJob(r!.signingJob!))! };
}

const status = async (id: string) => (await requests().view(id)).status;

function chain(pem: string): X509Certificate[] {
  return pem
    .split(/(?<=-----END CERTIFICATE-----\n)/)
    .filter((p) => p.trim())
    .map((p) => new X509Certificate(p));
}

describe("publishing a leaf", () => {
  it("a valid aggregated signature issues a certificate that verifies and carries the request's serial", async () => {
    const { view } = await approved(["alice", "bob"]);
    // carol did not approve: she takes part in the rounds but is never in the signing package.
    await exchangeUntil(ca, async () => (await status(view.id)) !== "signing");
    const done = await requests().view(view.id);
    expect(done.status).toBe("issued");
    const packages = done.signing!.events.filter((e) => e.kind === "package");
    expect(packages.length).toBeGreaterThan(0);
    for (const p of packages) expect(p.detail).not.toMatch(/carol/);

    const [leaf, root] = chain(await requests().certificateChain(view.id));
    expect(leaf!.serialNumber.toLowerCase().replace(/^0+/, "")).toBe(view.serial.replace(/^0+/, ""));
    expect(leaf!.verify(root!.publicKey)).toBe(true);
    expect(leaf!.checkIssued(root!)).toBe(true);
    expect(leaf!.subjectAltName).toBe("DNS:api.example.internal");
    // The certificate carries the exact TBS the custodians approved.
    expect(Buffer.from(leaf!.raw).toString("hex")).toContain(view.tbs);
    // The root is the CA's: its key is the group key the DKG produced.
    expect(Buffer.from(root!.publicKey.export({ format: "der", type: "spki" })).subarray(-32)).toEqual(
      Buffer.from(ca.caPublicKey!),
    );
  });

  it("a long-poll on the certificate answers once it is issued", async () => {
    const { view } = await approved(["alice", "bob"]);
    const waiting = requests().certificateChain(view.id, 60_000);
    await exchangeUntil(ca, async () => (await status(view.id)) !== "signing", ["alice", "bob"]);
    expect(chain(await waiting)).toHaveLength(2);
  });

  it("a signature that does not verify fails the request and releases nothing", async () => {
    const { view, job } = await approved(["alice", "bob"]);
    await ca.services.store.transaction(() => completeJob(ca, job, new Uint8Array(64).fill(1)));
    const v = await requests().view(view.id);
    expect(v.status).toBe("failed");
    expect(v.failure).toMatch(/does not verify/);
    expect((await ca.services.store.getRequest(view.id))!.certificate).toBeNull();
    await expect(requests().certificateChain(view.id)).rejects.toMatchObject({ code: "CONFLICT" });
  });

  it("a genuine CA signature over other bytes is no signature for this request", async () => {
    const a = await approved(["alice", "bob"]);
    await exchangeUntil(ca, async () => (await status(a.view.id)) === "issued", ["alice", "bob"]);
    const b = await approved(["alice", "bob"]); // no exchange round runs for it
    const signed = (await ca.services.store.getSigningJob(a.job.id))!.signature!;
    await ca.services.store.transaction(() => completeJob(ca, b.job, signed));
    expect(await status(b.view.id)).toBe("failed");
    expect((await requests().view(b.view.id)).failure).toMatch(/does not verify/);
  });

  it("a failed signing job fails the request with its reason", async () => {
    const { view, job } = await approved(["alice", "bob"]);
    await ca.services.store.transaction(() =>
      completeJob(ca, job, null, "only 1 custodians remain who have not been excluded, 2 are needed"),
    );
    const v = await requests().view(view.id);
    expect(v.status).toBe("failed");
    expect(v.failure).toMatch(/only 1 custodians remain/);
  });
});
