// The OCSP responder (src/coordinator/ocsp/, docs/ocsp.md) on a real coordinator with in-process
// custodians: unauthorized while off, tryLater until its delegated certificate is issued, then
// good / revoked (time and reason) / unknown per CertID, nonces echoed (RFC 8954, RFC 9654) and refused over 128
// octets, malformed requests, GET with RFC 5019 caching, and the ca-config checks.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, randomBytes, verify, X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import express from "express";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  BasicOCSPResponse,
  CertID,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  Request as OcspSingleRequest,
  TBSRequest,
} from "@peculiar/asn1-ocsp";
import { AlgorithmIdentifier, Certificate, CRLReason, Extension } from "@peculiar/asn1-x509";
import { approval, exchangeUntil, makeCsr, startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import {
  OcspSignerCertificate,
  ocspRequester,
  OCSP_REQUESTER,
} from "../../src/coordinator/ocsp/signer-cert.ts";
import { OcspResponder, parseRequest } from "../../src/coordinator/ocsp/responder.ts";
import { ocspRoutes } from "../../src/coordinator/ocsp/http.ts";
import { readCaCert } from "../../src/x509/ca-cert.ts";
import { storedSerial } from "../../src/x509/serial.ts";
import { fromHex, toArrayBuffer, u8 } from "../../src/x509/der.ts";
import { OID } from "../../src/x509/oids.ts";
import type { CaConfig } from "../../src/config/schema.ts";

let h: HttpCa;
let dir: string;
let caDer: Uint8Array;
let signer: OcspSignerCertificate;

const SHA1 = "1.3.14.3.2.26";

async function issue(requester: string, profile: string, csr: string): Promise<string> {
  const s = h.ca.services;
  const v = await s.requests.submit({ requester: s.requests.requesterFor(requester), profile, csr });
  return approveAndIssue(v.id);
}

async function approveAndIssue(id: string): Promise<string> {
  const s = h.ca.services;
  const v = await s.requests.view(id);
  for (const name of ["alice", "bob"]) await s.requests.decide(id, approval(h.ca, name, v));
  await exchangeUntil(h.ca, async () => (await s.requests.view(id)).status === "issued");
  // The DER INTEGER's content octets, as a CertID carries them: a view drops the sign octet
  // (00 before a first octet of 0x80 or more), which would make the serial negative.
  return storedSerial((await s.requests.view(id)).serial)!;
}

function certId(serialHex: string, o: { alg?: string; hash?: string; issuerDer?: Uint8Array } = {}): CertID {
  const ca = readCaCert(o.issuerDer ?? caDer);
  const hash = (b: Uint8Array) =>
    toArrayBuffer(
      new Uint8Array(
        createHash(o.hash ?? "sha1")
          .update(b)
          .digest(),
      ),
    );
  return new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: o.alg ?? SHA1, parameters: null }),
    issuerNameHash: new OctetString(hash(ca.subjectDer)),
    issuerKeyHash: new OctetString(hash(ca.publicKeyRaw)),
    serialNumber: toArrayBuffer(fromHex(serialHex)),
  });
}

function request(ids: CertID[], nonce?: Uint8Array): Uint8Array {
  const tbs = new TBSRequest({ requestList: ids.map((reqCert) => new OcspSingleRequest({ reqCert })) });
  if (nonce)
    tbs.requestExtensions = [
      new Extension({
        extnID: id_pkix_ocsp_nonce,
        extnValue: new OctetString(AsnConvert.serialize(new OctetString(toArrayBuffer(nonce)))),
      }),
    ];
  return u8(AsnConvert.serialize(new OCSPRequest({ tbsRequest: tbs })));
}

async function post(body: Uint8Array): Promise<{ res: Response; der: Uint8Array }> {
  const res = await fetch(`${h.url}/ocsp`, {
    method: "POST",
    headers: { "content-type": "application/ocsp-request" },
    body: Buffer.from(body),
  });
  return { res, der: new Uint8Array(await res.arrayBuffer()) };
}

interface Decoded {
  status: OCSPResponseStatus;
  basic?: BasicOCSPResponse;
}
function decode(der: Uint8Array): Decoded {
  const r = AsnConvert.parse(toArrayBuffer(der), OCSPResponse);
  if (!r.responseBytes) return { status: r.responseStatus };
  expect(r.responseBytes.responseType).toBe(id_pkix_ocsp_basic);
  return {
    status: r.responseStatus,
    basic: AsnConvert.parse(r.responseBytes.response.buffer, BasicOCSPResponse),
  };
}

