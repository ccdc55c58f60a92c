// The hot-path readers (names.ts readNameFast, inspect.ts CRLDP/AIA, der-read.ts decodeOid, the
// SPKI cache in keys.ts) must read every input exactly as the @peculiar object models and the
// plain node:crypto load did: same text, same values, same refusals. Differential tests over
// seeded random and mutated inputs, with @peculiar as the oracle.
import "reflect-metadata";
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Name } from "@peculiar/x509";
import { AsnConvert } from "@peculiar/asn1-schema";
import { AuthorityInfoAccessSyntax, CRLDistributionPoints } from "@peculiar/asn1-x509";
import { ctx, oid, seq, tlv, toArrayBuffer, TAG } from "../../src/x509/der.ts";
import { decodeOid, readDer } from "../../src/x509/der-read.ts";
import {
  commonNames,
  derToName,
  hasMultiValuedRdn,
  hasSubjectEmail,
  nameReadsFast,
} from "../../src/x509/names.ts";
import { caIssuerUris, crlDpUris } from "../../src/x509/inspect.ts";
import { keyTypeOf, loadSpki, publicKeyFromSpki } from "../../src/x509/keys.ts";
import { crlDistributionPoint, authorityInfoAccess } from "../../src/x509/extensions.ts";
import { OID } from "../../src/x509/oids.ts";
import { readCaCert } from "../../src/x509/ca-cert.ts";
import { buildRootTbs } from "../../src/x509/root.ts";
import { assembleCertificate } from "../../src/x509/assemble.ts";
import { randomSerial } from "../../src/x509/serial.ts";
import { testCaKey } from "./helpers.ts";

