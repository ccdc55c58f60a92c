import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { X509Crl } from "@peculiar/x509";
import { buildRootTbs } from "../../src/x509/root.ts";
import { buildLeafTbs } from "../../src/x509/leaf.ts";
import { assembleCertificate, toPem } from "../../src/x509/assemble.ts";
import { readCaCert } from "../../src/x509/ca-cert.ts";
import { parseCsr } from "../../src/x509/csr.ts";
import { fromHex, toHex } from "../../src/x509/der.ts";
import { readTbs } from "../../src/x509/tbs-read.ts";
import { children, readDer } from "../../src/x509/der-read.ts";
import { X509Error } from "../../src/x509/errors.ts";
import {
  assembleCrl,
  buildCrlTbs,
  CRL_PEM_LABEL,
  readCrl,
  readCrlTbs,
  REVOCATION_REASONS,
  verifyCrlSignature,
  type CrlEntry,
  type CrlTbsInput,
} from "../../src/x509/crl.ts";
import { der, openssl, TempDir, testCaKey } from "./helpers.ts";
import { makeCsr } from "./csr-fixtures.ts";
import { serverProfile } from "./profiles.ts";

const dir = new TempDir();
afterAll(() => dir.remove());
const ca = testCaKey();
const AT_TIME = String(Date.parse("2026-03-15T00:00:00Z") / 1000);
let caCert: Uint8Array;
let rootPem: string;
let leafPem: string;
let leafSerial: string;

beforeAll(() => {
  const rootTbs = buildRootTbs({
    subject: "CN=CRL Test Root, O=Example",
    caPublicKey: ca.raw,
    serial: fromHex("0a0b0c0d0e0f10111213"),
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2056-01-01T00:00:00Z"),
  });
  caCert = assembleCertificate(rootTbs, ca.sign(rootTbs));
  rootPem = dir.file("root.pem", toPem(caCert, "CERTIFICATE"));
  const leafTbs = buildLeafTbs({
    csr: parseCsr(makeCsr(dir, "p256", "leaf", { san: "DNS:a.example" })),
    profile: serverProfile,
    caCertDer: caCert,
    serial: fromHex("00c1d2e3f405060708090a0b0c0d0e0f10"),
    notBefore: new Date("2026-03-01T00:00:00Z"),
    notAfter: new Date("2026-04-01T00:00:00Z"),
  });
  leafSerial = toHex(readTbs(leafTbs).serial);
  leafPem = dir.file("leaf.pem", toPem(assembleCertificate(leafTbs, ca.sign(leafTbs)), "CERTIFICATE"));
});

const base = (over: Partial<CrlTbsInput> = {}): CrlTbsInput => ({
  caCertDer: caCert,
  crlNumber: 7n,
  thisUpdate: new Date("2026-03-10T00:00:00.250Z"),
  nextUpdate: new Date("2026-03-17T00:00:00Z"),
  entries: [],
  ...over,
});

const revokedAt = new Date("2026-03-09T08:30:00Z");
const gtime2026 = der.tlv(0x18, new Uint8Array(Buffer.from("20260310000000Z", "ascii")));

function signed(over: Partial<CrlTbsInput>, name: string): { der: Uint8Array; pem: string } {
  const tbs = buildCrlTbs(base(over));
  const crl = assembleCrl(tbs, ca.sign(tbs));
  expect(verifyCrlSignature(crl, ca.raw)).toBe(true);
  return { der: crl, pem: dir.file(`${name}.pem`, toPem(crl, CRL_PEM_LABEL)) };
}

/** openssl with stdout and stderr together (older openssl prints "verify OK" on stderr). */
function opensslAll(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(X509Error);
    return (e as X509Error).code;
  }
  return undefined;
}

