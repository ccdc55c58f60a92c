// Edge cases of the custodians' lint under an external CA certificate's name constraints
// (src/x509/ca-chain.ts issuerConstraintsProblem, RFC 5280 §4.2.1.10, docs/intermediate.md): a
// single-label CN is not a host name; a wildcard dNSName may not cover a name in an excluded
// subtree; directoryName subtrees compare canonicalised names (§7.1: case and string type do not
// matter); a URI host with a trailing dot does not escape an excluded subtree. Certificates made
// by openssl.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issuerConstraintsProblem } from "../../src/x509/ca-chain.ts";
import { splitCertificate } from "../../src/x509/assemble.ts";
import { fromPem } from "../../src/x509/der.ts";
import { readTbs, type ParsedTbs } from "../../src/x509/tbs-read.ts";
import { openssl } from "../helpers/openssl.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-nc-lint-"));
const p = (f: string) => join(dir, f);
const der = (f: string) => fromPem(readFileSync(p(f), "utf8"), ["CERTIFICATE"], "CERT_MALFORMED");
let ca: Uint8Array;
let n = 0;

/** A certificate under the constrained CA with this subject (openssl -subj) and SAN (or none). */
function leaf(subj: string, san?: string, utf8 = true): ParsedTbs {
  n++;
  const lines = ["basicConstraints=critical,CA:FALSE", ...(san ? [`subjectAltName=${san}`] : [])];
  writeFileSync(p(`l${n}.ext`), lines.join("\n") + "\n");
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(`l${n}.key`), "-out", p(`l${n}.csr`), "-subj", subj, ...(utf8 ? ["-utf8"] : [])]); // prettier-ignore
  openssl(["x509", "-req", "-in", p(`l${n}.csr`), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-set_serial", String(n), "-days", "1", "-extfile", p(`l${n}.ext`), "-out", p(`l${n}.pem`)]); // prettier-ignore
  return readTbs(splitCertificate(der(`l${n}.pem`)).tbs);
}

beforeAll(() => {
  writeFileSync(
    p("ca.cnf"),
    [
      "[req]",
      "distinguished_name = dn",
      "[dn]",
      "[v3]",
      "basicConstraints = critical, CA:TRUE",
      "keyUsage = critical, keyCertSign, cRLSign",
      "nameConstraints = critical, permitted;DNS:corp.test, permitted;URI:.corp.test, excluded;DNS:secret.corp.test, excluded;URI:secret.corp.test, excluded;dirName:secret_dn",
      "[secret_dn]",
      "O = Secret Org",
      "",
    ].join("\n"),
  );
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-subj", "/CN=constrained CA", "-days", "2", "-config", p("ca.cnf"), "-extensions", "v3"]); // prettier-ignore
  ca = der("ca.pem");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("name constraint lint edge cases", () => {
  it("a single-label CN is a person's name, not a DNS name; a CN of two labels outside the subtree is refused", () => {
    expect(issuerConstraintsProblem(leaf("/CN=alice"), [ca])).toBeUndefined();
    expect(issuerConstraintsProblem(leaf("/CN=evil.example"), [ca])).toMatch(
      /subject CN evil\.example is outside/,
    );
    expect(issuerConstraintsProblem(leaf("/CN=a.corp.test", "DNS:a.corp.test"), [ca])).toBeUndefined();
  });

  it("a wildcard dNSName that would cover a name in an excluded subtree is refused", () => {
    expect(issuerConstraintsProblem(leaf("/CN=w", "DNS:*.corp.test"), [ca])).toMatch(
      /DNS name \*\.corp\.test is inside .* excluded name constraint DNS:secret\.corp\.test/,
    );
    expect(issuerConstraintsProblem(leaf("/CN=w", "DNS:*.secret.corp.test"), [ca])).toMatch(/excluded/);
    expect(issuerConstraintsProblem(leaf("/CN=w", "DNS:*.public.corp.test"), [ca])).toBeUndefined();
  });

  it("directoryName subtrees compare canonicalised names: another case or string type is the same name", () => {
    expect(issuerConstraintsProblem(leaf("/O=SECRET  ORG/CN=x"), [ca])).toMatch(
      /inside .* excluded name constraint dirName:O=Secret Org/,
    );
    expect(issuerConstraintsProblem(leaf("/O=secret org/CN=y", undefined, false), [ca])).toMatch(/excluded/);
    expect(issuerConstraintsProblem(leaf("/O=Public Org/CN=z"), [ca])).toBeUndefined();
  });

  it("a URI host with a trailing dot does not escape an excluded subtree", () => {
    expect(issuerConstraintsProblem(leaf("/CN=u", "URI:https://www.corp.test/"), [ca])).toBeUndefined();
    expect(issuerConstraintsProblem(leaf("/CN=u", "URI:https://secret.corp.test./x"), [ca])).toMatch(
      /URI https:\/\/secret\.corp\.test\.\/x is inside .* excluded name constraint URI:secret\.corp\.test/,
    );
  });
});
