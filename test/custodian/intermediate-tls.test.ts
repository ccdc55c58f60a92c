// A custodian keeps HTTPS to its coordinator across an intermediate-mode install (docs/intermediate.md,
// src/custodian/connect.ts): the root pinned at the key ceremony stays in HOME/ca.pem, the adopted
// CA certificate goes to HOME/ca-cert.pem and the chain above it to HOME/ca-chain.pem; TLS trusts
// the ceremony root (for the coordinator's certificate issued before the install) and the adopted
// chain's root (for the one renewed under the adopted CA certificate). The material mimics tca's:
// the same key and subject certified twice, once self-signed with another key identifier (tca's
// root) and once by an external root (openssl's SHA-1 key identifier).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectCustodian } from "../../src/custodian/connect.ts";
import { HttpError } from "../../src/protocol/http-client.ts";
import { openssl } from "../helpers/openssl.ts";
import { closeTlsServers, startHttps } from "../protocol/tls-servers.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-intermediate-tls-"));
const p = (f: string) => join(dir, f);
const read = (f: string) => readFileSync(p(f), "utf8");

function ext(name: string, lines: string[]): string {
  writeFileSync(p(`${name}.ext`), lines.join("\n") + "\n");
  return p(`${name}.ext`);
}

/** A server certificate for 127.0.0.1 issued by `ca` (its .pem and .key in dir). */
function leaf(name: string, ca: string): { certPem: string; keyPem: string } {
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`), "-subj", "/CN=coordinator"]); // prettier-ignore
  const e = ext(name, [
    "subjectAltName=IP:127.0.0.1",
    "extendedKeyUsage=serverAuth",
    "keyUsage=critical,digitalSignature",
    "authorityKeyIdentifier=keyid",
  ]);
  openssl(["x509", "-req", "-in", p(`${name}.csr`), "-CA", p(`${ca}.pem`), "-CAkey", p(`${ca}.key`), "-set_serial", String(Date.now()), "-days", "1", "-extfile", e, "-out", p(`${name}.pem`)]); // prettier-ignore
  return { certPem: read(`${name}.pem`), keyPem: read(`${name}.key`) };
}

beforeAll(() => {
  const caExt = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"];
  // The ceremony's root: self-signed, tca's subject, a key identifier that is not openssl's hash.
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("tca.key"), "-out", p("ceremony-root.pem"), "-subj", "/CN=tca CA", "-days", "2", "-addext", caExt[0]!, "-addext", caExt[1]!, "-addext", "subjectKeyIdentifier=0102030405060708090a0b0c0d0e0f1011121314", "-addext", "authorityKeyIdentifier=none"]); // prettier-ignore
  // The external root, and tca's key and subject certified under it (pathlen 0, SKI = hash).
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("root.key"), "-out", p("root.pem"), "-subj", "/CN=corporate root", "-days", "2", "-addext", caExt[0]!, "-addext", caExt[1]!]); // prettier-ignore
  openssl(["req", "-new", "-key", p("tca.key"), "-out", p("tca.csr"), "-subj", "/CN=tca CA"]);
  const e = ext("tca", [
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid",
  ]);
  openssl(["x509", "-req", "-in", p("tca.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"), "-set_serial", "7", "-days", "2", "-extfile", e, "-out", p("adopted.pem")]); // prettier-ignore
  // Both have tca.key: a leaf under either is signed the same way, only its AKI tells them apart.
  writeFileSync(p("ceremony-root.key"), read("tca.key"));
  writeFileSync(p("adopted.key"), read("tca.key"));
});
afterEach(closeTlsServers);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A custodian home laid out as after an adoption. */
function adoptedHome(): string {
  const home = mkdtempSync(join(dir, "home-"));
  writeFileSync(join(home, "ca.pem"), read("ceremony-root.pem"));
  writeFileSync(join(home, "ca-cert.pem"), read("adopted.pem"));
  writeFileSync(join(home, "ca-chain.pem"), read("root.pem"));
  return home;
}

const get = (url: string, home: string) =>
  connectCustodian({ urls: url, home: { caCertPath: join(home, "ca.pem") }, env: {} }).http.text(
    "GET",
    "/api/v1/health",
  );

describe("a custodian's TLS trust after adopting a CA certificate", () => {
  it("reaches a coordinator whose certificate is under the ceremony root, and one renewed under the adopted CA certificate", async () => {
    const home = adoptedHome();
    const before = await startHttps(leaf("tls-before", "ceremony-root"));
    // The coordinator serves leaf → tca CA (→ root), as src/coordinator/self-cert.ts installs it.
    const renewed = leaf("tls-after", "adopted");
    const after = await startHttps({
      certPem: renewed.certPem + read("adopted.pem"),
      keyPem: renewed.keyPem,
    });
    await get(before.url, home);
    await get(after.url, home);
    expect(before.hits).toHaveLength(1);
    expect(after.hits).toHaveLength(1);
  });

  it("trusting the adopted CA certificate alone (it is not self-signed) does not work: why HOME/ca.pem keeps the ceremony root", async () => {
    const home = mkdtempSync(join(dir, "home-"));
    writeFileSync(join(home, "ca.pem"), read("adopted.pem"));
    const renewed = leaf("tls-after2", "adopted");
    const after = await startHttps({
      certPem: renewed.certPem + read("adopted.pem"),
      keyPem: renewed.keyPem,
    });
    const e = await get(after.url, home).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).info.failure).toBe("CERTIFICATE_REFUSED");
  });

  it("a server under another root is still refused", async () => {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("stranger.key"), "-out", p("stranger.pem"), "-subj", "/CN=stranger", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]); // prettier-ignore
    const s = await startHttps(leaf("tls-stranger", "stranger"));
    const e = await get(s.url, adoptedHome()).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect((e as HttpError).info.failure).toBe("CERTIFICATE_REFUSED");
    expect(s.hits).toEqual([]);
  });
});
