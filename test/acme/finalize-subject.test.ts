// What a finalize CSR's subject may hold (src/acme/finalize.ts): nothing, or exactly one CN of
// printable ASCII that is one of the order's identifiers. ACME validates identifiers only (RFC 8555
// §7.1.4), so an O or OU, a second CN, or a CN that equals a validated name only under Unicode case
// folding (U+212A KELVIN SIGN for "k") is refused with badCSR, and nothing is stored.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { identifierKey } from "../../src/acme/cert-id.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { finalizeOrder, markValidated, newOrder, requestOf } from "./acme-issuance-helpers.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

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

/** A CSR with this subject (RFC 4514 text, "" for none) and these dNSName SANs. */
async function csrWithSubject(subject: string, dnsNames: string[]): Promise<string> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: "dns" as const, value }))),
    ],
  });
  return csr.toString("pem");
}

/** Finalizes a ready order for `names` with this subject: the response, and whether a request was made. */
async function finalizeWith(names: string[], subject: string) {
  const { url, id } = await newOrder(client, names);
  await markValidated(h, id);
  const res = await finalizeOrder(client, url, await csrWithSubject(subject, names));
  return { res, requestId: await requestOf(h, id), orderUrl: url };
}

async function refusedWithBadCsr(names: string[], subject: string, detail: RegExp): Promise<void> {
  const { res, requestId, orderUrl } = await finalizeWith(names, subject);
  expect(res.status, res.text).toBe(400);
  const body = res.body as { type: string; detail: string };
  expect(body.type).toBe("urn:ietf:params:acme:error:badCSR");
  expect(body.detail).toMatch(detail);
  // Nothing stored: no request, and the order is still ready for a proper CSR.
  expect(requestId).toBeNull();
  expect(((await client.post(orderUrl, null)).body as { status: string }).status).toBe("ready");
}

describe("finalize: the CSR's subject", () => {
  it("refuses attributes besides the CN, naming them", async () => {
    await refusedWithBadCsr(
      ["svc.example.internal"],
      "CN=svc.example.internal, O=system:masters, OU=admins",
      /subject "CN=svc\.example\.internal, O=system:masters, OU=admins" has O, OU; .*empty or one CN/,
    );
    await refusedWithBadCsr(["svc.example.internal"], "O=system:masters", /has O;/);
    await refusedWithBadCsr(["svc.example.internal"], "CN=svc.example.internal+C=DE", /has C;/);
  });

  it("refuses two CNs, even when each is an identifier of the order", async () => {
    const names = ["a.example.internal", "b.example.internal"];
    await refusedWithBadCsr(names, "CN=a.example.internal, CN=b.example.internal", /not exactly one CN/);
  });

  it("refuses a CN outside ASCII, which Unicode folding would make a validated name", async () => {
    const kelvin = "\u212Aube.example.internal";
    expect(kelvin.toLowerCase()).toBe("kube.example.internal");
    await refusedWithBadCsr(["kube.example.internal"], `CN=${kelvin}`, /CN that is not printable ASCII/);
  });

  it("compares DNS identifiers folding A-Z only", () => {
    const key = (value: string) => identifierKey({ type: "dns", value });
    expect(key("KUBE.Example.Internal")).toBe(key("kube.example.internal"));
    expect(key("\u212Aube.example.internal")).not.toBe(key("kube.example.internal"));
    expect(key("\u0130nfo.example")).not.toBe(key("i\u0307nfo.example"));
  });

  it("accepts an empty subject, and one CN that is an identifier", async () => {
    const empty = await finalizeWith(["empty.example.internal"], "");
    expect(empty.res.status, empty.res.text).toBe(200);
    expect(empty.requestId).not.toBeNull();
    const one = await finalizeWith(["one.example.internal"], "CN=ONE.example.internal");
    expect(one.res.status, one.res.text).toBe(200);
    expect(one.requestId).not.toBeNull();
  });
});
