import { describe, expect, it } from "vitest";
import { LINT_RULES, lintFindings, lintTbs, type LintOptions } from "../../src/x509/lint.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { nameToDer } from "../../src/x509/names.ts";
import { ed25519Spki } from "../../src/x509/tbs.ts";
import { keyIdentifier } from "../../src/x509/ski.ts";
import { toHex } from "../../src/x509/der.ts";
import { encodeTime } from "../../src/x509/time.ts";
import * as X from "../../src/x509/extensions.ts";
import { der, rawTbs, testCaKey, type RawTbs } from "./helpers.ts";

const caSubject = nameToDer("CN=Lint CA");
const caSki = keyIdentifier(ed25519Spki(testCaKey().raw));
const leafSpki = ed25519Spki(testCaKey().raw);
const opts = { caSubjectDer: caSubject, caSkiHex: toHex(caSki) };

const good = (): RawTbs => ({
  issuer: caSubject,
  subject: nameToDer("CN=svc.example"),
  spki: leafSpki,
  extensions: [
    X.basicConstraints(false),
    X.keyUsage(["digitalSignature"]),
    X.extKeyUsage(["serverAuth"]),
    X.subjectAltName([{ type: "dns", value: "svc.example" }], false),
    X.subjectKeyIdentifier(keyIdentifier(leafSpki)),
    X.authorityKeyIdentifier(caSki),
  ],
});

function ruleOf(f: RawTbs | Uint8Array, o: LintOptions = opts): string | undefined {
  try {
    lintTbs(f instanceof Uint8Array ? f : rawTbs(f), o);
  } catch (e) {
    expect(e).toBeInstanceOf(X509Error);
    expect((e as X509Error).code).toBe("LINT_FAILED");
    return (e as X509Error).field;
  }
  return undefined;
}

/** A delegated OCSP responder's TBS (RFC 6960 §4.2.2.2): ocspSigning, nocheck, 7 days exactly. */
const ocspResponder = (g: RawTbs): RawTbs => ({
  ...g,
  notAfter: encodeTime(new Date("2026-01-08T00:00:00Z")),
  extensions: [
    ...g.extensions.map((e) => (e.oid === "2.5.29.37" ? X.extKeyUsage(["ocspSigning"]) : e)),
    X.ocspNoCheck(),
  ],
});

const without = (oid: string) => good().extensions.filter((e) => e.oid !== oid);
const replace = (oid: string, e: X.Ext) => good().extensions.map((x) => (x.oid === oid ? e : x));

