// Golden vectors (docs/architecture.md §3.2): fixed inputs -> fixed TBS bytes. If one of these fails, the
// builder's output changed: that breaks agreement between custodians running different
// versions, so bump BUILDER_VERSION and regenerate deliberately with TCA_UPDATE_GOLDEN=1.
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildRootTbs } from "../../src/x509/root.ts";
import { buildLeafTbs, BUILDER_VERSION } from "../../src/x509/leaf.ts";
import { assembleCertificate, verifyCertificateSignature } from "../../src/x509/assemble.ts";
import { parseCsr } from "../../src/x509/csr.ts";
import { fromHex, toHex } from "../../src/x509/der.ts";
import { lintTbs } from "../../src/x509/lint.ts";
import { readCaCert } from "../../src/x509/ca-cert.ts";
import { fixedCaKey } from "./helpers.ts";
import { intermediateProfile, ocspResponderProfile, serverProfile } from "./profiles.ts";

const VECTORS = new URL("../vectors/tbs-golden.json", import.meta.url);
const CSR_PEM = readFileSync(new URL("../fixtures/golden-csr.pem", import.meta.url), "utf8");

function compute(): Record<string, string> {
  const ca = fixedCaKey();
  const rootTbs = buildRootTbs({
    subject: "CN=tca Golden Root CA, O=Example Corp, C=US",
    caPublicKey: ca.raw,
    serial: fromHex("00a1b2c3d4e5f60718293a4b5c6d7e8f90"),
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2056-01-01T00:00:00Z"),
  });
  const rootCert = assembleCertificate(rootTbs, ca.sign(rootTbs)); // Ed25519 is deterministic
  const common = {
    caCertDer: rootCert,
    notBefore: new Date("2026-02-03T04:05:06Z"),
    notAfter: new Date("2026-05-04T04:05:06Z"),
  };
  const leafTbs = buildLeafTbs({
    ...common,
    csr: parseCsr(CSR_PEM),
    profile: serverProfile,
    serial: fromHex("3c4d5e6f708192a3b4c5d6e7f8091a2b"),
    publicUrl: "https://ca.example.test",
  });
  const subCaTbs = buildLeafTbs({
    ...common,
    csr: parseCsr(CSR_PEM),
    profile: { ...intermediateProfile, keyTypes: ["ec-p256"] },
    serial: fromHex("5566778899aabbccddeeff0011223344"),
  });
  // A delegated OCSP responder's certificate (docs/ocsp.md): ocspSigning, id-pkix-ocsp-nocheck, 4 days.
  const ocspTbs = buildLeafTbs({
    ...common,
    notAfter: new Date("2026-02-07T04:05:06Z"),
    csr: parseCsr(CSR_PEM),
    profile: ocspResponderProfile,
    serial: fromHex("6677889900aabbccddeeff0011223344"),
    publicUrl: "https://ca.example.test",
  });
  return {
    builderVersion: BUILDER_VERSION,
    caPublicKey: toHex(ca.raw),
    rootTbs: toHex(rootTbs),
    rootCert: toHex(rootCert),
    leafTbs: toHex(leafTbs),
    subCaTbs: toHex(subCaTbs),
    ocspTbs: toHex(ocspTbs),
  };
}

describe("golden TBS vectors", () => {
  it("the builders reproduce the pinned bytes", () => {
    const got = compute();
    if (process.env.TCA_UPDATE_GOLDEN === "1") writeFileSync(VECTORS, `${JSON.stringify(got, null, 2)}\n`);
    const pinned = JSON.parse(readFileSync(VECTORS, "utf8")) as Record<string, string>;
    expect(got).toEqual(pinned);
  });

  it("the pinned certificates are valid and lint clean", () => {
    const v = JSON.parse(readFileSync(VECTORS, "utf8")) as Record<string, string>;
    const root = fromHex(v.rootCert!);
    expect(verifyCertificateSignature(root, fromHex(v.caPublicKey!))).toBe(true);
    const ca = readCaCert(root);
    for (const k of ["rootTbs", "leafTbs", "subCaTbs", "ocspTbs"])
      lintTbs(fromHex(v[k]!), { caSubjectDer: ca.subjectDer, caSkiHex: ca.skiHex });
  });

  it("building twice gives identical bytes", () => {
    expect(compute()).toEqual(compute());
  });
});
