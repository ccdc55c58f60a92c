// DESIGN §3.10 and §3.6 at the coordinator: malformed or misdirected signing messages get a 4xx and
// change nothing; one commitment per custodian per attempt; replays are refused; issuance still
// completes afterwards. Messages are crafted with a real custodian's identity and key share.
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
import { sealEnvelope, type MessageType, type SignedEnvelope } from "../../src/protocol/envelope.ts";
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

async function post(env: SignedEnvelope): Promise<{ status: number; detail: string }> {
  const res = await fetch(`${ca.url}/api/v1/signing/jobs/${jobId}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(env),
  });
  const body = (await res.json()) as { detail?: string };
  return { status: res.status, detail: body.detail ?? "" };
}
const seal = (type: MessageType, body: unknown, o: { recipient?: string; scope?: string } = {}) =>
  sealEnvelope(alice, {
    type,
    recipient: o.recipient ?? "coordinator",
    scope: o.scope ?? jobId,
    caKeyId,
    body,
  });
async function committed(): Promise<string[]> {
  return ((await (await fetch(`${ca.url}/api/v1/signing/jobs/${jobId}`)).json()) as { committed: string[] })
    .committed;
}

describe("signing messages at the coordinator", () => {
  it.each([
    [
      "a commitment that is not a group element",
      () => ({ jobId, attempt: 0, commitment: { ...pool.commit(), hiding: "ff".repeat(32) } }),
      /not a valid group element/,
    ],
    [
      "a commitment with another custodian's identifier",
      () => ({ jobId, attempt: 0, commitment: { ...pool.commit(), identifier: identifierForName("bob") } }),
      /another custodian's identifier/,
    ],
    [
      "a commitment naming another job",
      () => ({ jobId: "00000000-0000-4000-8000-000000000000", attempt: 0, commitment: pool.commit() }),
      /names another job/,
    ],
    ["a malformed body", () => ({ jobId, attempt: 0, commitment: "nope" }), /is malformed/],
  ])("refuses %s and stores nothing", async (_what, body, detail) => {
    const r = await post(seal("sign/commitment", body()));
    expect(r.status).toBe(400);
    expect(r.detail).toMatch(detail);
    expect(await committed()).not.toContain("alice");
  });

  it("refuses a message addressed to someone else, and a share from outside the package", async () => {
    expect(
      (
        await post(
          seal("sign/commitment", { jobId, attempt: 0, commitment: pool.commit() }, { recipient: "bob" }),
        )
      ).status,
    ).toBe(400);
    expect((await post(seal("sign/share", { jobId, attempt: 0, share: "00".repeat(32) }))).status).toBe(409);
    expect(await committed()).not.toContain("alice");
  });

  it("takes one commitment per custodian per attempt, and refuses a replay", async () => {
    const env = seal("sign/commitment", { jobId, attempt: 0, commitment: pool.commit() });
    expect((await post(env)).status).toBe(202);
    expect(await committed()).toContain("alice");
    expect((await post(env)).status).toBe(409);
    expect(
      (await post(seal("sign/commitment", { jobId, attempt: 0, commitment: pool.commit() }))).status,
    ).toBe(409);
    // Not even under another recipient field: one commitment per custodian per attempt.
    const star = seal(
      "sign/commitment",
      { jobId, attempt: 0, commitment: pool.commit() },
      { recipient: "*" },
    );
    expect((await post(star)).status).toBe(400);
  });

  it("issuance still completes: the session re-forms around the commitment no process holds nonces for", async () => {
    const a = custodianCli(sb, ca, "alice", ["sign", requestId]);
    const b = custodianCli(sb, ca, "bob", ["sign", requestId]);

    expect(await a.exited, a.stderr).toBe(0);
    expect(await b.exited, b.stderr).toBe(0);
    const v = (await requestView(ca, requestId)) as unknown as {
      status: string;
      signing: { culprits: unknown[]; events: { kind: string }[] };
    };
    expect(v.status).toBe("issued");
    // Nobody was blamed for the refused messages, and the stale package timed out rather than failing.
    expect(v.signing.culprits).toEqual([]);
    expect(v.signing.events.some((e) => e.kind === "timeout")).toBe(true);
  });
});
