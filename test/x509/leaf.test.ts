import { X509Certificate as NodeX509 } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRootTbs } from "../../src/x509/root.ts";
import { buildLeafTbs, BUILDER_VERSION } from "../../src/x509/leaf.ts";
import { assembleCertificate, toPem, verifyCertificateSignature } from "../../src/x509/assemble.ts";
import { parseCsr } from "../../src/x509/csr.ts";
import { readCaCert } from "../../src/x509/ca-cert.ts";
import { lintTbs } from "../../src/x509/lint.ts";
import { readTbs } from "../../src/x509/tbs-read.ts";
import { keyIdentifier } from "../../src/x509/ski.ts";
import { fromHex, toHex } from "../../src/x509/der.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { openssl, TempDir, testCaKey } from "./helpers.ts";
import { makeCsr } from "./csr-fixtures.ts";
import { intermediateProfile, serverProfile } from "./profiles.ts";

const dir = new TempDir();
afterAll(() => dir.remove());
const ca = testCaKey();
let caCert: Uint8Array;
let rootPem: string;

beforeAll(() => {
  const tbs = buildRootTbs({
    subject: "CN=Leaf Test Root, O=Example",
    caPublicKey: ca.raw,
    serial: fromHex("0a0b0c0d0e0f10111213"),
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2056-01-01T00:00:00Z"),
  });
  caCert = assembleCertificate(tbs, ca.sign(tbs));
  rootPem = dir.file("root.pem", toPem(caCert, "CERTIFICATE"));
});

const base = () => ({
  profile: serverProfile,
  caCertDer: caCert,
  serial: fromHex("00c1d2e3f405060708090a0b0c0d0e0f10"),
  notBefore: new Date("2026-03-01T12:00:00.500Z"),
  notAfter: new Date("2026-04-01T12:00:00Z"),
  publicUrl: "https://ca.example.test:8443/",
});

// The fixed validity lies in the past of some test runs: verify at a time inside it.
const AT_TIME = Date.parse("2026-03-15T00:00:00Z") / 1000;

function issue(tbs: Uint8Array, name: string): { pem: string; text: string; der: Uint8Array } {
  lintTbs(tbs, { caSubjectDer: readCaCert(caCert).subjectDer, caSkiHex: readCaCert(caCert).skiHex });
  const der = assembleCertificate(tbs, ca.sign(tbs));
  expect(verifyCertificateSignature(der, ca.raw)).toBe(true);
  const pem = dir.file(`${name}.pem`, toPem(der, "CERTIFICATE"));
  expect(
    openssl(["verify", "-x509_strict", "-attime", String(AT_TIME), "-CAfile", rootPem, pem]).trim(),
  ).toBe(`${pem}: OK`);
  return { pem, der, text: openssl(["x509", "-in", pem, "-text", "-noout"]) };
}

