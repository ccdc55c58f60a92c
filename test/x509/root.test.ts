import { X509Certificate as NodeX509 } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { X509Certificate } from "@peculiar/x509";
import { buildRootTbs } from "../../src/x509/root.ts";
import { assembleCertificate, toPem, verifyCertificateSignature } from "../../src/x509/assemble.ts";
import { fromHex, toHex } from "../../src/x509/der.ts";
import { nameToDer } from "../../src/x509/names.ts";
import { lintTbs } from "../../src/x509/lint.ts";
import { readTbs } from "../../src/x509/tbs-read.ts";
import { keyIdentifier } from "../../src/x509/ski.ts";
import { ed25519Spki } from "../../src/x509/tbs.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { openssl, TempDir, testCaKey } from "./helpers.ts";

const dir = new TempDir();
afterAll(() => dir.remove());

const ca = testCaKey();
const input = {
  subject: "CN=Test Root CA, O=Example, C=US",
  caPublicKey: ca.raw,
  serial: fromHex("0102030405060708090a0b0c0d0e0f10"),
  notBefore: new Date("2026-01-01T00:00:00.999Z"),
  notAfter: new Date("2036-01-01T00:00:00Z"),
};

describe("buildRootTbs", () => {
  it("is deterministic", () => {
    expect(toHex(buildRootTbs(input))).toBe(toHex(buildRootTbs({ ...input })));
  });

  it("has issuer = subject bytes, v3, Ed25519 without params, fixed extension order, seconds precision", () => {
    const t = readTbs(buildRootTbs(input));
    expect(t.version).toBe(2);
    expect(toHex(t.issuerDer)).toBe(toHex(t.subjectDer));
    expect(toHex(t.subjectDer)).toBe(toHex(nameToDer(input.subject)));
    expect(toHex(t.signatureAlgDer)).toBe("300506032b6570");
    expect(toHex(t.spkiDer)).toBe(toHex(ed25519Spki(ca.raw)));
    expect(t.notBefore.date.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(t.notBefore.tag).toBe(0x17);
    expect(t.extensions.map((e) => [e.oid, e.critical])).toEqual([
      ["2.5.29.19", true],
      ["2.5.29.15", true],
      ["2.5.29.14", false],
      ["2.5.29.35", false],
    ]);
    expect(toHex(t.extensions[0]!.value)).toBe("30030101ff"); // cA TRUE, no pathLen
    expect(toHex(t.extensions[1]!.value)).toBe("03020186"); // digitalSignature, keyCertSign, cRLSign
    const ski = keyIdentifier(ed25519Spki(ca.raw));
    expect(toHex(t.extensions[2]!.value)).toBe("0414" + toHex(ski));
    expect(toHex(t.extensions[3]!.value)).toBe("30168014" + toHex(ski));
    expect(() =>
      lintTbs(buildRootTbs(input), { caSubjectDer: t.subjectDer, caSkiHex: toHex(ski) }),
    ).not.toThrow();
  });

  it("switches to GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)", () => {
    const t = readTbs(
      buildRootTbs({
        ...input,
        notBefore: new Date("2049-12-31T23:59:59Z"),
        notAfter: new Date("2050-01-01T00:00:00Z"),
      }),
    );
    expect(t.notBefore.tag).toBe(0x17);
    expect(t.notAfter.tag).toBe(0x18);
    expect(t.notAfter.date.toISOString()).toBe("2050-01-01T00:00:00.000Z");
  });

  it.each([
    ["bad subject", { subject: "garbage" }, "NAME_INVALID"],
    ["empty subject", { subject: "  " }, "NAME_INVALID"],
    ["short key", { caPublicKey: new Uint8Array(31) }, "KEY_INVALID"],
    ["short serial", { serial: fromHex("01") }, "SERIAL_INVALID"],
    ["negative serial", { serial: fromHex("ff0102030405060708090a") }, "SERIAL_INVALID"],
    ["inverted validity", { notAfter: new Date("2025-01-01T00:00:00Z") }, "VALIDITY_NOT_ALLOWED"],
  ])("refuses %s", (_, over, code) => {
    expect(() => buildRootTbs({ ...input, ...over })).toThrow(X509Error);
    try {
      buildRootTbs({ ...input, ...over });
    } catch (e) {
      expect((e as X509Error).code).toBe(code);
    }
  });

  it("signed with the stand-in key, verifies in openssl, node and @peculiar/x509", async () => {
    const tbs = buildRootTbs(input);
    const cert = assembleCertificate(tbs, ca.sign(tbs));
    expect(verifyCertificateSignature(cert, ca.raw)).toBe(true);
    const pem = dir.file("root.pem", toPem(cert, "CERTIFICATE"));
    expect(
      openssl([
        "verify",
        "-x509_strict",
        "-check_ss_sig",
        "-attime",
        String(Date.parse("2026-06-01T00:00:00Z") / 1000),
        "-CAfile",
        pem,
        pem,
      ]),
    ).toContain(": OK");
    const text = openssl(["x509", "-in", pem, "-text", "-noout"]);
    expect(text).toContain("Signature Algorithm: ED25519");
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(text).toContain("Version: 3 (0x2)");
    expect(text).toContain("Issuer: CN = Test Root CA, O = Example, C = US");
    const node = new NodeX509(cert);
    expect(node.ca).toBe(true);
    expect(node.verify(node.publicKey)).toBe(true);
    const pec = new X509Certificate(cert.slice().buffer);
    expect(pec.subject).toBe("CN=Test Root CA, O=Example, C=US");
    expect(await pec.isSelfSigned()).toBe(true);
  });
});
