// Finalize and certificate download (src/acme/finalize.ts, RFC 8555 §7.4, §7.4.2) on an in-process CA
// behind real HTTP: a ready order finalized with a CSR becomes a tca request carrying its ACME origin;
// custodians approve it and the order turns valid, with a chain whose leaf `openssl verify` accepts
// under the CA. Refused: finalize before ready (orderNotReady), a CSR with another name set or the
// account's own key (badCSR, nothing stored), a second finalize; a custodian's rejection makes the
// order invalid with the reason. Authorizations are marked valid in the database (see
// acme-issuance-helpers.ts); validation itself is tested in test/acme/orders.test.ts.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as x509 from "@peculiar/x509";
import { makeCsr, startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";
import { alternateChainLinks } from "../../src/acme/finalize.ts";
import { PROCESSING_RETRY_SECONDS, WAITING_FOR_PERSON_RETRY_SECONDS } from "../../src/acme/issuance.ts";
import {
  csrB64url,
  decide,
  finalizeOrder,
  issueThroughAcme,
  markValidated,
  newOrder,
  opensslVerify,
  pemBlocks,
  requestOf,
} from "./acme-issuance-helpers.ts";

let h: HttpCa;
let client: TestAcmeClient;

beforeAll(async () => {
  h = await startHttpCa({ ceremony: true, acme: {} });
  client = await TestAcmeClient.create(`${h.url}/acme/directory`);
  expect((await client.register()).status).toBe(201);
}, 120_000);
afterAll(async () => {
  await h?.ca.close();
});

const requestCount = async () => (await h.ca.services.requests.list()).length;

describe("finalize", () => {
  it("issues once custodians approve: order valid, chain verifies, the request says ACME", async () => {
    const names = ["svc.example.internal", "api.example.internal"];
    const { url, id } = await newOrder(client, names);
    await markValidated(h, id);
    const f = await finalizeOrder(client, url, await makeCsr(names));
    expect(f.status, f.text).toBe(200);
    expect((f.body as { status: string }).status).toBe("processing");
    expect(f.headers.get("location")).toBe(url);
    expect(Number(f.headers.get("retry-after"))).toBeGreaterThan(0);

    const requestId = (await requestOf(h, id))!;
    const view = await h.ca.services.requests.view(requestId);
    expect(view.requester).toBe("acme");
    expect(view.origin).toMatchObject({ kind: "acme", order: id, account: client.kid!.split("/").pop() });
    expect(view.origin!.identifiers.map((i) => [i.value, i.challenge]).sort()).toEqual([
      ["api.example.internal", "http-01"],
      ["svc.example.internal", "http-01"],
    ]);

    // Not yet valid: the certificate URL is not found.
    const early = await client.post(url.replace("/order/", "/certificate/"), null);
    expect(early.status).toBe(404);

    await decide(h, requestId, "approve");
    const order = await client.post(url, null);
    const body = order.body as { status: string; certificate: string };
    expect(body.status).toBe("valid");
    const cert = await client.post(body.certificate, null);
    expect(cert.status, cert.text).toBe(200);
    expect(cert.headers.get("content-type")).toMatch(/^application\/pem-certificate-chain/);
    expect(cert.headers.get("link") ?? "").not.toMatch(/alternate/); // one chain today
    const [leaf, root] = pemBlocks(cert.text);
    expect(leaf && root).toBeTruthy();
    expect(opensslVerify(root!, leaf!)).toMatch(/OK/);
    const parsed = new x509.X509Certificate(leaf!);
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.items.map((n) => n.value).sort()).toEqual([...names].sort());

    // Another account cannot read it.
    const other = await TestAcmeClient.create(`${h.url}/acme/directory`);
    await other.register();
    expect((await other.post(body.certificate, null)).status).toBe(403);
    // A payload where POST-as-GET is required.
    expect((await client.post(body.certificate, {})).status).toBe(400);
  }, 60_000);

  it("refuses an order that is not ready: orderNotReady, nothing stored", async () => {
    const { url, id } = await newOrder(client, ["pending.example.internal"]);
    const before = await requestCount();
    const f = await finalizeOrder(client, url, await makeCsr(["pending.example.internal"]));
    expect(f.status).toBe(403);
    expect((f.body as { type: string }).type).toBe("urn:ietf:params:acme:error:orderNotReady");
    expect(await requestCount()).toBe(before);
    expect(await requestOf(h, id)).toBeNull();
  });

  it("refuses a CSR whose names differ from the order: badCSR naming them, nothing stored", async () => {
    const { url, id } = await newOrder(client, ["one.example.internal"]);
    await markValidated(h, id);
    const before = await requestCount();
    const extra = await finalizeOrder(
      client,
      url,
      await makeCsr(["one.example.internal", "two.example.internal"]),
    );
    expect(extra.status).toBe(400);
    expect(extra.body).toMatchObject({ type: "urn:ietf:params:acme:error:badCSR" });
    expect((extra.body as { detail: string }).detail).toMatch(/not in the order: dns:two\.example\.internal/);
    const other = await finalizeOrder(client, url, await makeCsr(["three.example.internal"]));
    expect((other.body as { detail: string }).detail).toMatch(
      /missing from the CSR: dns:one\.example\.internal/,
    );
    expect(await requestCount()).toBe(before);
    expect(await requestOf(h, id)).toBeNull();
    // The order is still ready: a right CSR then succeeds.
    expect((await finalizeOrder(client, url, await makeCsr(["one.example.internal"]))).status).toBe(200);
  });

  it("refuses a PEM or padded csr, and a CSR for the account key", async () => {
    const { url, id } = await newOrder(client, ["key.example.internal"]);
    await markValidated(h, id);
    const pem = await makeCsr(["key.example.internal"]);
    const asPem = await client.post(`${url}/finalize`, { csr: pem });
    expect(asPem.body).toMatchObject({ type: "urn:ietf:params:acme:error:badCSR" });
    const padded = await client.post(`${url}/finalize`, {
      csr: Buffer.from(csrB64url(pem), "base64url").toString("base64"),
    });
    expect(padded.status).toBe(400);
    expect(padded.body).toMatchObject({ type: "urn:ietf:params:acme:error:malformed" });

    // A CSR signed with the account's own key (ES256 = P-256).
    const alg = { name: "ECDSA", namedCurve: "P-256" };
    const publicKey = await webcrypto.subtle.importKey("jwk", client.key.jwk as JsonWebKey, alg, true, [
      "verify",
    ]);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name: "CN=key.example.internal",
        keys: { privateKey: client.key.privateKey, publicKey } as CryptoKeyPair,
        signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
        extensions: [
          new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "key.example.internal" }]),
        ],
      },
      webcrypto as unknown as Crypto,
    );
    const same = await finalizeOrder(client, url, csr.toString("pem"));
    expect(same.body).toMatchObject({ type: "urn:ietf:params:acme:error:badCSR" });
    expect((same.body as { detail: string }).detail).toMatch(/account key/);
    expect(await requestOf(h, id)).toBeNull();
  });

  it("lets one of two racing finalizes through; the other is refused and stores nothing", async () => {
    const { url, id } = await newOrder(client, ["race.example.internal"]);
    await markValidated(h, id);
    const before = await requestCount();
    const second = await TestAcmeClient.create(`${h.url}/acme/directory`);
    second.key = client.key;
    second.kid = client.kid;
    const [a, b] = await Promise.all([
      finalizeOrder(client, url, await makeCsr(["race.example.internal"])),
      finalizeOrder(second, url, await makeCsr(["race.example.internal"])),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 403]);
    expect([a, b].find((r) => r.status === 403)!.body).toMatchObject({
      type: "urn:ietf:params:acme:error:orderNotReady",
    });
    expect(await requestCount()).toBe(before + 1);
    // And once more after it is processing.
    const again = await finalizeOrder(client, url, await makeCsr(["race.example.internal"]));
    expect(again.status).toBe(403);
    expect(await requestCount()).toBe(before + 1);
  });

  it("turns a custodian's rejection into an invalid order that gives the reason", async () => {
    const { url, id } = await newOrder(client, ["refused.example.internal"]);
    await markValidated(h, id);
    expect((await finalizeOrder(client, url, await makeCsr(["refused.example.internal"]))).status).toBe(200);
    await decide(h, (await requestOf(h, id))!, "reject", "not on a Friday");
    const order = await client.post(url, null);
    expect(order.body).toMatchObject({
      status: "invalid",
      error: {
        type: "urn:ietf:params:acme:error:unauthorized",
        detail: "custodian alice rejected the request: not on a Friday",
      },
    });
    expect((order.body as { certificate?: string }).certificate).toBeUndefined();
  });

  it("polls less often once the request looks like it waits for a person", async () => {
    const { url, id } = await newOrder(client, ["slow.example.internal"]);
    await markValidated(h, id);
    const f = await finalizeOrder(client, url, await makeCsr(["slow.example.internal"]));
    expect(f.headers.get("retry-after")).toBe(String(PROCESSING_RETRY_SECONDS));
    // As if submitted a minute ago with no custodian's agent approving it since.
    const old = new Date(Date.now() - 60_000).toISOString();
    await h.ca.services.store
      .queryBuilder<{ requests: { id: string; created_at: string } }>()
      .updateTable("requests")
      .set({ created_at: old })
      .where("id", "=", (await requestOf(h, id))!)
      .execute();
    const order = await client.post(url, null);
    expect((order.body as { status: string }).status).toBe("processing");
    expect(order.headers.get("retry-after")).toBe(String(WAITING_FOR_PERSON_RETRY_SECONDS));
  });

  it("gives the certificate the order's notAfter", async () => {
    const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 3_600_000);
    const res = await client.post(client.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "short.example.internal" }],
      notAfter: notAfter.toISOString(),
    });
    expect(res.status, res.text).toBe(201);
    const url = res.headers.get("location")!;
    const id = url.split("/").pop()!;
    await markValidated(h, id);
    expect((await finalizeOrder(client, url, await makeCsr(["short.example.internal"]))).status).toBe(200);
    const v = await h.ca.services.requests.view((await requestOf(h, id))!);
    expect(Math.abs(Date.parse(v.notAfter) - notAfter.getTime())).toBeLessThanOrEqual(1000);
  });

  it("serves a wildcard order, recording dns-01 and the *. in the origin", async () => {
    const { requestId } = await issueThroughAcme(h, client, ["*.wild.example.internal"]);
    const v = await h.ca.services.requests.view(requestId);
    expect(v.origin!.identifiers).toMatchObject([
      { type: "dns", value: "*.wild.example.internal", challenge: "dns-01" },
    ]);
  }, 60_000);
});

describe("alternate chains (RFC 8555 §7.4.2)", () => {
  it("links every other chain: the default at the certificate URL, the n-th at /n", () => {
    const u = "https://ca.example/acme/certificate/abc";
    expect(alternateChainLinks(u, 1, 0)).toEqual([]);
    expect(alternateChainLinks(u, 3, 0)).toEqual([`${u}/1`, `${u}/2`]);
    expect(alternateChainLinks(u, 3, 2)).toEqual([u, `${u}/1`]);
  });
});
