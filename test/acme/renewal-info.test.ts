// ACME Renewal Information (src/acme/renewal-info.ts, cert-id.ts; RFC 9773) on an in-process CA behind
// real HTTP: the CertID of an issued certificate gets a window inside its validity (2/3 to 5/6 of its
// lifetime) and Retry-After; a revoked one a window that has ended (renew now); an unknown serial, a
// key identifier not this CA's and a malformed CertID are refused. newOrder's `replaces` check
// (checkReplaces): the same account only, and one live replacement per certificate.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import * as x509 from "@peculiar/x509";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";
import { splitCertificate } from "../../src/x509/assemble.ts";
import { readTbs } from "../../src/x509/tbs-read.ts";
import { checkReplaces, formatCertId } from "../../src/acme/cert-id.ts";
import { suggestedWindow, RENEWAL_INFO_RETRY_SECONDS } from "../../src/acme/renewal-info.ts";
import { AcmeProblem } from "../../src/acme/problems.ts";
import { DEFAULT_VALIDATION, type AcmeContext } from "../../src/acme/context.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";
import { issueThroughAcme, pemBlocks, pemToDer } from "./acme-issuance-helpers.ts";

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

/** The certificate's RFC 9773 §4.1 CertID, computed from its own AKI and serial. */
function certIdOf(leafPem: string): { certId: string; aki: Uint8Array; serial: Uint8Array } {
  const aki = new x509.X509Certificate(leafPem).getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId!;
  const akiBytes = Buffer.from(aki, "hex");
  const serial = readTbs(splitCertificate(pemToDer(leafPem)).tbs).serial;
  return { certId: formatCertId(akiBytes, serial), aki: akiBytes, serial };
}

async function renewalInfo(
  certId: string,
): Promise<{ status: number; body: unknown; retryAfter: string | null }> {
  const res = await fetch(`${h.url}/acme/renewal-info/${certId}`);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), retryAfter: res.headers.get("retry-after") };
}

describe("renewalInfo", () => {
  it("is in the directory", () => {
    expect(client.directory.renewalInfo).toBe(`${h.url}/acme/renewal-info`);
  });

  it("suggests a window inside the validity of an issued certificate; revoked: a window already past", async () => {
    const { chain } = await issueThroughAcme(h, client, ["ari.example.internal"]);
    const leaf = pemBlocks(chain)[0]!;
    const { certId } = certIdOf(leaf);
    const res = await renewalInfo(certId);
    expect(res.status).toBe(200);
    expect(Number(res.retryAfter)).toBe(RENEWAL_INFO_RETRY_SECONDS);
    const { start, end } = (res.body as { suggestedWindow: { start: string; end: string } }).suggestedWindow;
    const cert = new x509.X509Certificate(leaf);
    const [nb, na] = [cert.notBefore.getTime(), cert.notAfter.getTime()];
    expect(Date.parse(start)).toBeGreaterThan(nb);
    expect(Date.parse(end)).toBeGreaterThan(Date.parse(start));
    expect(Date.parse(end)).toBeLessThan(na);
    expect(Date.parse(start)).toBeGreaterThan(Date.now()); // not due yet

    const revoke = await client.post(client.directory.revokeCert!, {
      certificate: pemToDer(leaf).toString("base64url"),
    });
    expect(revoke.status, revoke.text).toBe(200);
    const after = await renewalInfo(certId);
    const w = (after.body as { suggestedWindow: { start: string; end: string } }).suggestedWindow;
    expect(Date.parse(w.end)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(w.start)).toBeLessThan(Date.parse(w.end));
  }, 60_000);

  it("refuses an unknown serial, another CA's key identifier and a malformed CertID", async () => {
    const { chain } = await issueThroughAcme(h, client, ["ari2.example.internal"]);
    const { aki, serial } = certIdOf(pemBlocks(chain)[0]!);
    const otherSerial = Uint8Array.from(serial);
    otherSerial[otherSerial.length - 1]! ^= 1;
    const unknown = await renewalInfo(formatCertId(aki, otherSerial));
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ type: "urn:ietf:params:acme:error:malformed" });
    const otherAki = Uint8Array.from(aki);
    otherAki[0]! ^= 1;
    expect((await renewalInfo(formatCertId(otherAki, serial))).status).toBe(404);
    expect((await renewalInfo("not-a-cert-id")).status).toBe(400);
    expect((await renewalInfo(`${formatCertId(aki, serial)}=`)).status).toBe(400);
  }, 60_000);
});

describe("suggestedWindow", () => {
  it("runs from 2/3 to 5/6 of the lifetime", () => {
    const nb = new Date("2030-01-01T00:00:00Z");
    const na = new Date("2030-01-01T06:00:00Z");
    expect(suggestedWindow(nb, na, false)).toEqual({
      start: "2030-01-01T04:00:00.000Z",
      end: "2030-01-01T05:00:00.000Z",
    });
  });
});

describe("checkReplaces (RFC 9773 §5)", () => {
  const ctx = (): AcmeContext =>
    ({
      services: h.ca.services,
      config: h.ca.config.config.acme!,
      options: { validation: DEFAULT_VALIDATION },
      log: pino({ level: "silent" }),
      db: () => h.ca.services.store.queryBuilder<AcmeDatabase>(),
      baseUrl: () => h.url,
    }) as AcmeContext;
  const refusal = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(AcmeProblem);
    return e as AcmeProblem;
  };

  it("accepts the same account's certificate once; another account's is refused", async () => {
    const { chain } = await issueThroughAcme(h, client, ["replace-me.example.internal"]);
    const { certId } = certIdOf(pemBlocks(chain)[0]!);
    const account = client.kid!.split("/").pop()!;
    const names = [{ type: "dns" as const, value: "replace-me.example.internal" }];
    expect(await checkReplaces(ctx(), account, certId, names)).toBe(certId);

    expect((await refusal(checkReplaces(ctx(), "someone-else", certId))).type).toBe("unauthorized");
    expect(
      (
        await refusal(
          checkReplaces(ctx(), account, certId, [{ type: "dns", value: "other.example.internal" }]),
        )
      ).type,
    ).toBe("malformed");

    // An order that replaces it (stored by newOrder): a second replacement is alreadyReplaced.
    const res = await client.post(client.directory.newOrder!, {
      identifiers: names,
      replaces: certId,
    });
    expect(res.status, res.text).toBe(201);
    expect((res.body as { replaces?: string }).replaces).toBe(certId);
    const p = await refusal(checkReplaces(ctx(), account, certId, names));
    expect(p.type).toBe("alreadyReplaced");
    expect(p.status).toBe(409);
    // newOrder checks it too: a second order replacing the same certificate is refused.
    const again = await client.post(client.directory.newOrder!, { identifiers: names, replaces: certId });
    expect(again.status).toBe(409);
    expect((again.body as { type: string }).type).toBe("urn:ietf:params:acme:error:alreadyReplaced");
  }, 60_000);
});