const CASES: Array<[string, (g: RawTbs) => RawTbs | Uint8Array, string]> = [
  ["v1 certificate", (g) => ({ ...g, version: null }), "e_version_not_v3"],
  ["v2 certificate", (g) => ({ ...g, version: der.ctx(0, true, der.smallInteger(1)) }), "e_version_not_v3"],
  [
    "negative serial",
    (g) => ({ ...g, serial: der.integerContent(Uint8Array.of(0x80, 1, 2, 3, 4, 5, 6, 7, 8)) }),
    "e_serial_not_positive",
  ],
  ["zero serial", (g) => ({ ...g, serial: der.integerContent(Uint8Array.of(0)) }), "e_serial_not_positive"],
  [
    "non-minimal serial",
    (g) => ({ ...g, serial: der.integerContent(Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8)) }),
    "e_serial_not_minimal",
  ],
  [
    "21-octet serial",
    (g) => ({ ...g, serial: der.integerContent(new Uint8Array(21).fill(1)) }),
    "e_serial_too_long",
  ],
  [
    "Ed25519 with NULL params",
    (g) => ({ ...g, sigAlg: der.seq(der.oid("1.3.101.112"), der.tlv(0x05)) }),
    "e_signature_alg_not_ed25519",
  ],
  [
    "ECDSA signature alg",
    (g) => ({ ...g, sigAlg: der.seq(der.oid("1.2.840.10045.4.3.2")) }),
    "e_signature_alg_not_ed25519",
  ],
  [
    "issuer differs from CA subject",
    (g) => ({ ...g, issuer: nameToDer("CN=Other CA") }),
    "e_issuer_mismatch",
  ],
  [
    "notBefore == notAfter",
    (g) => ({ ...g, notAfter: encodeTime(new Date("2026-01-01T00:00:00Z")) }),
    "e_validity_inverted",
  ],
  [
    "GeneralizedTime before 2050",
    (g) => ({ ...g, notAfter: der.tlv(0x18, new Uint8Array(Buffer.from("20270101000000Z"))) }),
    "e_time_encoding",
  ],
  [
    "UTCTime 50 reads as 1950",
    (g) => ({ ...g, notAfter: der.tlv(0x17, new Uint8Array(Buffer.from("500101000000Z"))) }),
    "e_validity_inverted",
  ],
  [
    "65-character CN (ub-common-name 64)",
    (g) => ({ ...g, subject: nameToDer(`CN=${"a".repeat(65)}`) }),
    "e_subject_bounds",
  ],
  [
    "unique id present",
    (g) => ({ ...g, uniqueIds: der.tlv(0x81, Uint8Array.of(0, 1)) }),
    "e_unique_id_present",
  ],
  [
    "Ed25519 SPKI with NULL params",
    (g) => ({
      ...g,
      spki: der.seq(der.seq(der.oid("1.3.101.112"), der.tlv(0x05)), der.bitString(new Uint8Array(32))),
    }),
    "e_spki_invalid",
  ],
  [
    "duplicate extension",
    (g) => ({ ...g, extensions: [...g.extensions, X.extKeyUsage(["clientAuth"])] }),
    "e_duplicate_extension",
  ],
  ["SKI missing", (g) => ({ ...g, extensions: without("2.5.29.14") }), "e_ski_missing"],
  ["AKI missing", (g) => ({ ...g, extensions: without("2.5.29.35") }), "e_aki_missing"],
  [
    "AKI without keyIdentifier",
    (g) => ({
      ...g,
      extensions: replace("2.5.29.35", { oid: "2.5.29.35", critical: false, value: der.seq() }),
    }),
    "e_aki_missing",
  ],
  [
    "AKI not the CA's",
    (g) => ({ ...g, extensions: replace("2.5.29.35", X.authorityKeyIdentifier(new Uint8Array(20))) }),
    "e_aki_mismatch",
  ],
  [
    "empty SKI",
    (g) => ({ ...g, extensions: replace("2.5.29.14", X.subjectKeyIdentifier(new Uint8Array(0))) }),
    "e_ski_malformed",
  ],
  [
    "keyCertSign without cA",
    (g) => ({ ...g, extensions: replace("2.5.29.15", X.keyUsage(["keyCertSign"])) }),
    "e_ca_key_cert_sign_mismatch",
  ],
  [
    "cA without keyCertSign",
    (g) => ({ ...g, extensions: replace("2.5.29.19", X.basicConstraints(true)) }),
    "e_ca_key_cert_sign_mismatch",
  ],
  [
    "cA basicConstraints not critical",
    (g) => ({
      ...g,
      extensions: [
        { ...X.basicConstraints(true), critical: false },
        X.keyUsage(["keyCertSign"]),
        ...g.extensions.slice(2),
      ],
    }),
    "e_basic_constraints_not_critical",
  ],
  [
    "pathLen without cA",
    (g) => ({
      ...g,
      extensions: replace("2.5.29.19", {
        oid: "2.5.29.19",
        critical: true,
        value: der.seq(der.smallInteger(0)),
      }),
    }),
    "e_path_len_without_ca",
  ],
  [
    "nameConstraints on a leaf",
    (g) => ({
      ...g,
      extensions: [...g.extensions, X.nameConstraints({ permittedDns: ["example"], excludedDns: [] })!],
    }),
    "e_name_constraints_invalid",
  ],
  [
    "nameConstraints not critical",
    (g) => ({
      ...g,
      extensions: [
        X.basicConstraints(true),
        X.keyUsage(["keyCertSign"]),
        ...g.extensions.slice(2),
        { ...X.nameConstraints({ permittedDns: ["example"], excludedDns: [] })!, critical: false },
      ],
    }),
    "e_name_constraints_invalid",
  ],
  [
    "empty subject without SAN",
    (g) => ({ ...g, subject: der.seq(), extensions: without("2.5.29.17") }),
    "e_san_missing_empty_subject",
  ],
  ["empty subject, SAN not critical", (g) => ({ ...g, subject: der.seq() }), "e_san_missing_empty_subject"],
  [
    "empty SAN",
    (g) => ({ ...g, extensions: replace("2.5.29.17", X.subjectAltName([], false)) }),
    "e_san_empty",
  ],
  [
    "malformed basicConstraints value",
    (g) => ({
      ...g,
      extensions: replace("2.5.29.19", {
        oid: "2.5.29.19",
        critical: true,
        value: Uint8Array.of(0x30, 0x05),
      }),
    }),
    "e_ca_key_cert_sign_mismatch",
  ],
  [
    "ocsp-nocheck without ocspSigning",
    (g) => ({
      ...g,
      notAfter: encodeTime(new Date("2026-01-05T00:00:00Z")),
      extensions: [...g.extensions, X.ocspNoCheck()],
    }),
    "e_ocsp_nocheck_misuse",
  ],
  [
    "ocsp-nocheck valid longer than 7 days",
    (g) => ({ ...ocspResponder(g), notAfter: encodeTime(new Date("2026-01-08T00:00:01Z")) }),
    "e_ocsp_nocheck_misuse",
  ],
  [
    "ocsp-nocheck critical",
    (g) => {
      const r = ocspResponder(g);
      return {
        ...r,
        extensions: r.extensions.map((e) =>
          e.oid === "1.3.6.1.5.5.7.48.1.5" ? { ...e, critical: true } : e,
        ),
      };
    },
    "e_ocsp_nocheck_misuse",
  ],
  [
    "ocsp-nocheck not NULL",
    (g) => {
      const r = ocspResponder(g);
      return {
        ...r,
        extensions: r.extensions.map((e) =>
          e.oid === "1.3.6.1.5.5.7.48.1.5" ? { ...e, value: Uint8Array.of(0x04, 0x00) } : e,
        ),
      };
    },
    "e_ocsp_nocheck_misuse",
  ],
  ["not DER at all", () => Uint8Array.of(0x30, 0x80, 0, 0), "e_tbs_parse"],
  ["trailing bytes", (g) => Uint8Array.of(...rawTbs(g), 0), "e_tbs_parse"],
];

