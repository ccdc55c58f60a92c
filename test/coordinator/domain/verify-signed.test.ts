// verifySigned, the one release check for root, leaf and CRL (docs/architecture.md §3.8): assemble from the
// exact signed bytes, parse again, verify with the CA key. Here the "CA key" is an ordinary Ed25519 key,
// which is what a FROST group signature verifies as (RFC 9591 §5.3).
import { generateKeyPairSync, sign, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifySigned } from "../../../src/coordinator/verify-signed.ts";
import { assembleCertificate } from "../../../src/x509/assemble.ts";
import { buildCrlTbs, readCrl } from "../../../src/x509/crl.ts";
import { buildRootTbs } from "../../../src/x509/root.ts";

function caKey() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(-32));
  return { raw, signBytes: (b: Uint8Array) => new Uint8Array(sign(null, b, privateKey)) };
}

const ca = caKey();
const serial = Uint8Array.from([0x1f, ...Array.from({ length: 15 }, (_, i) => i + 1)]);
const serialHex = Buffer.from(serial).toString("hex");
const notBefore = new Date("2026-01-01T00:00:00Z");
const rootTbs = buildRootTbs({
  subject: "CN=Test Root, O=Example",
  caPublicKey: ca.raw,
  serial,
  notBefore,
  notAfter: new Date("2036-01-01T00:00:00Z"),
});
const rootDer = assembleCertificate(rootTbs, ca.signBytes(rootTbs));
const crlTbs = buildCrlTbs({
  caCertDer: rootDer,
  crlNumber: 7n,
  thisUpdate: notBefore,
  nextUpdate: new Date("2026-01-02T00:00:00Z"),
  entries: [{ serial: "0a0b0c0d0e0f101112", revokedAt: notBefore, reason: "keyCompromise" }],
});

describe("verifySigned", () => {
  it("releases a certificate that verifies under the CA key and carries the expected serial", () => {
    const out = verifySigned({
      kind: "certificate",
      tbs: rootTbs,
      signature: ca.signBytes(rootTbs),
      caPublicKey: ca.raw,
      serial: serialHex,
    });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(Buffer.from(out.der)).toEqual(Buffer.from(rootDer));
    const cert = new X509Certificate(Buffer.from(out.der));
    expect(cert.verify(cert.publicKey)).toBe(true);
  });

  it("releases a CRL that verifies under the CA key", () => {
    const out = verifySigned({
      kind: "crl",
      tbs: crlTbs,
      signature: ca.signBytes(crlTbs),
      caPublicKey: ca.raw,
    });
    expect(out.ok).toBe(true);
    if (out.ok) expect(readCrl(out.der).crlNumber).toBe(7n);
  });

  it("refuses a signature by another key, over other bytes, or of the wrong size, without throwing", () => {
    const other = caKey();
    const cases = [
      { kind: "certificate", tbs: rootTbs, signature: other.signBytes(rootTbs), caPublicKey: ca.raw },
      { kind: "certificate", tbs: rootTbs, signature: ca.signBytes(crlTbs), caPublicKey: ca.raw },
      { kind: "crl", tbs: crlTbs, signature: ca.signBytes(rootTbs), caPublicKey: ca.raw },
      { kind: "crl", tbs: crlTbs, signature: ca.signBytes(crlTbs), caPublicKey: other.raw },
    ] as const;
    for (const c of cases)
      expect(verifySigned(c)).toEqual({ ok: false, reason: expect.stringMatching(/does not verify/) });
    expect(
      verifySigned({ kind: "certificate", tbs: rootTbs, signature: new Uint8Array(63), caPublicKey: ca.raw }),
    ).toEqual({ ok: false, reason: expect.stringMatching(/cannot be assembled.*64 bytes/) });
    expect(
      verifySigned({
        kind: "crl",
        tbs: Uint8Array.of(1, 2, 3),
        signature: new Uint8Array(64),
        caPublicKey: ca.raw,
      }),
    ).toEqual({ ok: false, reason: expect.stringMatching(/cannot be assembled/) });
  });

  it("refuses a certificate with another serial, a CRL signed as a certificate, and no CA key", () => {
    const signature = ca.signBytes(rootTbs);
    expect(
      verifySigned({ kind: "certificate", tbs: rootTbs, signature, caPublicKey: ca.raw, serial: "0abc" }),
    ).toEqual({ ok: false, reason: expect.stringMatching(/does not carry serial 0abc/) });
    // Leading zero octets do not make another serial.
    expect(
      verifySigned({
        kind: "certificate",
        tbs: rootTbs,
        signature,
        caPublicKey: ca.raw,
        serial: `00${serialHex}`,
      }).ok,
    ).toBe(true);
    expect(
      verifySigned({ kind: "certificate", tbs: crlTbs, signature: ca.signBytes(crlTbs), caPublicKey: ca.raw })
        .ok,
    ).toBe(false);
    expect(
      verifySigned({ kind: "crl", tbs: crlTbs, signature: ca.signBytes(crlTbs), caPublicKey: null }),
    ).toEqual({
      ok: false,
      reason: expect.stringMatching(/no key/),
    });
  });
});