describe("buildLeafTbs", () => {
  it("exports the builder version", () => expect(BUILDER_VERSION).toBe("tca-tbs/3"));

  it.each(["rsa-2048", "p256", "p384", "p521", "ed25519", "ed448"])(
    "issues a %s leaf openssl verifies",
    (kind) => {
      const csr = parseCsr(
        makeCsr(dir, kind, `leaf-${kind}`, { san: "DNS:a.example,IP:10.0.0.1,DNS:b.example" }),
      );
      const tbs = buildLeafTbs({ ...base(), csr });
      expect(toHex(buildLeafTbs({ ...base(), csr: csr.der }))).toBe(toHex(tbs)); // DER input, deterministic
      const t = readTbs(tbs);
      expect(toHex(t.subjectDer)).toBe(toHex(csr.subjectDer));
      expect(toHex(t.spkiDer)).toBe(toHex(csr.spkiDer));
      expect(toHex(t.issuerDer)).toBe(toHex(readCaCert(caCert).subjectDer));
      expect(t.notBefore.date.toISOString()).toBe("2026-03-01T12:00:00.000Z");
      expect(t.extensions.map((e) => `${e.oid}${e.critical ? "!" : ""}`)).toEqual([
        "2.5.29.19!",
        "2.5.29.15!",
        "2.5.29.37",
        "2.5.29.17",
        "2.5.29.14",
        "2.5.29.35",
        "2.5.29.31",
        "1.3.6.1.5.5.7.1.1",
      ]);
      expect(toHex(t.extensions[4]!.value)).toBe(`0414${toHex(keyIdentifier(csr.spkiDer))}`);
      expect(toHex(t.extensions[5]!.value)).toBe(`30168014${readCaCert(caCert).skiHex}`);
      const { text, der } = issue(tbs, `leaf-${kind}`);
      expect(text).toContain("Signature Algorithm: ED25519");
      expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
      // Key encipherment is an RSA operation: kept for RSA subjects only (RFC 8410 §5, RFC 8813 §3).
      if (kind.startsWith("rsa"))
        expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
      else expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
      expect(text).toMatch(
        /Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication/,
      );
      expect(text).toMatch(/Subject Alternative Name: \s+DNS:a.example, IP Address:10.0.0.1, DNS:b.example/);
      expect(text).toContain("URI:https://ca.example.test:8443/crl");
      expect(text).toContain("CA Issuers - URI:https://ca.example.test:8443/ca.crt");
      expect(text).toContain("Issuer: CN = Leaf Test Root, O = Example");
      const node = new NodeX509(der);
      expect(node.checkIssued(new NodeX509(caCert))).toBe(true);
      expect(node.checkHost("b.example")).toBe("b.example");
    },
  );

  it("leaves CRL DP and AIA out without publicUrl, and EKU out when the profile has none", () => {
    const csr = parseCsr(makeCsr(dir, "ed25519", "plain", { san: "DNS:a.example" }));
    const tbs = buildLeafTbs({
      ...base(),
      publicUrl: undefined,
      profile: { ...serverProfile, extKeyUsage: [] },
      csr,
    });
    expect(readTbs(tbs).extensions.map((e) => e.oid)).toEqual([
      "2.5.29.19",
      "2.5.29.15",
      "2.5.29.17",
      "2.5.29.14",
      "2.5.29.35",
    ]);
    issue(tbs, "plain");
  });

  it("marks SAN critical when the subject is empty (RFC 5280 §4.2.1.6)", () => {
    const csr = parseCsr(makeCsr(dir, "p256", "nosubj", { subject: "/", san: "DNS:only.example" }));
    const t = readTbs(buildLeafTbs({ ...base(), csr }));
    expect(t.extensions.find((e) => e.oid === "2.5.29.17")!.critical).toBe(true);
    const { text } = issue(buildLeafTbs({ ...base(), csr }), "nosubj");
    expect(text).toMatch(/Subject Alternative Name: critical\s+DNS:only.example/);
  });

  it("refuses an empty subject without SANs", () => {
    const csr = parseCsr(makeCsr(dir, "p256", "nobody", { subject: "/" }));
    expect(() => buildLeafTbs({ ...base(), csr })).toThrow(expect.objectContaining({ code: "SAN_REQUIRED" }));
  });

  it("issues an intermediate with pathLen and critical nameConstraints", () => {
    const csr = parseCsr(makeCsr(dir, "ed25519", "inter", { subject: "/CN=Issuing CA/O=Example" }));
    const tbs = buildLeafTbs({ ...base(), profile: intermediateProfile, csr });
    const t = readTbs(tbs);
    expect(t.extensions.map((e) => `${e.oid}${e.critical ? "!" : ""}`)).toEqual([
      "2.5.29.19!",
      "2.5.29.15!",
      "2.5.29.14",
      "2.5.29.35",
      "2.5.29.31",
      "1.3.6.1.5.5.7.1.1",
      "2.5.29.30!",
    ]);
    const { text } = issue(tbs, "inter");
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(
      /Name Constraints: critical\s+Permitted:\s+DNS:svc.internal\s+DNS:.example.com\s+Excluded:\s+DNS:bad.svc.internal/,
    );
  });

  it("every input changes the bytes (what a coordinator could swap)", () => {
    const csr = parseCsr(makeCsr(dir, "p256", "swap", { san: "DNS:a.example" }));
    const other = parseCsr(makeCsr(dir, "p384", "swap2", { san: "DNS:a.example" }));
    const ref = toHex(buildLeafTbs({ ...base(), csr }));
    const variants = [
      { serial: fromHex("00c1d2e3f405060708090a0b0c0d0e0f11") },
      { notBefore: new Date("2026-03-01T12:00:01Z") },
      { notAfter: new Date("2026-04-01T12:00:01Z") },
      { csr: other },
      { profile: { ...serverProfile, extKeyUsage: ["serverAuth" as const] } },
      { publicUrl: "https://evil.example" },
    ];
    for (const v of variants) expect(toHex(buildLeafTbs({ ...base(), csr, ...v }))).not.toBe(ref);
  });

  it("refuses a CA certificate without SKI and a bad serial", () => {
    const csr = parseCsr(makeCsr(dir, "p256", "x", { san: "DNS:a.example" }));
    expect(() => buildLeafTbs({ ...base(), csr, caCertDer: Uint8Array.of(0x30, 0) })).toThrow(X509Error);
    expect(() => buildLeafTbs({ ...base(), csr, serial: fromHex("00") })).toThrow(
      expect.objectContaining({ code: "SERIAL_INVALID" }),
    );
  });
});
