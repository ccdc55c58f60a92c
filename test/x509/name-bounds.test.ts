// RFC 5280 Appendix A.1 upper bounds on subject attributes: refused by the request
// checks (coordinator intake and each custodian's re-derivation both call checkRequest) and by the
// pre-sign lint every custodian runs, with a message naming the attribute, its length and the bound.
import { describe, expect, it } from "vitest";
import { lintFindings } from "../../src/x509/lint.ts";
import { nameBoundProblem, nameToDer } from "../../src/x509/names.ts";
import { checkRequest } from "../../src/x509/policy.ts";
import { X509Error } from "../../src/x509/errors.ts";
import { ed25519Spki } from "../../src/x509/tbs.ts";
import { keyIdentifier } from "../../src/x509/ski.ts";
import { toHex } from "../../src/x509/der.ts";
import * as X from "../../src/x509/extensions.ts";
import type { Profile } from "../../src/config/schema.ts";
import { loadCaConfig } from "../../src/config/load.ts";
import { rawTbs, testCaKey } from "./helpers.ts";

const a = (n: number) => "a".repeat(n);

describe("RFC 5280 upper bounds on subject attributes", () => {
  it.each([
    [`CN=${a(65)}`, /commonName \(CN\) has 65 characters; at most 64 .*ub-common-name = 64/],
    [`CN=${a(10_000)}`, /commonName \(CN\) has 10000 characters; at most 64/],
    [`O=${a(65)}`, /organizationName \(O\) has 65 characters; at most 64 .*ub-organization-name/],
    [`OU=${a(65)}`, /organizationalUnitName \(OU\) has 65 .*ub-organizational-unit-name/],
    [`L=${a(129)}`, /localityName \(L\) has 129 characters; at most 128 .*ub-locality-name/],
    [`ST=${a(129)}`, /stateOrProvinceName \(ST\) has 129 .*ub-state-name/],
    ["C=USA", /countryName \(C\) has 3 characters; it must have exactly 2/],
    [`CN=${"é".repeat(65)}`, /commonName \(CN\) has 65 characters/], // characters, not octets
  ])("%s is refused", (subject, message) => {
    expect(nameBoundProblem(nameToDer(subject))).toMatch(message);
  });

  it("values at the bound pass", () => {
    for (const s of [
      `CN=${a(64)}`,
      `O=${a(64)}, OU=${a(64)}`,
      `L=${a(128)}, ST=${a(128)}, C=DE`,
      `CN=${"é".repeat(64)}`,
    ])
      expect(nameBoundProblem(nameToDer(s)), s).toBeUndefined();
  });

  it("the request checks (coordinator intake and custodian re-derivation) refuse a 65-character CN", () => {
    const profile = loadCaConfig(new URL("../../ca-config/ca.yaml", import.meta.url).pathname).config.profiles
      .server as Profile;
    const facts = (subject: string) => ({
      keyType: "ed25519" as const,
      keyBits: 256,
      sans: [{ type: "dns" as const, value: "svc.example" }],
      subjectDer: nameToDer(subject),
    });
    expect(() => checkRequest(facts(`CN=${a(64)}`), profile)).not.toThrow();
    let err: unknown;
    try {
      checkRequest(facts(`CN=${a(65)}`), profile);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(X509Error);
    expect((err as X509Error).code).toBe("NAME_INVALID");
    expect((err as X509Error).message).toMatch(/commonName \(CN\) has 65 characters; at most 64/);
  });

  it("every custodian's pre-sign lint refuses a TBS with a 65-character CN (e_subject_bounds)", () => {
    const caSubject = nameToDer("CN=Lint CA");
    const caSki = keyIdentifier(ed25519Spki(testCaKey().raw));
    const spki = ed25519Spki(testCaKey().raw);
    const tbs = (subject: string) =>
      rawTbs({
        issuer: caSubject,
        subject: nameToDer(subject),
        spki,
        extensions: [
          X.basicConstraints(false),
          X.keyUsage(["digitalSignature"]),
          X.subjectAltName([{ type: "dns", value: "svc.example" }], false),
          X.subjectKeyIdentifier(keyIdentifier(spki)),
          X.authorityKeyIdentifier(caSki),
        ],
      });
    const opts = { caSubjectDer: caSubject, caSkiHex: toHex(caSki) };
    expect(lintFindings(tbs(`CN=${a(64)}`), opts)).toEqual([]);
    const f = lintFindings(tbs(`CN=${a(65)}`), opts);
    expect(f.map((x) => x.rule)).toEqual(["e_subject_bounds"]);
    expect(f[0]!.message).toMatch(/commonName \(CN\) has 65 characters; at most 64/);
  });
});
