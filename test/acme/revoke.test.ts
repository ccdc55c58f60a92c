// revokeCert (src/acme/revoke.ts, RFC 8555 §7.6) on an in-process CA behind real HTTP: by the account
// whose order got the certificate (kid), by the certificate's own key (jwk); refused for another
// account, another key, a second time (alreadyRevoked), certificateHold and other reasons tca does
// not offer (badRevocationReason), and a certificate this CA did not issue. A revocation is tca's
// own: recorded, and the next CRL the custodians sign lists it.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as x509 from "@peculiar/x509";
import { exchangeUntil, startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { newAcmeKey, TestAcmeClient, type AcmeKey } from "../helpers/acme-client.ts";
import { readCrl } from "../../src/x509/crl-read.ts";
import { issueThroughAcme, pemBlocks, pemToDer } from "./acme-issuance-helpers.ts";

let h: HttpCa;
let owner: TestAcmeClient;
let stranger: TestAcmeClient;
const dir = () => `${h.url}/acme/directory`;

beforeAll(async () => {
  h = await startHttpCa({ ceremony: true, acme: {} });
  owner = await TestAcmeClient.create(dir());
  stranger = await TestAcmeClient.create(dir());
  expect((await owner.register()).status).toBe(201);
  expect((await stranger.register()).status).toBe(201);
}, 120_000);
afterAll(async () => {
  await h?.ca.close();
});

/** A CSR (PEM) for an ACME test key (jose, P-256), so the test can sign a JWS with the certificate's key. */
async function csrFor(key: AcmeKey, names: string[]): Promise<string> {
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const publicKey = await webcrypto.subtle.importKey("jwk", key.jwk as JsonWebKey, alg, true, ["verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0]}`,
      keys: { privateKey: key.privateKey, publicKey } as CryptoKeyPair,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [
        new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns" as const, value }))),
      ],
    },
    webcrypto as unknown as Crypto,
  );
  return csr.toString("pem");
}

async function issued(
  names: string[],
  csrPem?: string,
): Promise<{ der: Buffer; b64: string; serial: string }> {
  const { chain, requestId } = await issueThroughAcme(h, owner, names, csrPem);
  const der = pemToDer(pemBlocks(chain)[0]!);
  return {
    der,
    b64: der.toString("base64url"),
    serial: (await h.ca.services.requests.view(requestId)).serial,
  };
}

const revoked = async (serial: string) =>
  (await h.ca.services.store.listRevocations()).find((r) => r.serial.replace(/^00/, "") === serial);
const typeOf = (body: unknown) => (body as { type?: string }).type;

describe("revokeCert", () => {
  it("revokes for the account whose order got the certificate; a second time is alreadyRevoked", async () => {
    const cert = await issued(["revoke-me.example.internal"]);
    const res = await owner.post(owner.directory.revokeCert!, { certificate: cert.b64, reason: 4 });
    expect(res.status, res.text).toBe(200);
    expect(res.text).toBe("");
    const r = await revoked(cert.serial);
    expect(r).toMatchObject({ reason: "superseded", revokedBy: `acme:${owner.kid!.split("/").pop()}` });

    const again = await owner.post(owner.directory.revokeCert!, { certificate: cert.b64 });
    expect(again.status).toBe(400);
    expect(typeOf(again.body)).toBe("urn:ietf:params:acme:error:alreadyRevoked");

    // The custodians sign the next CRL, which lists it.
    const s = h.ca.services;
    await exchangeUntil(h.ca, async () => {
      const crl = await s.store.latestCrl();
      return !!crl && readCrl(crl.der).entries.some((e) => e.serial.replace(/^00/, "") === cert.serial);
    });
  }, 60_000);

  it("revokes when signed with the certificate's own key (jwk), whoever ordered it", async () => {
    const certKey = await newAcmeKey("ES256");
    const cert = await issued(
      ["by-key.example.internal"],
      await csrFor(certKey, ["by-key.example.internal"]),
    );
    const holder = await TestAcmeClient.create(dir());
    holder.key = certKey;
    const res = await holder.post(
      holder.directory.revokeCert!,
      { certificate: cert.b64, reason: 1 },
      { jwk: true },
    );
    expect(res.status, res.text).toBe(200);
    expect(await revoked(cert.serial)).toMatchObject({
      reason: "keyCompromise",
      revokedBy: `holder:${await holder.thumbprint()}`,
    });
  }, 60_000);

  it("refuses another account, another key, and a certificate this CA did not issue", async () => {
    const cert = await issued(["not-yours.example.internal"]);
    const byStranger = await stranger.post(stranger.directory.revokeCert!, { certificate: cert.b64 });
    expect(byStranger.status).toBe(403);
    expect(typeOf(byStranger.body)).toBe("urn:ietf:params:acme:error:unauthorized");

    const otherKey = await TestAcmeClient.create(dir());
    const byOtherKey = await otherKey.post(
      otherKey.directory.revokeCert!,
      { certificate: cert.b64 },
      { jwk: true },
    );
    expect(byOtherKey.status).toBe(403);
    expect(typeOf(byOtherKey.body)).toBe("urn:ietf:params:acme:error:unauthorized");
    expect(await revoked(cert.serial)).toBeUndefined();

    // Same serial, other bytes: not ours.
    const tampered = Buffer.from(cert.der);
    tampered[tampered.length - 1]! ^= 1;
    const forged = await owner.post(owner.directory.revokeCert!, {
      certificate: tampered.toString("base64url"),
    });
    expect(forged.status).toBe(404);
    const junk = await owner.post(owner.directory.revokeCert!, { certificate: "AAAA" });
    expect(junk.status).toBe(400);
    expect(typeOf(junk.body)).toBe("urn:ietf:params:acme:error:malformed");
  }, 60_000);

  it("refuses certificateHold, removeFromCRL and unknown reasons: badRevocationReason", async () => {
    const cert = await issued(["reasons.example.internal"]);
    for (const reason of [6, 7, 8, 11, -1]) {
      const res = await owner.post(owner.directory.revokeCert!, { certificate: cert.b64, reason });
      expect(res.status).toBe(400);
      expect(typeOf(res.body)).toBe("urn:ietf:params:acme:error:badRevocationReason");
    }
    expect(await revoked(cert.serial)).toBeUndefined();
  }, 60_000);
});
