// docs/architecture.md §3.10 and §3.6 at the coordinator's exchange: malformed or misdirected signing
// messages get a 4xx result and change nothing, replays are refused, and issuance still completes afterwards
// around commitments no process holds nonces for. Messages are crafted with a real custodian's
// identity and key share.
import { signReadHeader } from "../../src/protocol/signed-read.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { Sandbox } from "../helpers/processes.ts";
import {
  startDevCa,
  custodianCli,
  submitCsr,
  makeCsr,
  KEY_ARGS,
  requestView,
  type DevCa,
} from "../helpers/dev-ca.ts";
import { randomBytes } from "node:crypto";
import { sealEnvelope, type MessageType, type SignedEnvelope } from "../../src/protocol/envelope.ts";
import type { ExchangeResponse } from "../../src/protocol/signing-messages.ts";
import { CustodianHome } from "../../src/custodian/home.ts";
import { NoncePool } from "../../src/threshold/sign.ts";
import { hexToBytes } from "../../src/threshold/encoding.ts";
import { identifierForName } from "../../src/threshold/suite.ts";

const sb = new Sandbox();
let ca: DevCa;
let requestId: string;
let jobId: string;
let alice: { name: string; signingSecret: Uint8Array };
let pool: NoncePool;
let caKeyId: string;

beforeAll(async () => {
  ca = await startDevCa(sb, { args: ["--share-timeout", "3"] });
  const work = sb.tempDir();
  const csr = makeCsr(work, "input", {
    newkey: KEY_ARGS["p-256"]!,
    subject: "/CN=input.example.internal",
    sans: "DNS:input.example.internal",
  });
  requestId = (await submitCsr(ca, csr.csrPem)).body.id as string;
  for (const name of ["alice", "bob"]) {
    const p = custodianCli(sb, ca, name, ["approve", requestId, "--yes", "--no-wait"]);
    expect(await p.exited, p.stderr).toBe(0);
  }
  const view = (await requestView(ca, requestId)) as unknown as { signing: { job: string } };
  jobId = view.signing.job;
  const h = ca.home("alice");
  const secrets = await new CustodianHome(h.home).open(readFileSync(h.passphraseFile, "utf8").trim());
  alice = {
    name: "alice",
    signingSecret: new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url")),
  };
  pool = new NoncePool({
    identifier: secrets.share!.identifier,
    signingShare: hexToBytes(secrets.share!.signingShare),
  });
  caKeyId = secrets.share!.caKeyId;
}, 120_000);
afterAll(() => sb.cleanup());

const INSTANCE = randomBytes(16).toString("hex");
let batch = 0;

async function exchange(envelopes: SignedEnvelope[], o: { custodian?: string; instance?: string } = {}) {
  const url = `${ca.url}/api/v1/custodians/exchange`;
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: signReadHeader(alice, "POST", new URL(url)),
    },
    body: JSON.stringify({
      custodian: o.custodian ?? "alice",
      instance: o.instance ?? INSTANCE,
      envelopes,
      wait: 0,
      review: false,
    }),
  });
  return { status: res.status, body: (await res.json()) as ExchangeResponse & { detail?: string } };
}
async function item(env: SignedEnvelope): Promise<{ status: number; detail: string }> {
  const r = await exchange([env]);
  expect(r.status).toBe(200);
  return { status: r.body.results[0]!.status, detail: r.body.results[0]!.detail ?? "" };
}
const seal = (type: MessageType, body: unknown, o: { recipient?: string; scope?: string } = {}) =>
  sealEnvelope(alice, {
    type,
    recipient: o.recipient ?? "coordinator",
    scope: o.scope ?? INSTANCE,
    caKeyId,
    body,
  });
const offer = (commitments: unknown[], o: { instance?: string } = {}) => ({
  instance: o.instance ?? INSTANCE,
  batch: batch++,
  supersede: false,
  commitments,
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
});
/** Keys of this test's offers the coordinator holds open. */
async function open(): Promise<string[]> {
  return (await exchange([])).body.offered;
}

describe("signing messages at the coordinator's exchange", () => {
  it.each([
    [
      "a commitment that is not a group element",
      () => offer([{ ...pool.commit(), hiding: "ff".repeat(32) }]),
      /not a valid group element/,
    ],
    [
      "a commitment with another custodian's identifier",
      () => offer([{ ...pool.commit(), identifier: identifierForName("bob") }]),
      /another custodian's identifier/,
    ],
    [
      "an offer for another process",
      () => offer([pool.commit()], { instance: "0".repeat(32) }),
      /another process/,
    ],
    ["a malformed body", () => ({ instance: INSTANCE, commitments: "nope" }), /is malformed/],
  ])("refuses %s and stores nothing", async (_what, body, detail) => {
    const r = await item(seal("sign/offer", body()));
    expect(r.status).toBe(400);
    expect(r.detail).toMatch(detail);
    expect(await open()).toEqual([]);
  });

  it("refuses a message addressed to someone else, another custodian's envelope, and a share from outside the package", async () => {
    expect((await item(seal("sign/offer", offer([pool.commit()]), { recipient: "bob" }))).status).toBe(400);
    const share = seal("sign/share", { jobId, attempt: 0, share: "00".repeat(32) }, { scope: jobId });
    expect((await item(share)).status).toBe(409);
    const asBob = await exchange([seal("sign/offer", offer([pool.commit()]))], { custodian: "bob" });
    // Signed by alice, asking for bob's work: refused whole (403), before any item is read.
    expect(asBob.status).toBe(403);
    expect(asBob.body.detail).toMatch(/signed by alice, not by bob/);
    expect(await open()).toEqual([]);
  });

  it("refuses a malformed exchange with a problem document", async () => {
    const r = await exchange([], { instance: "not-hex" });
    expect(r.status).toBe(400);
    expect(r.body.detail).toMatch(/instance/);
    expect((await exchange([], { custodian: "mallory" })).status).toBe(400);
  });

  it("keeps an offer once: the same envelope again is answered as before and changes nothing; another for the same batch is refused", async () => {
    const batch = offer([pool.commit(), pool.commit()]);
    const env = seal("sign/offer", batch);
    expect((await item(env)).status).toBe(202);
    expect(await open()).toHaveLength(2);
    expect((await item(env)).status).toBe(202); // resent after a lost answer (or replayed): a no-op
    expect(await open()).toHaveLength(2);
    expect((await item(seal("sign/offer", batch))).status).toBe(409); // a new envelope, same batch
    expect(await open()).toHaveLength(2);
  });

  it("issuance still completes: the session re-forms around commitments no process answers for", async () => {
    const a = custodianCli(sb, ca, "alice", ["sign", requestId]);
    const b = custodianCli(sb, ca, "bob", ["sign", requestId]);

    expect(await a.exited, a.stderr).toBe(0);
    expect(await b.exited, b.stderr).toBe(0);
    const v = (await requestView(ca, requestId)) as unknown as {
      status: string;
      signing: { culprits: unknown[]; events: { kind: string }[] };
    };
    expect(v.status).toBe("issued");
    // Nobody was blamed for the refused messages.
    expect(v.signing.culprits).toEqual([]);
  });
});
