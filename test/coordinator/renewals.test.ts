// Renewal by the current certificate (src/coordinator/http/renewals.ts, docs/revocation.md) on an
// in-process CA behind its real router, with a clock the test moves: a challenge is used once (a
// replay is refused), a signature by another key is refused, other names are refused, an expired
// or revoked certificate cannot be renewed; the renewal belongs to the original requester and
// profile, carries renewalOf in its view and its proof in custodians' review items, and is
// followed with the challenge as its only credential. A custodian's own check (renewal-check.ts)
// refuses a proof the coordinator tampered with. certificateHold is not offered, but one already
// stored still goes into CRLs.
import { storedSerial } from "../../src/x509/serial.ts";
import "reflect-metadata";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createHash, generateKeyPairSync, webcrypto, X509Certificate, type KeyObject } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";
import pino from "pino";
import * as x509 from "@peculiar/x509";
import { approval, exchangeUntil, readyCa, type InProcessCa } from "../helpers/in-process-ca.ts";
import { routes } from "../../src/coordinator/http/routes.ts";
import { MAX_LIVE_RENEWAL_CHALLENGES } from "../../src/coordinator/http/renewals.ts";
import { checkDistinctFiles, renewDaemon, statePath, writeAtomically } from "../../src/requester/renew.ts";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorHandler } from "../../src/coordinator/http/problem.ts";
import { renewalMessage, signRenewal, type RenewalProof } from "../../src/protocol/renewal.ts";
import { CrlParamsSchema } from "../../src/protocol/crl-params.ts";
import { checkRenewal } from "../../src/custodian/renewal-check.ts";
import { evaluatePolicy, PolicySchema } from "../../src/custodian/policy.ts";
import { judge, leafParamsOfItem } from "../../src/custodian/session.ts";
import type { Journal } from "../../src/custodian/journal.ts";
import type { ReviewItem } from "../../src/protocol/signing-messages.ts";
import { displaySerial } from "../../src/x509/serial.ts";
import { sha256Hex } from "../../src/common/hash.ts";
import { splitCertificate } from "../../src/x509/assemble.ts";

let ca: InProcessCa;
let server: Server;
let url: string;