describe("lintTbs", () => {
  it("passes a well-formed leaf", () => {
    expect(lintFindings(rawTbs(good()), opts)).toEqual([]);
    expect(ruleOf(good())).toBeUndefined();
  });

  it.each(CASES)("refuses %s", (_, mutate, rule) => {
    expect(ruleOf(mutate(good()))).toBe(rule);
  });

  it("has a negative test for every rule", () => {
    expect([...new Set(CASES.map((c) => c[2]))].sort()).toEqual([...LINT_RULES].sort());
  });

  it("passes a delegated OCSP responder's certificate of at most 7 days", () => {
    expect(ruleOf(ocspResponder(good()))).toBeUndefined();
  });

  it("passes an empty subject with a critical SAN", () => {
    expect(
      ruleOf({
        ...good(),
        subject: der.seq(),
        extensions: replace("2.5.29.17", X.subjectAltName([{ type: "dns", value: "a.example" }], true)),
      }),
    ).toBeUndefined();
  });

  it("skips the AKI value check when no caSkiHex is given", () => {
    const g = { ...good(), extensions: replace("2.5.29.35", X.authorityKeyIdentifier(new Uint8Array(20))) };
    expect(ruleOf(g, { caSubjectDer: caSubject })).toBeUndefined();
  });

  it("reports every failing rule in the message", () => {
    const f = lintFindings(rawTbs({ ...good(), version: null, issuer: nameToDer("CN=x") }), opts).map(
      (x) => x.rule,
    );
    expect(f).toEqual(["e_version_not_v3", "e_issuer_mismatch"]);
  });
});
