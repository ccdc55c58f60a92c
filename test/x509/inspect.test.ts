import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { X509Certificate, SubjectAlternativeNameExtension } from "@peculiar/x509";
import { describeTbs } from "../../src/x509/inspect.ts";
import { assembleCertificate } from "../../src/x509/assemble.ts";
import { fromHex } from "../../src/x509/der.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { fixedCaKey } from "./helpers.ts";

const v = JSON.parse(readFileSync(new URL("../vectors/tbs-golden.json", import.meta.url), "utf8")) as Record<
  string,
  string
>;

describe("describeTbs", () => {
  it("summarises the golden leaf", () => {
    const tbs = fromHex(v.leafTbs!);
    const d = describeTbs(tbs);
    expect(d).toMatchObject({
      subject: "C=US, O=Example Corp, CN=api.svc.internal",
      issuer: "CN=tca Golden Root CA, O=Example Corp, C=US",
      serialHex: "3c4d5e6f708192a3b4c5d6e7f8091a2b",
      notBefore: "2026-02-03T04:05:06.000Z",
      notAfter: "2026-05-04T04:05:06.000Z",
      validityHours: 2160,
      publicKey: { type: "ec-p256", bits: 256 },
      sans: [
        { type: "dns", value: "api.svc.internal" },
        { type: "dns", value: "*.api.svc.internal" },
        { type: "ip", value: "10.1.2.3" },
        { type: "ip", value: "fd00::5" },
        { type: "uri", value: "spiffe://example.test/api" },
      ],
      isCA: false,
      keyUsage: ["digitalSignature"], // the golden CSR is P-256: no keyEncipherment
      extKeyUsage: ["serverAuth", "clientAuth"],
      crlDistributionPoints: ["https://ca.example.test/crl"],
      caIssuers: ["https://ca.example.test/ca.crt"],
      tbsSha256: createHash("sha256").update(tbs).digest("hex"),
    });
    expect(d.pathLen).toBeUndefined();
    expect(d.extensions.map((e) => e.name)).toEqual([
      "basicConstraints",
      "keyUsage",
      "extKeyUsage",
      "subjectAltName",
      "subjectKeyIdentifier",
      "authorityKeyIdentifier",
      "cRLDistributionPoints",
      "authorityInfoAccess",
    ]);
    expect(d.publicKey.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("agrees with @peculiar/x509 on the same certificate", async () => {
    const tbs = fromHex(v.leafTbs!);
    const cert = new X509Certificate(assembleCertificate(tbs, fixedCaKey().sign(tbs)).slice().buffer);
    const d = describeTbs(tbs);
    expect(cert.subject).toBe(d.subject);
    expect(cert.issuer).toBe(d.issuer);
    expect(cert.serialNumber).toBe(d.serialHex);
    const san = cert.getExtension(SubjectAlternativeNameExtension)!;
    expect(san.names.items.map((n) => [n.type === "url" ? "uri" : n.type, n.value])).toEqual(
      d.sans.map((x) => [x.type, x.value]),
    );
    expect(Buffer.from(await cert.publicKey.getThumbprint("SHA-256")).toString("hex")).toBe(
      d.publicKey.sha256,
    );
  });

  it("summarises the golden sub-CA and root", () => {
    const sub = describeTbs(fromHex(v.subCaTbs!));
    expect(sub).toMatchObject({
      isCA: true,
      pathLen: 0,
      keyUsage: ["digitalSignature", "keyCertSign", "cRLSign"],
      extKeyUsage: [],
      crlDistributionPoints: [],
      caIssuers: [],
    });
    expect(sub.nameConstraints).toEqual({
      permittedDns: ["svc.internal", ".example.com"],
      excludedDns: ["bad.svc.internal"],
    });
    const root = describeTbs(fromHex(v.rootTbs!));
    expect(root).toMatchObject({
      isCA: true,
      publicKey: { type: "ed25519", bits: 256 },
      subject: root.issuer,
    });
    expect(root.subjectKeyId).toBe(root.authorityKeyId);
  });

  it("accepts a Node Buffer (a view into a shared pool) as well as a Uint8Array", () => {
    const fromBuffer = describeTbs(Buffer.from(v.leafTbs!, "hex"));
    expect(fromBuffer).toEqual(describeTbs(fromHex(v.leafTbs!)));
  });

  it("refuses garbage with TBS_MALFORMED", () => {
    expect(() => describeTbs(Uint8Array.of(1, 2, 3))).toThrow(X509Error);
    try {
      describeTbs(Uint8Array.of(0x30, 0x00));
    } catch (e) {
      expect((e as X509Error).code).toBe("TBS_MALFORMED");
    }
  });
});