beforeAll(async () => {
  ca = await readyCa();
  const app = express();
  app.use(routes(ca.services));
  app.use(errorHandler(pino({ level: "silent" })));
  server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);
afterAll(async () => {
  server?.close();
  await ca?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

const crypto = webcrypto as unknown as Crypto;

/** A P-256 key (node KeyObject) and a CSR for it with these names (CN, and SANs unless `cnOnly`). */
async function keyAndCsr(
  names: string[],
  key?: KeyObject,
  cnOnly = false,
): Promise<{ key: KeyObject; csrPem: string; csrDer: Uint8Array }> {
  const k = key ?? generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const { createPublicKey } = await import("node:crypto");
  const keys = {
    privateKey: await crypto.subtle.importKey(
      "pkcs8",
      k.export({ type: "pkcs8", format: "der" }),
      alg,
      false,
      ["sign"],
    ),
    publicKey: await crypto.subtle.importKey(
      "spki",
      createPublicKey(k).export({ type: "spki", format: "der" }),
      alg,
      true,
      ["verify"],
    ),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0]}`,
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: cnOnly
        ? []
        : [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value })))],
    },
    crypto,
  );
  return { key: k, csrPem: csr.toString("pem"), csrDer: new Uint8Array(csr.rawData) };
}

/** Issues a certificate for `names` (validity 1 h) through two approvals; returns its serial (stored) and key. */
async function issued(names: string[]): Promise<{ serial: string; key: KeyObject; id: string }> {
  const { key, csrPem } = await keyAndCsr(names);
  const r = ca.services.requests;
  const v = await r.submit({
    requester: r.requesterFor("dev"),
    profile: "server",
    csr: csrPem,
    validityHours: 1,
  });
  for (const name of ["alice", "bob"]) await r.decide(v.id, approval(ca, name, v));
  await exchangeUntil(ca, async () => (await r.view(v.id)).status === "issued");
  return { serial: v.serial, key, id: v.id };
}

async function post(
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method: "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function challengeFor(serial: string): Promise<string> {
  const c = await post(`/api/v1/certificates/${displaySerial(serial)}/renewal-challenge`);
  expect(c.status, JSON.stringify(c.json)).toBe(201);
  return c.json.challenge as string;
}

/** A renewal body: CSR for `names` with `newKey` (default: the current key), signed by `signer`. */
async function renewal(
  serial: string,
  challenge: string,
  signer: KeyObject,
  names: string[],
  newKey?: KeyObject,
): Promise<{ csr: string; challenge: string; signature: string }> {
  const { csrPem, csrDer } = await keyAndCsr(names, newKey ?? signer);
  return {
    csr: csrPem,
    challenge,
    signature: signRenewal(signer, renewalMessage(serial, challenge, csrDer)),
  };
}

const NAMES = ["renew.example.internal", "alt.example.internal"];

describe("renewal by the current certificate", () => {
  it("renews once, keeps requester, profile and names; the challenge is used once; the renewer follows it with the challenge", async () => {
    const cert = await issued(NAMES);
    const challenge = await challengeFor(cert.serial);
    const body = await renewal(cert.serial, challenge, cert.key, NAMES);
    const ok = await post(`/api/v1/certificates/${cert.serial.toUpperCase()}/renew`, body);
    expect(ok.status, JSON.stringify(ok.json)).toBe(202);
    expect(ok.json).toMatchObject({ status: "pending", renewalOf: displaySerial(cert.serial) });
    const id = ok.json.id as string;
    const view = await ca.services.requests.view(id);
    expect(view).toMatchObject({
      requester: "dev",
      profile: "server",
      renewalOf: displaySerial(cert.serial),
    });
    expect(view.serial).not.toBe(cert.serial);
    expect(view.sans.map((s) => s.value)).toEqual(NAMES);
    // One hour again, as the original.
    expect(Date.parse(view.notAfter) - Date.parse(view.notBefore)).toBe(3_600_000);

    // Replayed, even with the same body: refused, and nothing new is stored.
    const replay = await post(`/api/v1/certificates/${cert.serial}/renew`, body);
    expect(replay.status).toBe(403);
    expect(replay.json.detail).toMatch(/challenge is unknown, expired, already used/);

    // The renewer's view: the challenge is its credential; anything else is "not found".
    const get = (token: string) =>
      fetch(`${url}/api/v1/renewals/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get("x".repeat(43))).status).toBe(404);
    const pending = (await (await get(challenge)).json()) as Record<string, unknown>;
    expect(pending).toMatchObject({
      id,
      status: "pending",
      chain: null,
      renewalOf: displaySerial(cert.serial),
    });
    expect((await fetch(`${url}/api/v1/renewals/${id}`)).status).toBe(401);

    // Custodians are shown the proof with the request.
    const page = await ca.services.requests.reviewItems("alice", null, 100);
    const all = [...page.items, ...(await ca.services.requests.reviewItems("carol", null, 100)).items];
    const item = all.find((i) => i.id === id)!;
    expect(displaySerial(item.renewal!.of)).toBe(displaySerial(cert.serial));
    expect(item.renewal?.proof.challenge).toBe(challenge);

    for (const name of ["alice", "bob"]) await ca.services.requests.decide(id, approval(ca, name, view));
    await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
    const done = (await (await get(challenge)).json()) as { status: string; chain: string; serial: string };
    expect(done.status).toBe("issued");
    expect(done.chain).toMatch(/^-----BEGIN CERTIFICATE-----/);

    // One live renewal per certificate: renewed once, it is not renewed again (409 names the renewal).
    const c2 = await challengeFor(cert.serial);
    const again = await post(
      `/api/v1/certificates/${cert.serial}/renew`,
      await renewal(cert.serial, c2, cert.key, NAMES),
    );
    expect(again.status).toBe(409);
    expect(again.json.detail).toContain(`request ${id} issued serial ${done.serial}`);
    expect(again.json).toMatchObject({ reason: "RENEWAL_EXISTS", renewal: id, serial: done.serial });

    // Revoking the original does not revoke the renewal, but the answer lists it.
    const admin = (await import("../helpers/processes.ts")).EXAMPLE_ADMIN_TOKEN;
    const rv = await fetch(`${url}/api/v1/certificates/${cert.serial}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "keyCompromise" }),
    });
    expect(rv.status).toBe(200);
    expect(((await rv.json()) as { renewals: string[] }).renewals).toEqual([done.serial]);
    expect((await ca.services.store.getCertificate(storedSerial(done.serial)!))?.revocation).toBeNull();
  });

  it("refuses a second renewal while one is pending (409 names it); a rejected one frees the certificate", async () => {
    const cert = await issued(NAMES);
    const first = await post(
      `/api/v1/certificates/${cert.serial}/renew`,
      await renewal(cert.serial, await challengeFor(cert.serial), cert.key, NAMES),
    );
    expect(first.status).toBe(202);
    const second = await post(
      `/api/v1/certificates/${cert.serial}/renew`,
      await renewal(cert.serial, await challengeFor(cert.serial), cert.key, NAMES),
    );
    expect(second.status).toBe(409);
    expect(second.json.detail).toMatch(
      new RegExp(`renewal in progress: request ${first.json.id as string} .* is pending`),
    );
    const view = await ca.services.requests.view(first.json.id as string);
    await ca.services.requests.decide(view.id, approval(ca, "alice", view, "reject", { reason: "no" }));
    expect((await ca.services.requests.view(view.id)).status).toBe("rejected");
    const third = await post(
      `/api/v1/certificates/${cert.serial}/renew`,
      await renewal(cert.serial, await challengeFor(cert.serial), cert.key, NAMES),
    );
    expect(third.status, JSON.stringify(third.json)).toBe(202);
    // Decided again at intake, inside the write transaction every replica serializes on: a second
    // renewal that got past the route's check (another replica, the same instant) is refused there.
    const record = (await ca.services.store.getRenewal(third.json.id as string))!;
    const { csrPem } = await keyAndCsr(NAMES);
    const r = ca.services.requests;
    const again = {
      renewalOf: record.renewalOf,
      challengeSha256: record.challengeSha256,
      proof: record.proof,
      createdAt: record.createdAt,
    };
    await expect(
      r.submit({ requester: r.requesterFor("dev"), profile: "server", csr: csrPem, renewal: again }),
    ).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/already has a renewal/) });
  });

  it("caps live challenges per certificate (429 with Retry-After) and purges expired ones, used or not", async () => {
    const cert = await issued(NAMES);
    const used = await challengeFor(cert.serial);
    expect(
      (
        await post(
          `/api/v1/certificates/${cert.serial}/renew`,
          await renewal(cert.serial, used, cert.key, NAMES),
        )
      ).status,
    ).toBe(202);
    for (let i = 0; i < MAX_LIVE_RENEWAL_CHALLENGES; i++) await challengeFor(cert.serial);
    const res = await fetch(`${url}/api/v1/certificates/${cert.serial}/renewal-challenge`, {
      method: "POST",
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(res.headers.get("retry-after"))).toBeLessThanOrEqual(300);
    // Another certificate is not affected.
    const other = await issued(NAMES);
    await challengeFor(other.serial);

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 6 * 60_000); // past every challenge's 5 minutes
    await challengeFor(cert.serial); // purges the expired ones
    // The used challenge's row is gone too: its hash can be stored again (a primary key).
    const sha = createHash("sha256").update(used, "utf8").digest("hex");
    await ca.services.store.insertRenewalChallenge({
      challengeSha256: sha,
      serial: storedSerial(cert.serial)!,
      expiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    expect(
      await ca.services.store.useRenewalChallenge(sha, storedSerial(cert.serial)!, new Date().toISOString()),
    ).toBe(false); // expired: never usable again
  });

  it("gives a renewal the original's exact lifetime, never longer, and never past the CA's notAfter", async () => {
    const { key, csrPem } = await keyAndCsr(["odd.example.internal"]);
    const r = ca.services.requests;
    const v = await r.submit({
      requester: r.requesterFor("dev"),
      profile: "server",
      csr: csrPem,
      validityHours: 1.5,
    });
    for (const name of ["alice", "bob"]) await r.decide(v.id, approval(ca, name, v));
    await exchangeUntil(ca, async () => (await r.view(v.id)).status === "issued");
    const ok = await post(
      `/api/v1/certificates/${v.serial}/renew`,
      await renewal(v.serial, await challengeFor(v.serial), key, ["odd.example.internal"]),
    );
    expect(ok.status, JSON.stringify(ok.json)).toBe(202);
    const nv = await r.view(ok.json.id as string);
    expect(Date.parse(nv.notAfter) - Date.parse(nv.notBefore)).toBe(90 * 60_000); // not rounded to 2 h
    // Rejected, so the certificate may be renewed again (one live renewal at a time).
    await r.decide(nv.id, approval(ca, "alice", nv, "reject", { reason: "test" }));

    // Near the CA's own expiry a renewal is clamped to it (intake), not refused for being too long.
    const caNotAfter = new X509Certificate(Buffer.from((await ca.services.caCertificate())!)).validTo;
    const end = Date.parse(caNotAfter);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(end - 20 * 60_000);
    const late = await keyAndCsr(["odd.example.internal"]);
    const lv = await r.submit({
      requester: r.requesterFor("dev"),
      profile: "server",
      csr: late.csrPem,
      validityHours: 1.5,
      renewal: {
        renewalOf: storedSerial(v.serial)!,
        challengeSha256: "0".repeat(64),
        proof: { certificate: "AA==", challenge: "A".repeat(43), signature: "AA==" },
        createdAt: new Date().toISOString(),
      },
    });
    expect(Date.parse(lv.notAfter)).toBe(end);
  });

  it("refuses a signature made with another key, which does not use the holder's challenge up", async () => {
    const cert = await issued(NAMES);
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const challenge = await challengeFor(cert.serial);
    const forged = await renewal(cert.serial, challenge, other, NAMES);
    const r = await post(`/api/v1/certificates/${cert.serial}/renew`, forged);
    expect(r.status).toBe(403);
    expect(r.json.detail).toMatch(/does not verify with the key of certificate/);
    // The signature is checked before the challenge is used: the holder's attempt still goes through...
    const honest = await renewal(cert.serial, challenge, cert.key, NAMES);
    const ok = await post(`/api/v1/certificates/${cert.serial}/renew`, honest);
    expect(ok.status, JSON.stringify(ok.json)).toBe(202);
    // ...once: a replay of it, or the forger again, finds the challenge used.
    expect((await post(`/api/v1/certificates/${cert.serial}/renew`, honest)).status).toBe(403);
    expect((await post(`/api/v1/certificates/${cert.serial}/renew`, forged)).status).toBe(403);
    // A signature over another certificate's serial does not count either.
    const second = await issued(NAMES);
    const c2 = await challengeFor(second.serial);
    const swapped = await renewal(cert.serial, c2, second.key, NAMES);
    expect((await post(`/api/v1/certificates/${second.serial}/renew`, swapped)).status).toBe(403);
  });

  it("refuses other names (422) and keeps the names with a new key", async () => {
    const cert = await issued(NAMES);
    const c = await challengeFor(cert.serial);
    const more = await renewal(cert.serial, c, cert.key, [...NAMES, "extra.example.internal"]);
    const r = await post(`/api/v1/certificates/${cert.serial}/renew`, more);
    expect(r.status).toBe(422);
    expect(r.json.detail).toMatch(/keeps the names.*\+dns:extra\.example\.internal/);
    const rekey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const c2 = await challengeFor(cert.serial);
    const ok = await post(
      `/api/v1/certificates/${cert.serial}/renew`,
      await renewal(cert.serial, c2, cert.key, NAMES, rekey),
    );
    expect(ok.status, JSON.stringify(ok.json)).toBe(202);
  });

  it("refuses an expired certificate (403) and a revoked one (409)", async () => {
    const cert = await issued(NAMES);
    const c = await challengeFor(cert.serial);
    const body = await renewal(cert.serial, c, cert.key, NAMES);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 2 * 3_600_000);
    const expired = await post(`/api/v1/certificates/${cert.serial}/renew`, body);
    expect(expired.status).toBe(403);
    expect(expired.json.detail).toMatch(/expired at .*cannot be renewed/);
    expect((await post(`/api/v1/certificates/${cert.serial}/renewal-challenge`)).status).toBe(403);
    vi.useRealTimers();

    await ca.services.revocations.revoke(cert.serial, "superseded", { kind: "admin", name: "admin" });
    const revoked = await post(`/api/v1/certificates/${cert.serial}/renew`, body);
    expect(revoked.status).toBe(409);
    expect(revoked.json.detail).toMatch(/revoked .*superseded.*cannot be renewed/);
    // Unknown or malformed serials.
    expect((await post(`/api/v1/certificates/0a1b2c3d4e5f60718293/renewal-challenge`)).status).toBe(404);
    expect((await post(`/api/v1/certificates/xyz/renewal-challenge`)).status).toBe(400);
  });
});

describe("a custodian's own check of a renewal", () => {
  /** A journal that holds an approval of exactly these TBS hashes. */
  const journalApproving = (hashes: string[]): Journal =>
    ({
      entries: () => hashes.map((tbsSha256) => ({ kind: "approval", decision: "approve", tbsSha256 })),
      lastCrl: () => undefined,
    }) as unknown as Journal;

  it("approves a renewal of a certificate it approved, and nothing the coordinator tampered with", async () => {
    const cert = await issued(["agent.example.internal"]);
    const c = await challengeFor(cert.serial);
    const ok = await post(
      `/api/v1/certificates/${cert.serial}/renew`,
      await renewal(cert.serial, c, cert.key, ["agent.example.internal"]),
    );
    expect(ok.status).toBe(202);
    const items = [
      ...(await ca.services.requests.reviewItems("alice", null, 500)).items,
      ...(await ca.services.requests.reviewItems("carol", null, 500)).items,
    ];
    const item = items.find((i) => i.id === ok.json.id)!;
    const caCert = (await ca.services.caCertificate())!;
    const orig = await ca.services.store.getRequestBySerial(storedSerial(cert.serial)!);
    const origTbs = sha256Hex(splitCertificate(orig!.certificate!).tbs);

    const policy = PolicySchema.parse({ version: 1, renewals: "approveIfApprovedOriginal" });
    const review = {
      request: item,
      tbs: { sans: [], publicKey: { type: "ec", bits: 256 } },
      commonNames: [],
    };
    const verdict = checkRenewal(item, caCert, journalApproving([origTbs]));
    expect(verdict).toEqual({ ok: true, serial: displaySerial(cert.serial) });
    expect(evaluatePolicy(policy, review as never, verdict)).toMatchObject({ approve: true });
    // Without the option, or without its own approval of the original: a person decides.
    expect(evaluatePolicy(PolicySchema.parse({ version: 1 }), review as never, verdict).approve).toBe(false);
    const notMine = checkRenewal(item, caCert, journalApproving(["0".repeat(64)]));
    expect(notMine).toMatchObject({ ok: false, reason: expect.stringMatching(/did not approve/) });
    expect(evaluatePolicy(policy, review as never, notMine).approve).toBe(false);

    // The coordinator swaps the CSR (another key, same names): the holder never signed it.
    const swapped = await keyAndCsr(["agent.example.internal"]);
    const tampered: ReviewItem = { ...item, csr: Buffer.from(swapped.csrDer).toString("base64") };
    expect(checkRenewal(tampered, caCert, journalApproving([origTbs]))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not signed with the key/),
    });
    // ...or claims another original: a certificate not signed by this CA is refused.
    const fake = {
      ...item.renewal!.proof,
      certificate: Buffer.from(splitCertificate(orig!.certificate!).tbs).toString("base64"),
    } as RenewalProof;
    expect(
      checkRenewal(
        { ...item, renewal: { of: cert.serial, proof: fake } },
        caCert,
        journalApproving([origTbs]),
      ).ok,
    ).toBe(false);
  });
});

describe("the OCSP responder certificate (docs/ocsp.md)", () => {
  const CN = ["tca OCSP responder"];
  /** A responder certificate issued to requester ocsp; its serial, key and DER. */
  async function responder(): Promise<{ serial: string; key: KeyObject; der: Uint8Array }> {
    const { key, csrPem } = await keyAndCsr(CN, undefined, true);
    const r = ca.services.requests;
    const v = await r.submit({ requester: r.requesterFor("ocsp"), profile: "ocsp-responder", csr: csrPem });
    for (const name of ["alice", "bob"]) await r.decide(v.id, approval(ca, name, v));
    await exchangeUntil(ca, async () => (await r.view(v.id)).status === "issued");
    const rec = await ca.services.store.getRequestBySerial(storedSerial(v.serial)!);
    return { serial: v.serial, key, der: rec!.certificate! };
  }

  it("is not renewable by its holder through the public API: 409 NOT_RENEWABLE, nothing submitted", async () => {
    const cert = await responder();
    const before = (await ca.services.store.listRequests({})).length;
    const c = await post(`/api/v1/certificates/${displaySerial(cert.serial)}/renewal-challenge`);
    expect(c.status).toBe(409);
    expect(c.json).toMatchObject({ reason: "NOT_RENEWABLE" });
    expect(c.json.detail, JSON.stringify(c.json)).toMatch(
      /can sign OCSP answers for this CA and is never renewed by its holder/,
    );
    // Even with a correctly signed body (a challenge it never got): refused before anything else.
    const { csrPem, csrDer } = await keyAndCsr(CN, cert.key, true);
    const challenge = "A".repeat(43);
    const renew = await post(`/api/v1/certificates/${displaySerial(cert.serial)}/renew`, {
      csr: csrPem,
      challenge,
      signature: signRenewal(cert.key, renewalMessage(cert.serial, challenge, csrDer)),
    });
    expect(renew.status).toBe(409);
    expect(renew.json).toMatchObject({ reason: "NOT_RENEWABLE" });
    expect((await ca.services.store.listRequests({})).length).toBe(before);
  });

  it("a custodian does not approve a review item claiming to renew one, by rule or by renewals policy", async () => {
    const cert = await responder();
    // The coordinator's own loop asks anew: a plain request, which an agent rule may approve.
    const { csrPem, csrDer } = await keyAndCsr(
      CN,
      generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
      true,
    );
    const r = ca.services.requests;
    const v = await r.submit({ requester: r.requesterFor("ocsp"), profile: "ocsp-responder", csr: csrPem });
    const items = [];
    for (const name of ["alice", "bob", "carol"]) items.push(...(await r.reviewItems(name, null, 500)).items);
    const item = items.find((i) => i.id === v.id)!;
    const caCert = (await ca.services.caCertificate())!;
    const policy = PolicySchema.parse({
      version: 1,
      renewals: "approveIfApprovedOriginal",
      autoApprove: [
        {
          name: "ocsp-responder",
          profiles: ["ocsp-responder"],
          requesters: ["ocsp"],
          names: ["tca OCSP responder"],
          maxValidityHours: 168,
        },
      ],
    });
    const plain = judge(ca.config, caCert, item, leafParamsOfItem(item), item.tbs).review;
    expect(plain.problem).toBeUndefined();
    expect(evaluatePolicy(policy, plain)).toMatchObject({ approve: true });

    // An untrusted coordinator presents the same request as a renewal, with a holder's valid proof.
    const challenge = "B".repeat(43);
    const renewing: ReviewItem = {
      ...item,
      renewal: {
        of: storedSerial(cert.serial)!,
        proof: {
          certificate: Buffer.from(cert.der).toString("base64"),
          challenge,
          signature: signRenewal(cert.key, renewalMessage(storedSerial(cert.serial)!, challenge, csrDer)),
        },
      },
    };
    const review = judge(ca.config, caCert, renewing, leafParamsOfItem(renewing), renewing.tbs).review;
    expect(review.problem).toMatch(/can sign OCSP answers.*never renewed by its holder/);
    const approvedOriginal = {
      entries: () => [
        { kind: "approval", decision: "approve", tbsSha256: sha256Hex(splitCertificate(cert.der).tbs) },
      ],
      lastCrl: () => undefined,
    } as unknown as Journal;
    const verdict = checkRenewal(renewing, caCert, approvedOriginal);
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(/can sign OCSP answers/) });
    expect(evaluatePolicy(policy, review, verdict)).toMatchObject({
      approve: false,
      reason: expect.stringMatching(/not approvable: .*OCSP/),
    });
  });
});

describe("certificateHold", () => {
  it("is not offered when revoking, but a hold already stored still goes into the CRL", async () => {
    const cert = await issued(["hold.example.internal"]);
    const admin = (await import("../helpers/processes.ts")).EXAMPLE_ADMIN_TOKEN;
    const res = await fetch(`${url}/api/v1/certificates/${cert.serial}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "certificateHold" }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).not.toMatch(/certificateHold/);
    await expect(
      ca.services.revocations.revoke(cert.serial, "certificateHold", { kind: "admin", name: "admin" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });

    // An older database holds one: the next CRL lists it with its reason.
    await ca.services.store.transaction(async (tx) => {
      await tx.insertRevocation({
        serial: storedSerial(cert.serial)!,
        requestId: cert.id,
        reason: "certificateHold",
        revokedAt: new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(),
        revokedBy: "admin:older-tca",
      });
      await ca.services.revocations.scheduleCrl();
    });
    const state = await ca.services.store.getCrlState();
    const job = await ca.services.store.getSigningJob(state.job!);
    const params = CrlParamsSchema.parse(job!.params);
    expect(params.entries).toContainEqual(
      expect.objectContaining({ serial: storedSerial(cert.serial), reason: "certificateHold" }),
    );
  });
});

