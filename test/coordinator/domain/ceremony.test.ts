// The key ceremony on the coordinator's domain, in one process (test/helpers/in-process-ca.ts): the
// real DKG among three custodians, then the root signed by the threshold and released only after
// verifySigned (docs/architecture.md §3.8). One ceremony at a time, and none once the CA has a key.
import { X509Certificate } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { META_CA_CERT, META_CA_KEY } from "../../../src/coordinator/ceremony.ts";
import { ed25519Spki } from "../../../src/x509/tbs.ts";
import {
  completeJob,
  equipCustodians,
  exchangeUntil,
  newCoordinator,
  runDkg,
  type InProcessCa,
} from "../../helpers/in-process-ca.ts";

let ca: InProcessCa | undefined;
afterEach(async () => {
  await ca?.close();
  ca = undefined;
});

const rootOf = async (c: InProcessCa) => {
  const b64 = await c.services.store.getMeta(META_CA_CERT);
  return b64 ? new X509Certificate(Buffer.from(b64, "base64")) : null;
};

describe("key ceremony (in process)", () => {
  it("starts a ceremony in round 1 and refuses a second one while it runs", async () => {
    ca = await newCoordinator();
    const first = await ca.services.ceremonies.start();
    expect(first.status).toBe("round1");
    expect(first.announcement.custodians.map((c) => c.name)).toEqual(ca.names);
    await expect(ca.services.ceremonies.start()).rejects.toMatchObject({ code: "CONFLICT" });
    expect((await ca.services.ceremonies.view("current")).id).toBe(first.id);
  });

  it("runs the DKG, signs the root with the threshold, and then refuses a new ceremony", async () => {
    ca = await newCoordinator();
    const c = ca;
    const { id } = await c.services.ceremonies.start();
    const results = await runDkg(c);
    // All custodians derived one group key; the coordinator stored it and started the root job.
    expect(await c.services.caPublicKey()).toEqual(results[0]!.public.commitments[0]);
    expect((await c.services.ceremonies.view(id)).status).not.toBe("complete");
    expect(await rootOf(c)).toBeNull();
    await expect(c.services.ceremonies.start()).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(/already has a key/),
    });
    equipCustodians(c, results);
    await exchangeUntil(c, async () => (await c.services.ceremonies.view(id)).status === "complete");
    const root = await rootOf(c);
    expect(root).not.toBeNull();
    // Self-signed under the group key the DKG produced.
    const key = await c.services.caPublicKey();
    expect(Buffer.from(root!.publicKey.export({ format: "der", type: "spki" }))).toEqual(
      Buffer.from(ed25519Spki(key!)),
    );
    expect(root!.verify(root!.publicKey)).toBe(true);
    expect(root!.subject).toMatch(/CN=tca Example Root CA/);
    expect((await c.services.health()).ready).toBe(true);
    // The first, empty CRL was scheduled with the root.
    expect((await c.services.store.getCrlState()).job).toMatch(/.+/);
    expect(await c.services.store.getMeta(META_CA_KEY)).toBeTruthy();
  });

  it("a root signature that does not verify fails the ceremony and stores no root", async () => {
    ca = await newCoordinator();
    const c = ca;
    const { id } = await c.services.ceremonies.start();
    await runDkg(c);
    const [job] = await c.services.store.listSigningJobs("signing");
    expect(job?.kind).toBe("root");
    // The signing service hands completed jobs to the kind's handler: give it a wrong signature.
    await c.services.store.transaction(() =>
      completeJob(c, { ...job!, status: "done" }, new Uint8Array(64).fill(7)),
    );
    const view = await c.services.ceremonies.view(id);
    expect(view.status).toBe("failed");
    expect(view.failure?.reason).toMatch(/does not verify/);
    expect(await rootOf(c)).toBeNull();
  });
});