/** mulberry32: a small seeded PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Outcome<T> = { ok: true; value: T } | { ok: false };
function outcome<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch {
    return { ok: false };
  }
}

const OIDS = [
  "2.5.4.3",
  "2.5.4.6",
  "2.5.4.10",
  "2.5.4.11",
  "2.5.4.7",
  "2.5.4.8",
  "0.9.2342.19200300.100.1.25",
  "1.2.840.113549.1.9.1",
  "2.5.4.42",
  "2.5.4.43",
  "2.5.4.4",
  "2.5.4.12",
  "2.5.4.5", // serialNumber: no short name in @peculiar/x509
  "1.3.6.1.4.1.311.60.2.1.3",
  "2.999.1",
  "1.39.268435455", // arc at the 4-octet limit
  "2.25.340282366920938463463374607431768211455", // a UUID arc: far past 2^53
];
const PIECES = [
  "a",
  "Z",
  "example",
  "svc-1.example.internal",
  " ",
  ",",
  "+",
  '"',
  "\\",
  "<",
  ">",
  ";",
  "#",
  "=",
  "\r",
  "\n",
  "\t",
  "\0",
  "é",
  "日本",
  "😀",
  "\uFEFF",
  "'()./:?",
];
const BAD_UTF8 = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80]];
const STRING_TAGS = [0x0c, 0x0c, 0x0c, 0x13, 0x13, 0x16, 0x14, 0x1e, 0x1c, 0x12, 0x1a];

function randomName(r: () => number): Uint8Array {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const rdns: Uint8Array[] = [];
  const nRdn = Math.floor(r() * 5);
  for (let i = 0; i < nRdn; i++) {
    const atvs: Uint8Array[] = [];
    const nAtv = r() < 0.05 ? 0 : r() < 0.8 ? 1 : 2 + Math.floor(r() * 2);
    for (let j = 0; j < nAtv; j++) {
      let text = "";
      const len = Math.floor(r() * 5);
      for (let k = 0; k < len; k++) text += pick(PIECES);
      let bytes = new Uint8Array(Buffer.from(text, "utf8"));
      if (r() < 0.1) bytes = Uint8Array.from([...bytes, ...pick(BAD_UTF8)]);
      if (r() < 0.05) bytes = Uint8Array.from([...bytes].map((b) => b | 0x80));
      let typeDer = oid(pick(OIDS));
      if (r() < 0.04) typeDer = tlv(TAG.OID, Uint8Array.of(0x80, ...typeDer.subarray(2))); // non-minimal arc
      const tag = pick(STRING_TAGS);
      let value = r() < 0.03 ? tlv(0x2c, tlv(0x0c, bytes)) : tlv(tag, bytes);
      if (r() < 0.02) value = tlv(TAG.SEQUENCE, value);
      atvs.push(r() < 0.03 ? seq(typeDer, value, tlv(TAG.NULL)) : seq(typeDer, value));
    }
    rdns.push(tlv(TAG.SET, ...atvs));
  }
  let der = seq(...rdns);
  if (r() < 0.05) der = Uint8Array.from([...der, 0x00]); // trailing byte
  if (r() < 0.05 && der.length > 2) {
    const i = 1 + Math.floor(r() * (der.length - 1));
    der = Uint8Array.from(der);
    der[i] = Math.floor(r() * 256); // one corrupted byte anywhere
  }
  if (r() < 0.03 && der[1]! < 0x80) der = Uint8Array.from([0x30, 0x81, der[1]!, ...der.subarray(2)]); // non-minimal length
  return der;
}

function oracle(der: Uint8Array) {
  const n = new Name(toArrayBuffer(der));
  const json = n.toJSON();
  return {
    text: n.toString(),
    cns: json.flatMap((rdn) => Object.entries(rdn).flatMap(([t, v]) => (t === "CN" ? v : []))),
    multi: json.some((rdn) => Object.values(rdn).reduce((k, v) => k + v.length, 0) > 1),
    email: json.some((rdn) => "E" in rdn),
  };
}

describe("DER Name reading matches @peculiar/x509's Name", () => {
  it("on 4000 random and corrupted Names: same text, CNs, shape flags, and same refusals", () => {
    const r = prng(20261130);
    let fast = 0;
    for (let i = 0; i < 4000; i++) {
      const der = randomName(r);
      const want = outcome(() => oracle(der));
      const got = outcome(() => ({
        text: derToName(der),
        cns: commonNames(der),
        multi: hasMultiValuedRdn(der),
        email: hasSubjectEmail(der),
      }));
      expect(got, Buffer.from(der).toString("hex")).toEqual(want);
      if (nameReadsFast(der)) fast++;
    }
    expect(fast).toBeGreaterThan(1000); // the fast reader is really exercised
  });

  it("reads the usual subjects without the object model", () => {
    const utf8 = (s: string) => tlv(TAG.UTF8_STRING, new Uint8Array(Buffer.from(s, "utf8")));
    const printable = (s: string) => tlv(TAG.PRINTABLE_STRING, new Uint8Array(Buffer.from(s, "ascii")));
    const rdn = (type: string, v: Uint8Array) => tlv(TAG.SET, seq(oid(type), v));
    const der = seq(
      rdn("2.5.4.6", printable("US")),
      rdn("2.5.4.10", utf8("Example, Inc.")),
      rdn("2.5.4.3", utf8("é.example")),
    );
    expect(nameReadsFast(der)).toBe(true);
    expect(derToName(der)).toBe("C=US, O=Example\\, Inc., CN=é.example");
    expect(commonNames(der)).toEqual(["é.example"]);
    expect(nameReadsFast(seq())).toBe(true);
    expect(derToName(seq())).toBe("");
    // Shapes it leaves to @peculiar/x509: BMPString, invalid UTF-8, an empty RDN.
    expect(nameReadsFast(seq(rdn("2.5.4.3", tlv(0x1e, Uint8Array.of(0, 0x41)))))).toBe(false);
    expect(nameReadsFast(seq(rdn("2.5.4.3", tlv(TAG.UTF8_STRING, Uint8Array.of(0xff)))))).toBe(false);
    expect(nameReadsFast(seq(tlv(TAG.SET)))).toBe(false);
  });
});

describe("decodeOid", () => {
  it("gives the same dotted text as a BigInt decoder, small and huge arcs alike", () => {
    const big = (c: Uint8Array) => {
      const arcs: bigint[] = [];
      let v = 0n;
      for (const b of c) {
        v = (v << 7n) | BigInt(b & 0x7f);
        if (!(b & 0x80)) {
          arcs.push(v);
          v = 0n;
        }
      }
      const f = arcs.shift()!;
      return [...(f < 80n ? [f / 40n, f % 40n] : [2n, f - 80n]), ...arcs].join(".");
    };
    const r = prng(7);
    for (const o of OIDS) expect(decodeOid(readDer(oid(o)))).toBe(o);
    for (let i = 0; i < 3000; i++) {
      const c = Uint8Array.from({ length: 1 + Math.floor(r() * 24) }, () =>
        r() < 0.6 ? 0x80 | Math.floor(r() * 128) : Math.floor(r() * 128),
      );
      if (c[c.length - 1]! & 0x80 && r() < 0.7) c[c.length - 1]! &= 0x7f;
      const t = readDer(tlv(TAG.OID, c));
      const want = outcome(() => {
        if (![...c].some((b) => !(b & 0x80))) throw new Error("empty");
        return big(c);
      });
      expect(
        outcome(() => decodeOid(t)),
        Buffer.from(c).toString("hex"),
      ).toEqual(want);
    }
  });
});

describe("CRL distribution point and caIssuers URIs match @peculiar/asn1-x509", () => {
  const uri = (s: string) => ctx(6, false, new Uint8Array(Buffer.from(s, "latin1")));
  const dns = (s: string) => ctx(2, false, new Uint8Array(Buffer.from(s, "ascii")));
  const wantDp = (v: Uint8Array) =>
    AsnConvert.parse(toArrayBuffer(v), CRLDistributionPoints).flatMap((p) =>
      (p.distributionPoint?.fullName ?? []).flatMap((n) =>
        n.uniformResourceIdentifier ? [n.uniformResourceIdentifier] : [],
      ),
    );
  const wantAia = (v: Uint8Array) =>
    AsnConvert.parse(toArrayBuffer(v), AuthorityInfoAccessSyntax)
      .filter((a) => a.accessMethod === OID.caIssuers)
      .flatMap((a) =>
        a.accessLocation.uniformResourceIdentifier ? [a.accessLocation.uniformResourceIdentifier] : [],
      );

  it("on what tca writes and on other and corrupted shapes", () => {
    const dpCases: Uint8Array[] = [
      crlDistributionPoint("https://ca.example/crl").value,
      seq(
        seq(ctx(0, true, ctx(0, true, uri("http://a/1"), uri("http://b/2")))),
        seq(ctx(0, true, ctx(0, true, uri("ldap://c")))),
      ),
      seq(seq(ctx(0, true, ctx(0, true, dns("crl.example"), uri("http://a/"))))),
      seq(seq(ctx(0, true, ctx(0, true, uri(""))))),
      seq(seq(ctx(0, true, ctx(0, true, uri("http://é/"))))),
      seq(seq(ctx(0, true, ctx(0, true, uri("http://a/"))), ctx(1, false, Uint8Array.of(0x06, 0x40)))),
      seq(seq(ctx(2, true, uri("http://issuer/")))),
      seq(),
      seq(seq()),
    ];
    const aiaCases: Uint8Array[] = [
      authorityInfoAccess("https://ca.example/ca.crt").value,
      seq(
        seq(oid("1.3.6.1.5.5.7.48.1"), uri("http://ocsp/")),
        seq(oid(OID.caIssuers), uri("http://a/ca.crt")),
      ),
      seq(seq(oid(OID.caIssuers), dns("ca.example"))),
      seq(seq(oid(OID.caIssuers), uri(""))),
      seq(seq(oid(OID.caIssuers), uri("http://ü/"))),
      seq(
        seq(
          tlv(TAG.OID, Uint8Array.of(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x80, 0x02)),
          uri("http://x/"),
        ),
      ),
      seq(),
    ];
    const r = prng(99);
    const mutate = (v: Uint8Array) => {
      const m = Uint8Array.from(v);
      m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      return m;
    };
    for (const [cases, got, want] of [
      [dpCases, crlDpUris, wantDp],
      [aiaCases, caIssuerUris, wantAia],
    ] as const) {
      const all = [...cases];
      for (const c of cases) for (let i = 0; i < 300; i++) all.push(mutate(c));
      for (const v of all)
        expect(
          outcome(() => got(v)),
          Buffer.from(v).toString("hex"),
        ).toEqual(outcome(() => want(v)));
    }
  });
});

describe("SPKI loading", () => {
  it("returns one KeyObject for the same bytes, wherever they sit, and keeps refusing bad keys", () => {
    const spki = new Uint8Array(
      generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ format: "der", type: "spki" }),
    );
    const k = publicKeyFromSpki(spki);
    const copy = new Uint8Array(spki.length + 3);
    copy.set(spki, 3);
    expect(publicKeyFromSpki(copy.subarray(3))).toBe(k);
    expect(keyTypeOf(loadSpki(spki))).toEqual(["ec-p384", 384]);
    expect(keyTypeOf(k)).toEqual(["ec-p384", 384]);
    const bad = Uint8Array.from(spki);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x01; // the point leaves the curve
    for (let i = 0; i < 2; i++) expect(() => loadSpki(bad)).toThrow(/KEY_INVALID|cannot be loaded/);
    expect(() => publicKeyFromSpki(spki.subarray(0, spki.length - 1))).toThrow();
  });
});

describe("remembered encodings and CA certificates", () => {
  it("oid() hands out a fresh copy each time", () => {
    const a = oid(OID.subjectAltName);
    a[2] = 0xff;
    expect(Buffer.from(oid(OID.subjectAltName)).toString("hex")).toBe("0603551d11");
  });

  it("readCaCert gives equal answers for equal bytes that callers cannot alter, and tells certificates apart", () => {
    const cert = (subject: string) => {
      const ca = testCaKey();
      const now = new Date("2026-01-01T00:00:00Z");
      const tbs = buildRootTbs({
        subject,
        caPublicKey: ca.raw,
        serial: randomSerial(),
        notBefore: now,
        notAfter: new Date(now.getTime() + 86_400_000),
      });
      return assembleCertificate(tbs, ca.sign(tbs));
    };
    const a = cert("CN=Root A");
    const b = cert("CN=Root B");
    const first = readCaCert(a);
    const want = { ...first, subjectDer: first.subjectDer.slice(), ski: first.ski.slice() };
    const again = readCaCert(Uint8Array.from(a));
    expect(again).toEqual(want);
    again.subjectDer[5] = 0;
    again.ski[0] = 0;
    again.notAfter.setTime(0);
    expect(readCaCert(a)).toEqual(want);
    expect(derToName(readCaCert(b).subjectDer)).toBe("CN=Root B");
    expect(readCaCert(b).skiHex).not.toBe(want.skiHex);
    expect(() => readCaCert(a.subarray(0, a.length - 1))).toThrow(); // failures are never remembered
  });
});

describe("SPKI import through JWK for the plain shapes", () => {
  const der = (spki: Uint8Array) => createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  const view = (k: KeyObject) => ({
    type: k.asymmetricKeyType,
    details: k.asymmetricKeyDetails,
    spki: Buffer.from(k.export({ format: "der", type: "spki" })).toString("hex"),
  });
  const same = (spki: Uint8Array) => {
    const want = outcome(() => view(der(spki)));
    const gotErr = outcome(() => view(publicKeyFromSpki(spki)));
    expect(gotErr, Buffer.from(spki).toString("hex")).toEqual(want);
    if (!want.ok) {
      let a = "";
      let b = "";
      try {
        der(spki);
      } catch (e) {
        a = (e as Error).message;
      }
      try {
        loadSpki(spki);
      } catch (e) {
        b = (e as Error).message;
      }
      expect(b).toContain(a); // the refusal is worded as the DER import words it
    }
  };
  const spkiOf = (k: KeyObject) => new Uint8Array(k.export({ format: "der", type: "spki" }));
  const rsa = (n: Uint8Array, e: Uint8Array) =>
    seq(
      seq(oid(OID.rsaEncryption), tlv(TAG.NULL)),
      tlv(TAG.BIT_STRING, Uint8Array.of(0), seq(tlv(TAG.INTEGER, n), tlv(TAG.INTEGER, e))),
    );

  it("loads the same key (type, details, SPKI, signatures) as the DER import, and refuses what it refuses", () => {
    const data = Buffer.from("to be signed");
    for (const [kind, opts, hash] of [
      ["rsa", { modulusLength: 2048 }, "sha256"],
      ["rsa", { modulusLength: 3072, publicExponent: 3 }, "sha256"],
      ["ec", { namedCurve: "P-256" }, "sha256"],
      ["ec", { namedCurve: "P-384" }, "sha384"],
      ["ed25519", {}, null],
      ["ed448", {}, null],
    ] as const) {
      const { publicKey, privateKey } = generateKeyPairSync(kind as "rsa", opts as { modulusLength: number });
      const spki = spkiOf(publicKey);
      same(spki);
      const sig = sign(hash, data, privateKey);
      expect(verify(hash, data, publicKeyFromSpki(spki), sig)).toBe(true);
    }
    const r = prng(5);
    const { publicKey: ec } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ecSpki = spkiOf(ec);
    const rsaJwk = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "jwk" });
    const n = new Uint8Array(Buffer.from(rsaJwk.n!, "base64url"));
    const cases: Uint8Array[] = [
      rsa(Uint8Array.of(0, ...n), Uint8Array.of(1)), // e = 1
      rsa(Uint8Array.of(0, ...n), Uint8Array.of(0)), // e = 0
      rsa(Uint8Array.of(3), Uint8Array.of(1, 0, 1)), // n = 3
      rsa(Uint8Array.of(0, 0, ...n), Uint8Array.of(1, 0, 1)), // non-minimal n
      rsa(Uint8Array.of(...n), Uint8Array.of(1, 0, 1)), // negative n
      rsa(Uint8Array.of(0, ...n), Uint8Array.of(0xff)), // negative e
      Uint8Array.of(...ecSpki.subarray(0, 27), ...new Uint8Array(64)), // the point (0, 0)
      Uint8Array.of(...ecSpki.subarray(0, 27), ...new Uint8Array(64).fill(0xff)), // coordinates past p
      Uint8Array.of(
        0x30,
        0x2a,
        0x30,
        0x05,
        0x06,
        0x03,
        0x2b,
        0x65,
        0x70,
        0x03,
        0x21,
        0x00,
        ...new Uint8Array(32),
      ),
      Uint8Array.of(
        0x30,
        0x2a,
        0x30,
        0x05,
        0x06,
        0x03,
        0x2b,
        0x65,
        0x70,
        0x03,
        0x21,
        0x01,
        ...new Uint8Array(32),
      ),
    ];
    for (let i = 0; i < 200; i++) {
      const m = Uint8Array.from(ecSpki);
      const at = Math.floor(r() * m.length);
      m[at] = m[at]! ^ (1 << Math.floor(r() * 8));
      cases.push(m);
    }
    for (let i = 0; i < 100; i++) {
      const m = rsa(Uint8Array.of(0, ...n), Uint8Array.of(1, 0, 1));
      const at = i % 2 ? Math.floor(r() * 40) : Math.floor(r() * m.length);
      m[at] = m[at]! ^ (1 << Math.floor(r() * 8));
      cases.push(m);
    }
    for (const c of cases) same(c);
  });
});