describe("tca renew's daemon and files (src/requester/renew.ts) against this coordinator", () => {
  const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
    for (let i = 0; i < 400; i++) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`never: ${what}`);
  };

  /** An issued certificate written to files (as `tca request` leaves them). */
  async function onDisk(name: string): Promise<{ serial: string; certFile: string; keyFile: string }> {
    const cert = await issued([name]);
    const dir = mkdtempSync(join(tmpdir(), "tca-renew-unit-"));
    const certFile = join(dir, `${name}.crt`);
    const keyFile = join(dir, `${name}.key`);
    writeFileSync(certFile, (await ca.services.requests.certificateChain(cert.id))!);
    writeFileSync(keyFile, cert.key.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    return { serial: cert.serial, certFile, keyFile };
  }

  it("follows one renewal past --timeout and across a restart (state file, 0600), never submitting another", async () => {
    const f = await onDisk("follow.example.internal");
    const base = { ...f, rekey: true, coordinator: url, timeoutMs: 500, renewAt: 0.0001, maxBackoffMs: 50 };
    const state = statePath(base);
    const first = new AbortController();
    const lines: string[] = [];
    const run1 = renewDaemon({ ...base, signal: first.signal }, (l) => lines.push(l));
    await until("the state file", () => existsSync(state));
    expect(statSync(state).mode & 0o777).toBe(0o600);
    const st = JSON.parse(readFileSync(state, "utf8")) as { id: string; serial: string; newKeyPem: string };
    expect(st.newKeyPem).toMatch(/BEGIN PRIVATE KEY/);
    // Longer than --timeout: still the same renewal, no second one.
    await new Promise((r) => setTimeout(r, 1200));
    first.abort();
    expect(await run1).toMatchObject({ stopped: "signal", renewals: 0 });
    expect(existsSync(state)).toBe(true); // kept for the next daemon

    const second = new AbortController();
    const run2 = renewDaemon({ ...base, signal: second.signal }, (l) => lines.push(l));
    await until("the restarted daemon follows it", () =>
      lines.some((l) => l.includes(`following renewal ${st.id}`)),
    );
    const view = await ca.services.requests.view(st.id);
    for (const name of ["alice", "bob"]) await ca.services.requests.decide(st.id, approval(ca, name, view));
    await exchangeUntil(ca, async () => (await ca.services.requests.view(st.id)).status === "issued");
    await until("the renewal written", () => !existsSync(state));
    second.abort();
    expect(await run2).toMatchObject({ stopped: "signal", renewals: 1 });
    expect(displaySerial(storedSerial(new X509Certificate(readFileSync(f.certFile)).serialNumber)!)).toBe(
      st.serial,
    );
    expect(readFileSync(f.keyFile, "utf8")).toBe(st.newKeyPem);
    expect(statSync(f.keyFile).mode & 0o777).toBe(0o600);
    const all = await ca.services.store.listRenewalsOf(storedSerial(f.serial)!);
    expect(all.map((x) => x.requestId)).toEqual([st.id]);
  });

  it("stops (refused) when the custodians reject the renewal, and removes its state file", async () => {
    const f = await onDisk("rejected.example.internal");
    const o = { ...f, rekey: false, coordinator: url, timeoutMs: 0, renewAt: 0.0001, maxBackoffMs: 50 };
    const stop = new AbortController();
    const lines: string[] = [];
    const run = renewDaemon({ ...o, signal: stop.signal }, (l) => lines.push(l));
    const state = statePath(o);
    await until("the state file", () => existsSync(state));
    const { id } = JSON.parse(readFileSync(state, "utf8")) as { id: string };
    const view = await ca.services.requests.view(id);
    await ca.services.requests.decide(id, approval(ca, "alice", view, "reject", { reason: "not today" }));
    const r = await Promise.race([run, new Promise((res) => setTimeout(() => res("still running"), 20_000))]);
    stop.abort();
    expect(r).toMatchObject({ stopped: "refused", error: { kind: "REFUSED" } });
    expect(lines.join("\n")).toMatch(/rejected by alice: not today; stopping/);
    expect(existsSync(state)).toBe(false);
  });

  it("refuses --cert and --key naming one file, and keeps a replaced file's mode (never looser)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tca-renew-files-"));
    const combined = join(dir, "svc.pem");
    writeFileSync(combined, "x");
    expect(() => checkDistinctFiles({ certFile: combined, keyFile: combined })).toThrow(
      /same file.*would replace the key with the certificate/,
    );
    // Also through another path (a symlink) or with --out-dir, and a key named like the chain.
    symlinkSync(combined, join(dir, "link.pem"));
    expect(() => checkDistinctFiles({ certFile: combined, keyFile: join(dir, "link.pem") })).toThrow(
      /same file/,
    );
    writeFileSync(join(dir, "svc.chain.pem"), "x");
    expect(() => checkDistinctFiles({ certFile: combined, keyFile: join(dir, "svc.chain.pem") })).toThrow(
      /chain and the key would both be written/,
    );
    const sub = join(dir, "a");
    mkdirSync(sub);
    writeFileSync(join(sub, "svc.pem"), "x");
    expect(() =>
      checkDistinctFiles({ certFile: combined, keyFile: join(sub, "svc.pem"), outDir: dir }),
    ).toThrow(/certificate and the key would both be written/);

    const cert = join(dir, "mode.crt");
    const key = join(dir, "mode.key");
    writeFileSync(cert, "old");
    chmodSync(cert, 0o600);
    writeFileSync(key, "old");
    chmodSync(key, 0o640);
    writeAtomically([
      { path: cert, data: "new", mode: 0o644 },
      { path: key, data: "new", mode: 0o600 },
    ]);
    expect(readFileSync(cert, "utf8")).toBe("new");
    expect(statSync(cert).mode & 0o777).toBe(0o600); // kept, not widened to 0644
    expect(statSync(key).mode & 0o777).toBe(0o600); // never looser than 0600
  });
});