/** Checks the signature with the responder certificate in `certs`, and that the CA issued it. */
function verifySignature(der: Uint8Array): X509Certificate {
  // The signed bytes are the DER of tbsResponseData as sent: the first element of BasicOCSPResponse.
  const r = AsnConvert.parse(toArrayBuffer(der), OCSPResponse);
  const basicDer = u8(r.responseBytes!.response.buffer);
  const basic = AsnConvert.parse(toArrayBuffer(basicDer), BasicOCSPResponse);
  const tbs = u8(AsnConvert.serialize(basic.tbsResponseData));
  expect(basicDer.subarray(0, 10)).toBeDefined();
  const cert = new X509Certificate(Buffer.from(AsnConvert.serialize(basic.certs![0]!)));
  expect(cert.verify(new X509Certificate(Buffer.from(caDer)).publicKey)).toBe(true);
  expect(basic.signatureAlgorithm.algorithm).toBe(OID.ecdsaWithSHA256);
  expect(
    verify("sha256", tbs, { key: cert.publicKey, dsaEncoding: "der" }, Buffer.from(basic.signature)),
  ).toBe(true);
  return cert;
}

beforeAll(async () => {
  h = await startHttpCa({ ceremony: true });
  caDer = (await h.ca.services.caCertificate())!;
  dir = mkdtempSync(join(tmpdir(), "tca-ocsp-"));
}, 60_000);
afterAll(async () => {
  signer?.stop();
  await h?.coordinator.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("OCSP responder", () => {
  let serial = "";

  it("answers unauthorized while off, tryLater until its certificate is issued, then good", async () => {
    serial = await issue("dev", "server", await makeCsr(["svc.example.internal"]));
    const req = request([certId(serial)]);
    expect(decode((await post(req)).der).status).toBe(OCSPResponseStatus.unauthorized);

    signer = new OcspSignerCertificate({
      requests: h.ca.services.requests,
      caCertificate: h.ca.services.caCertificate,
      requester: ocspRequester(h.ca.config.config),
      dir,
      log: pino({ level: "silent" }),
      responder: h.coordinator.ocsp,
    });
    expect(h.coordinator.ocsp.state).toBe("waiting");
    const waiting = await post(req);
    expect(waiting.res.status).toBe(200);
    expect(waiting.res.headers.get("content-type")).toBe("application/ocsp-response");
    expect(decode(waiting.der).status).toBe(OCSPResponseStatus.tryLater);

    await signer.tick();
    const pending = signer.pendingRequest!;
    expect((await h.ca.services.requests.view(pending)).requester).toBe(OCSP_REQUESTER);
    await approveAndIssue(pending);
    await signer.tick();
    expect(h.coordinator.ocsp.state).toBe("ready");
    expect(statSync(join(dir, "key.pem")).mode & 0o777).toBe(0o600);

    const { der } = await post(req);
    const d = decode(der);
    expect(d.status).toBe(OCSPResponseStatus.successful);
    const cert = verifySignature(der);
    // The delegated responder certificate: ocspSigning, id-pkix-ocsp-nocheck, issued by the CA.
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.9"]);
    const parsed = AsnConvert.parse(cert.raw, Certificate);
    expect(parsed.tbsCertificate.extensions!.some((e) => e.extnID === OID.ocspNoCheck)).toBe(true);
    const hours = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 3_600_000;
    expect(hours).toBe(96);
    const data = d.basic!.tbsResponseData;
    // responderID byKey: SHA-1 of the responder's public key bits.
    const spki = cert.publicKey.export({ type: "spki", format: "der" });
    expect(Buffer.from(data.responderID.byKey!.buffer).toString("hex")).toBe(
      createHash("sha1")
        .update(spki.subarray(spki.length - 65))
        .digest("hex"),
    );
    expect(data.responses).toHaveLength(1);
    const one = data.responses[0]!;
    expect(one.certStatus.good).toBeNull();
    expect(Buffer.from(one.certID.serialNumber).toString("hex")).toBe(serial);
    expect(one.nextUpdate!.getTime() - one.thisUpdate.getTime()).toBe(3_600_000);
    expect(one.thisUpdate.getMilliseconds()).toBe(0);
    expect(data.responseExtensions).toBeUndefined();
  }, 60_000);

  it("echoes a nonce exactly, and refuses one over 128 octets as malformed (RFC 9654)", async () => {
    const nonce = randomBytes(16);
    const { der, res } = await post(request([certId(serial)], nonce));
    const d = decode(der);
    expect(d.status).toBe(OCSPResponseStatus.successful);
    const ext = d.basic!.tbsResponseData.responseExtensions!.find((e) => e.extnID === id_pkix_ocsp_nonce)!;
    expect(Buffer.from(ext.extnValue.buffer)).toEqual(
      Buffer.from(AsnConvert.serialize(new OctetString(toArrayBuffer(nonce)))),
    );
    expect(res.headers.get("cache-control")).toMatch(/no-store/);
    // RFC 9654 raised RFC 8954's 32 octets to 128.
    for (const n of [32, 33, 128])
      expect(decode((await post(request([certId(serial)], randomBytes(n)))).der).status).toBe(
        OCSPResponseStatus.successful,
      );
    expect(decode((await post(request([certId(serial)], randomBytes(129)))).der).status).toBe(
      OCSPResponseStatus.malformedRequest,
    );
    expect(() => parseRequest(request([certId(serial)], new Uint8Array(0)))).toThrow(/0 octets/);
  });

  it("answers unknown for a serial never issued and for another issuer, SHA-256 CertIDs too, in order", async () => {
    const other = await startHttpCa({ ceremony: true });
    try {
      const otherCa = (await other.ca.services.caCertificate())!;
      const ids = [
        certId("7e57ab1e0123456789abcdef"),
        certId(serial, { alg: OID.sha256, hash: "sha256" }),
        certId(serial, { issuerDer: otherCa }),
      ];
      const { der } = await post(request(ids));
      const d = decode(der);
      expect(d.status).toBe(OCSPResponseStatus.successful);
      const rs = d.basic!.tbsResponseData.responses;
      expect(
        rs.map((r) => Object.keys(r.certStatus).find((k) => (r.certStatus as never)[k] !== undefined)),
      ).toEqual(["unknown", "good", "unknown"]);
      expect(rs[1]!.certID.hashAlgorithm.algorithm).toBe(OID.sha256);
      // Not one CertID of this CA: not authoritative (RFC 5019 §2.2.3).
      expect(decode((await post(request([certId(serial, { issuerDer: otherCa })]))).der).status).toBe(
        OCSPResponseStatus.unauthorized,
      );
    } finally {
      await other.coordinator.close();
    }
  }, 60_000);

  it("answers revoked with the revocation's time and reason once revoked", async () => {
    const done = await h.ca.services.revocations.revoke(serial, "keyCompromise", {
      kind: "admin",
      name: "admin",
    });
    const { der } = await post(request([certId(serial)]));
    verifySignature(der);
    const r = decode(der).basic!.tbsResponseData.responses[0]!;
    expect(r.certStatus.revoked!.revocationTime.toISOString()).toBe(new Date(done.revokedAt).toISOString());
    expect(r.certStatus.revoked!.revocationReason).toEqual(new CRLReason(1));
  });

  it("refuses what is not an OCSP request as malformedRequest", async () => {
    for (const body of [Uint8Array.of(1, 2, 3), Uint8Array.of(0x30, 0x00), new Uint8Array(0)])
      expect(decode((await post(body)).der).status).toBe(OCSPResponseStatus.malformedRequest);
    const tooMany = request(Array.from({ length: 17 }, () => certId(serial)));
    expect(decode((await post(tooMany)).der).status).toBe(OCSPResponseStatus.malformedRequest);
    const big = await post(new Uint8Array(5000));
    expect(big.res.status).toBe(413);
  });

  it("answers GET with the base64 request URL-encoded (or not), cacheable until nextUpdate without a nonce", async () => {
    let b64 = "";
    // A request whose base64 has a "/" (the serial varies the bytes): both spellings must work.
    for (let i = 0; !b64.includes("/") && i < 500; i++)
      b64 = Buffer.from(request([certId(`7e${randomBytes(12).toString("hex")}`)])).toString("base64");
    const enc = await fetch(`${h.url}/ocsp/${encodeURIComponent(b64)}`);
    expect(enc.status).toBe(200);
    expect(decode(new Uint8Array(await enc.arrayBuffer())).status).toBe(OCSPResponseStatus.successful);
    const cc = enc.headers.get("cache-control")!;
    expect(cc).toMatch(/^max-age=\d+, public, no-transform, must-revalidate$/);
    expect(Number(/max-age=(\d+)/.exec(cc)![1])).toBeGreaterThan(3500);
    expect(enc.headers.get("expires")).toBeTruthy();
    const raw = await fetch(`${h.url}/ocsp/${b64}`);
    expect(decode(new Uint8Array(await raw.arrayBuffer())).status).toBe(OCSPResponseStatus.successful);
    const bad = await fetch(`${h.url}/ocsp/not*base64`);
    expect(decode(new Uint8Array(await bad.arrayBuffer())).status).toBe(OCSPResponseStatus.malformedRequest);
  });
});

describe("a revoked responder certificate", () => {
  it("is not used: tryLater at once, and the loop asks for a new key without waiting for renewal", async () => {
    const req = request([certId(`7e${randomBytes(12).toString("hex")}`)]);
    expect(decode((await post(req)).der).status).toBe(OCSPResponseStatus.successful);
    const old = signer.current!.serial;
    expect(signer.pendingRequest).toBeUndefined();
    await h.ca.services.revocations.revoke(old, "keyCompromise", { kind: "admin", name: "admin" });
    // The responder checks its own certificate before it signs, before the loop has looked.
    expect(decode((await post(req)).der).status).toBe(OCSPResponseStatus.tryLater);

    await signer.tick();
    expect(h.coordinator.ocsp.state).toBe("waiting");
    expect(signer.current).toBeUndefined();
    expect(existsSync(join(dir, "chain.pem"))).toBe(false);
    const pending = signer.pendingRequest!;
    expect(pending).toBeDefined();
    expect(decode((await post(req)).der).status).toBe(OCSPResponseStatus.tryLater);
    await approveAndIssue(pending);
    await signer.tick();
    expect(h.coordinator.ocsp.state).toBe("ready");
    expect(signer.current!.serial).not.toBe(old);
    const { der } = await post(req);
    expect(decode(der).status).toBe(OCSPResponseStatus.successful);
    expect(verifySignature(der).serialNumber).toBe(signer.current!.serial);
  }, 60_000);
});

describe("a store that cannot be read", () => {
  it("gets an OCSPResponse (tryLater, or internalError), over POST and GET, never an HTTP error", async () => {
    const chainPem = readFileSync(join(dir, "chain.pem"), "utf8");
    const own = storedSerial(new X509Certificate(chainPem).serialNumber)!;
    let mode: "ca" | "records" | "garbage" = "records";
    const responder = new OcspResponder({
      source: {
        caCertificate: async () => {
          if (mode === "ca") throw new Error("SQLITE_BUSY: database is locked");
          return caDer;
        },
        certificate: async (serial) => {
          if (mode === "records") throw new Error("connection terminated unexpectedly");
          // A record that cannot be encoded: signing the answer fails here, not in the store.
          return serial === own
            ? undefined
            : { revocation: { revokedAt: "not a time", reason: "keyCompromise" } };
        },
      },
      log: pino({ level: "silent" }),
    });
    responder.install({
      keyPem: readFileSync(join(dir, "key.pem"), "utf8"),
      der: new Uint8Array(new X509Certificate(chainPem).raw),
      notAfter: new Date(new X509Certificate(chainPem).validTo),
    });
    const app = express();
    const router = express.Router();
    ocspRoutes(router, () => responder);
    app.use(router);
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const req = request([certId("7e57ab1e0123456789abcdef")]);
      const ask = async (get: boolean) => {
        const res = get
          ? await fetch(`${base}/ocsp/${encodeURIComponent(Buffer.from(req).toString("base64"))}`)
          : await fetch(`${base}/ocsp`, { method: "POST", body: Buffer.from(req) });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toBe("application/ocsp-response");
        expect(res.headers.get("cache-control")).toMatch(/no-store/);
        return decode(new Uint8Array(await res.arrayBuffer())).status;
      };
      for (const get of [false, true]) {
        mode = "records";
        expect(await ask(get)).toBe(OCSPResponseStatus.tryLater);
        mode = "ca";
        expect(await ask(get)).toBe(OCSPResponseStatus.tryLater);
        mode = "garbage";
        expect(await ask(get)).toBe(OCSPResponseStatus.internalError);
      }
    } finally {
      server.close();
    }
  });
});

describe("ocspRequester", () => {
  it("needs the ocsp requester and profile, and refuses ocspSigning granted to anyone else", () => {
    const c = h.ca.config.config;
    expect(ocspRequester(c).name).toBe("ocsp");
    const without: CaConfig = { ...c, requesters: c.requesters.filter((r) => r.name !== "ocsp") };
    expect(() => ocspRequester(without)).toThrow(/requester named "ocsp".*there is none/);
    const shared: CaConfig = {
      ...c,
      requesters: c.requesters.map((r) =>
        r.name === "dev" ? { ...r, profiles: [...r.profiles, "ocsp-responder"] } : r,
      ),
    };
    expect(() => ocspRequester(shared)).toThrow(/requester dev may get ocspSigning certificates/);
    expect(() => ocspRequester(c, "server")).toThrow(/lacks ocspNoCheck|not granted/);
  });
});
