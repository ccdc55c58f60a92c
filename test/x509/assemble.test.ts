import { describe, expect, it } from "vitest";
import {
  assembleCertificate,
  splitCertificate,
  toPem,
  verifyCertificateSignature,
} from "../../src/x509/assemble.ts";
import { buildRootTbs } from "../../src/x509/root.ts";
import { fromHex, fromPem, toHex } from "../../src/x509/der.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { testCaKey } from "./helpers.ts";

const ca = testCaKey();
const tbs = buildRootTbs({
  subject: "CN=Assemble Test",
  caPublicKey: ca.raw,
  serial: fromHex("11223344556677889900"),
  notBefore: new Date("2026-01-01T00:00:00Z"),
  notAfter: new Date("2027-01-01T00:00:00Z"),
});

describe("assembleCertificate", () => {
  it("wraps the exact TBS bytes with Ed25519 (no params) and the signature", () => {
    const sig = ca.sign(tbs);
    const cert = assembleCertificate(tbs, sig);
    const parts = splitCertificate(cert);
    expect(toHex(parts.tbs)).toBe(toHex(tbs));
    expect(toHex(parts.sigAlg)).toBe("300506032b6570");
    expect(toHex(parts.signature)).toBe(toHex(sig));
    expect(toHex(cert)).toContain(toHex(tbs));
    expect(verifyCertificateSignature(cert, ca.raw)).toBe(true);
  });

  it("verifyCertificateSignature says no to a wrong key, a flipped bit, garbage", () => {
    const cert = assembleCertificate(tbs, ca.sign(tbs));
    expect(verifyCertificateSignature(cert, testCaKey().raw)).toBe(false);
    const bad = cert.slice();
    bad[bad.length - 1]! ^= 1;
    expect(verifyCertificateSignature(bad, ca.raw)).toBe(false);
    const badTbs = cert.slice();
    badTbs[40]! ^= 1;
    expect(verifyCertificateSignature(badTbs, ca.raw)).toBe(false);
    expect(verifyCertificateSignature(new Uint8Array([0x30, 0x00]), ca.raw)).toBe(false);
    expect(verifyCertificateSignature(cert.subarray(0, 50), ca.raw)).toBe(false);
  });

  it("refuses a signature that is not 64 bytes and a TBS that is not DER", () => {
    expect(() => assembleCertificate(tbs, new Uint8Array(63))).toThrow(X509Error);
    expect(() => assembleCertificate(Uint8Array.of(0x30, 0x05, 1), new Uint8Array(64))).toThrow(
      /not valid DER/,
    );
    expect(() => assembleCertificate(Uint8Array.of(...tbs, 0), new Uint8Array(64))).toThrow(/trailing/);
  });

  it("PEM round trip", () => {
    const cert = assembleCertificate(tbs, ca.sign(tbs));
    const pem = toPem(cert, "CERTIFICATE");
    expect(pem.split("\n").every((l) => l.length <= 64)).toBe(true);
    expect(toHex(fromPem(pem, ["CERTIFICATE"]))).toBe(toHex(cert));
  });
});