describe("CRL", () => {
  it("lists the RFC 5280 §5.3.1 reasons without removeFromCRL", () => {
    expect(REVOCATION_REASONS).toEqual([
      "unspecified",
      "keyCompromise",
      "cACompromise",
      "affiliationChanged",
      "superseded",
      "cessationOfOperation",
      "certificateHold",
      "privilegeWithdrawn",
      "aACompromise",
    ]);
  });

  it("revokes the leaf: openssl verifies the CRL, shows it, and rejects the leaf", () => {
    const { der: crl, pem } = signed(
      { entries: [{ serial: leafSerial, revokedAt, reason: "keyCompromise" }] },
      "crl",
    );
    const check = opensslAll(["crl", "-in", pem, "-CAfile", rootPem, "-noout"]);
    expect(check.status).toBe(0);
    expect(check.out).toContain("verify OK");
    const text = openssl(["crl", "-in", pem, "-text", "-noout"]);
    expect(text).toContain("Version 2 (0x1)");
    expect(text).toContain("Signature Algorithm: ED25519");
    expect(text).toContain("Issuer: CN = CRL Test Root, O = Example");
    expect(text).toMatch(/X509v3 CRL Number:\s+7\n/);
    expect(text).toMatch(/Authority Key Identifier:\s+(?:keyid:)?([0-9A-F]{2}:){19}[0-9A-F]{2}\n/);
    expect(text).toContain(readCaCert(caCert).skiHex.toUpperCase().match(/../g)!.join(":"));
    expect(text).toMatch(/X509v3 CRL Reason Code:\s+Key Compromise/);
    expect(text).toContain(`Serial Number: ${leafSerial.replace(/^00/, "").toUpperCase()}`);
    expect(text).toContain("Last Update: Mar 10 00:00:00 2026 GMT");
    const v = opensslAll([
      "verify",
      "-crl_check",
      "-attime",
      AT_TIME,
      "-CRLfile",
      pem,
      "-CAfile",
      rootPem,
      leafPem,
    ]);
    expect(v.status).not.toBe(0);
    expect(v.out).toContain("certificate revoked");
    expect(readCrl(crl).entries).toEqual([{ serial: leafSerial, revokedAt, reason: "keyCompromise" }]);
  });

  it("a CRL without the leaf's serial lets verify -crl_check pass", () => {
    const { pem } = signed(
      { entries: [{ serial: "0102030405060708090a", revokedAt, reason: "superseded" }] },
      "crl-other",
    );
    const v = opensslAll([
      "verify",
      "-crl_check",
      "-attime",
      AT_TIME,
      "-CRLfile",
      pem,
      "-CAfile",
      rootPem,
      leafPem,
    ]);
    expect(v.out).toContain(`${leafPem}: OK`);
    expect(v.status).toBe(0);
  });

  it("an empty CRL has no revokedCertificates field and verifies", () => {
    const tbs = buildCrlTbs(base());
    // version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions: six fields
    expect(children(readDer(tbs)).map((f) => f.tag)).toEqual([0x02, 0x30, 0x30, 0x17, 0x17, 0xa0]);
    const { der: crl, pem } = signed({}, "crl-empty");
    const r = readCrl(crl);
    expect(r.entries).toEqual([]);
    expect(toHex(r.tbs)).toBe(toHex(tbs));
    const check = opensslAll(["crl", "-in", pem, "-CAfile", rootPem, "-noout"]);
    expect(check.out).toContain("verify OK");
    expect(openssl(["crl", "-in", pem, "-text", "-noout"])).toContain("No Revoked Certificates.");
    const v = opensslAll([
      "verify",
      "-crl_check",
      "-attime",
      AT_TIME,
      "-CRLfile",
      pem,
      "-CAfile",
      rootPem,
      leafPem,
    ]);
    expect(v.status).toBe(0);
  });

  it("is deterministic and independent of entry order; entries sorted numerically", () => {
    const entries: CrlEntry[] = [
      { serial: "00ff0102030405060708", revokedAt, reason: "cACompromise" },
      { serial: "0203040506070809", revokedAt, reason: "unspecified" },
      { serial: "7f0102030405060708", revokedAt, reason: "aACompromise" },
      { serial: "010203040506070809", revokedAt, reason: "privilegeWithdrawn" },
    ];
    const a = buildCrlTbs(base({ entries }));
    expect(toHex(buildCrlTbs(base({ entries: [...entries] })))).toBe(toHex(a));
    expect(toHex(buildCrlTbs(base({ entries: [...entries].reverse() })))).toBe(toHex(a));
    expect(readCrlTbs(a).entries.map((e) => e.serial)).toEqual([
      "0203040506070809",
      "010203040506070809",
      "7f0102030405060708",
      "00ff0102030405060708",
    ]);
    expect(toHex(buildCrlTbs(base({ entries, crlNumber: 8 })))).not.toBe(toHex(a));
  });

  it("reads back what it built, and rebuilding from the read fields gives the same bytes", () => {
    const entries: CrlEntry[] = REVOCATION_REASONS.map((reason, i) => ({
      serial: `0${i + 1}0102030405060708`,
      revokedAt: new Date(Date.UTC(2026, 2, 1 + i, 12)),
      reason,
    }));
    const input = base({
      entries,
      crlNumber: 2n ** 159n - 1n,
      thisUpdate: new Date("2049-12-31T23:59:59Z"),
      nextUpdate: new Date("2050-01-07T00:00:00Z"),
    });
    const tbs = buildCrlTbs(input);
    const crl = assembleCrl(tbs, ca.sign(tbs));
    const r = readCrl(crl);
    expect(toHex(r.tbs)).toBe(toHex(tbs));
    expect(r.crlNumber).toBe(2n ** 159n - 1n);
    expect(r.thisUpdate).toEqual(input.thisUpdate);
    expect(r.nextUpdate).toEqual(input.nextUpdate);
    expect(r.entries).toEqual(entries);
    expect(toHex(r.issuerDer)).toBe(toHex(readCaCert(caCert).subjectDer));
    expect(readCrlTbs(tbs)).toEqual(r);
    const rebuilt = buildCrlTbs({ caCertDer: caCert, ...r });
    expect(toHex(rebuilt)).toBe(toHex(tbs));
    // "unspecified" carries no reasonCode (§5.3.1): that entry has no crlEntryExtensions.
    expect(toHex(tbs)).toContain(`301a0209${entries[0]!.serial}170d`);
    expect(toHex(tbs)).toContain("0a0101"); // keyCompromise ENUMERATED
    expect(toHex(tbs)).toMatch(/180f32303530303130373030303030305a/); // nextUpdate GeneralizedTime
  });

  it("@peculiar/x509 parses it and sees the entries", async () => {
    const { der: crl } = signed(
      {
        entries: [
          { serial: leafSerial, revokedAt, reason: "keyCompromise" },
          { serial: "0102030405060708090a", revokedAt, reason: "unspecified" },
        ],
      },
      "crl-pec",
    );
    const p = new X509Crl(crl.slice().buffer);
    expect(p.issuer).toBe("CN=CRL Test Root, O=Example");
    expect(p.thisUpdate.toISOString()).toBe("2026-03-10T00:00:00.000Z");
    expect(p.nextUpdate?.toISOString()).toBe("2026-03-17T00:00:00.000Z");
    expect(p.entries.map((e) => [e.serialNumber.toLowerCase(), e.reason])).toEqual([
      ["0102030405060708090a", undefined],
      [leafSerial.replace(/^00/, ""), 1], // it drops the sign octet
    ]);
    expect(p.extensions.map((e) => e.type)).toEqual(["2.5.29.35", "2.5.29.20"]);
  });

  it.each<[string, Partial<CrlTbsInput>, string]>([
    [
      "a duplicate serial",
      {
        entries: [
          { serial: "0102030405060708090a", revokedAt, reason: "keyCompromise" },
          { serial: "0102030405060708090A", revokedAt, reason: "superseded" },
        ],
      },
      "CRL_INVALID",
    ],
    ["nextUpdate = thisUpdate", { nextUpdate: new Date("2026-03-10T00:00:00.900Z") }, "CRL_INVALID"],
    ["nextUpdate < thisUpdate", { nextUpdate: new Date("2026-03-01T00:00:00Z") }, "CRL_INVALID"],
    ["a negative CRL number", { crlNumber: -1n }, "CRL_INVALID"],
    ["a 21-octet CRL number", { crlNumber: 2n ** 159n }, "CRL_INVALID"],
    ["an unsafe number", { crlNumber: 2 ** 60 }, "CRL_INVALID"],
    ["an invalid date", { thisUpdate: new Date("nope") }, "CRL_INVALID"],
    ["odd hex", { entries: [{ serial: "123", revokedAt, reason: "superseded" }] }, "SERIAL_INVALID"],
    ["non-hex", { entries: [{ serial: "zz", revokedAt, reason: "superseded" }] }, "SERIAL_INVALID"],
    ["a negative serial", { entries: [{ serial: "80", revokedAt, reason: "superseded" }] }, "SERIAL_INVALID"],
    [
      "a non-minimal serial",
      { entries: [{ serial: "0001", revokedAt, reason: "superseded" }] },
      "SERIAL_INVALID",
    ],
    ["a zero serial", { entries: [{ serial: "00", revokedAt, reason: "superseded" }] }, "SERIAL_INVALID"],
    [
      "removeFromCRL",
      { entries: [{ serial: "01", revokedAt, reason: "removeFromCRL" as CrlEntry["reason"] }] },
      "CRL_INVALID",
    ],
    ["a broken CA certificate", { caCertDer: Uint8Array.of(0x30, 0) }, "CERT_MALFORMED"],
  ])("refuses %s", (_, over, code) => {
    expect(codeOf(() => buildCrlTbs(base(over)))).toBe(code);
  });

  it("accepts CRL number 0 and a serial with a needed leading 00", () => {
    const r = readCrlTbs(
      buildCrlTbs(base({ crlNumber: 0, entries: [{ serial: "0080", revokedAt, reason: "superseded" }] })),
    );
    expect(r.crlNumber).toBe(0n);
    expect(r.entries[0]!.serial).toBe("0080");
  });

  it("assembles only 64-byte signatures, and verifyCrlSignature rejects other keys and tampering", () => {
    const tbs = buildCrlTbs(base());
    expect(codeOf(() => assembleCrl(tbs, new Uint8Array(63)))).toBe("KEY_INVALID");
    expect(codeOf(() => assembleCrl(Uint8Array.of(1, 2), new Uint8Array(64)))).toBe("CRL_MALFORMED");
    const crl = assembleCrl(tbs, ca.sign(tbs));
    expect(verifyCrlSignature(crl, testCaKey().raw)).toBe(false);
    const bad = crl.slice();
    bad[bad.length - 1]! ^= 1;
    expect(verifyCrlSignature(bad, ca.raw)).toBe(false);
    expect(verifyCrlSignature(Uint8Array.of(0x30, 0), ca.raw)).toBe(false);
  });

  it("refuses malformed CRLs with CRL_MALFORMED", () => {
    const tbs = buildCrlTbs(base({ entries: [{ serial: "01", revokedAt, reason: "keyCompromise" }] }));
    const crl = assembleCrl(tbs, ca.sign(tbs));
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      crl.subarray(0, crl.length - 1), // truncated
      Uint8Array.from([...crl, 0]), // trailing byte
      der.seq(tbs, der.seq(der.oid("1.3.101.113")), der.bitString(new Uint8Array(64))), // not Ed25519
    ];
    for (const c of cases) expect(codeOf(() => readCrl(c))).toBe("CRL_MALFORMED");
    // TBS variants, each well-formed DER that breaks one rule.
    const [version, sigAlg, issuer, thisUp, nextUp, revoked, exts] = children(readDer(tbs)).map((f) => f.raw);
    const variants: Uint8Array[][] = [
      [sigAlg!, issuer!, thisUp!, nextUp!, revoked!, exts!], // v1: no version
      [der.smallInteger(2), sigAlg!, issuer!, thisUp!, nextUp!, revoked!, exts!], // "v3"
      [version!, der.seq(der.oid("1.3.101.113")), issuer!, thisUp!, nextUp!, revoked!, exts!], // Ed448
      [version!, sigAlg!, issuer!, thisUp!, revoked!, exts!], // no nextUpdate
      [version!, sigAlg!, issuer!, thisUp!, nextUp!, der.seq(), exts!], // empty revokedCertificates
      [version!, sigAlg!, issuer!, thisUp!, nextUp!, revoked!], // no crlExtensions
      [version!, sigAlg!, issuer!, thisUp!, nextUp!, revoked!, exts!, der.seq()], // extra field
      [version!, sigAlg!, issuer!, nextUp!, thisUp!, revoked!, exts!], // nextUpdate before thisUpdate
      [version!, sigAlg!, issuer!, thisUp!, thisUp!, revoked!, exts!], // nextUpdate = thisUpdate
      [version!, sigAlg!, issuer!, gtime2026, nextUp!, revoked!, exts!], // GeneralizedTime before 2050
      [version!, sigAlg!, issuer!, thisUp!, nextUp!, revoked!, der.ctx(0, true, der.seq())], // empty Extensions
    ];
    for (const v of variants) expect(codeOf(() => readCrlTbs(der.seq(...v)))).toBe("CRL_MALFORMED");
    // The unchanged fields read fine, so each refusal above is about its one change.
    expect(
      readCrlTbs(der.seq(version!, sigAlg!, issuer!, thisUp!, nextUp!, revoked!, exts!)).entries,
    ).toHaveLength(1);
    // A reasonCode of removeFromCRL (8) and a critical entry extension are refused too.
    const entryWith = (ext: Uint8Array) =>
      der.seq(
        version!,
        sigAlg!,
        issuer!,
        thisUp!,
        nextUp!,
        der.seq(der.seq(der.integerContent(Uint8Array.of(1)), thisUp!, der.seq(ext))),
        exts!,
      );
    const reasonExt = (code: number, critical = false) =>
      der.seq(
        der.oid("2.5.29.21"),
        ...(critical ? [der.boolean(true)] : []),
        der.tlv(0x04, der.tlv(0x0a, Uint8Array.of(code))),
      );
    expect(readCrlTbs(entryWith(reasonExt(1))).entries[0]!.reason).toBe("keyCompromise");
    expect(codeOf(() => readCrlTbs(entryWith(reasonExt(8))))).toBe("CRL_MALFORMED");
    expect(codeOf(() => readCrlTbs(entryWith(reasonExt(11))))).toBe("CRL_MALFORMED");
    expect(codeOf(() => readCrlTbs(entryWith(reasonExt(1, true))))).toBe("CRL_MALFORMED");
  });
});
