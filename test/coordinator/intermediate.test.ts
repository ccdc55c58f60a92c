// Intermediate mode in one process (docs/intermediate.md): a real coordinator over HTTP with
// in-process custodians. The custodians re-derive and approve the CA key's CSR with the real
// custodian code, t of them threshold-sign it, openssl checks it and signs it under an openssl-made
// root with pathlen 0 and nameConstraints .test; the install refuses another key, a non-CA, a broken
// chain and (with a pin) another root; after the install a leaf chains leaf → tca CA → root and
// passes `openssl verify -x509_strict`, and the custodians' lint refuses names outside .test and
// any CA certificate.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import pino from "pino";
import {
  approval,
  equipCustodians,
  exchangeUntil,
  makeCsr,
  runDkg,
  testConfig,
  type InProcessCa,
} from "../helpers/in-process-ca.ts";
import { openssl } from "../helpers/openssl.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";
import { SigningParticipant } from "../../src/custodian/signer.ts";
import { ExchangeLink } from "../../src/custodian/exchange.ts";
import { caCsrDecision, reviewCaCsr } from "../../src/custodian/ca-csr-check.ts";
import { CaCsrViewSchema, type CaCsrView } from "../../src/protocol/ca-csr.ts";
import { buildCaCsrInfo } from "../../src/x509/ca-csr.ts";
import { checkCaInstall, pemCertificates } from "../../src/x509/ca-chain.ts";
import { nameToDer } from "../../src/x509/names.ts";
import { fromPem } from "../../src/x509/der.ts";
import { deriveLeafTbs } from "../../src/custodian/leaf-check.ts";
import { hexToBytes } from "../../src/threshold/encoding.ts";
import type { LeafParams } from "../../src/protocol/approval.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import { CustodianHome } from "../../src/custodian/home.ts";
import { connectCustodian } from "../../src/custodian/connect.ts";
import { adoptCoordinatorCa, readAdoptedCa, readCaChain } from "../../src/custodian/ca-install.ts";
import { caCertificateOf } from "../../src/custodian/session.ts";
import type { CoordinatorClient } from "../../src/custodian/client.ts";
import { issuedUnder } from "../../src/coordinator/self-cert.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-intermediate-"));
const p = (f: string) => join(dir, f);
let ca: InProcessCa;
let coordinator: RunningCoordinator;
let url: string;
/** The coordinator's self-signed root from the key ceremony, before the install. */
let ceremonyRootPem: string;

const admin = { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const post = (path: string, body: unknown, headers: Record<string, string> = admin) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
/** Submits a request for `names`; with `issue`, has alice and bob approve it and waits until it is issued. */
async function submit(names: string[], issue: boolean): Promise<string> {
  const res = await post(
    "/api/v1/requests",
    { csr: await makeCsr(names), profile: "server" },
    { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}` },
  );
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  if (!issue) return id;
  const view = await ca.services.requests.view(id);
  for (const name of ["alice", "bob"])
    await post(`/api/v1/requests/${id}/approvals`, approval(ca, name, view), {});
  await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
  return id;
}
const firstPem = (pem: string) => pem.slice(0, pem.indexOf("-----END CERTIFICATE-----") + 25) + "\n";
/** Issued before the install: one certificate, one request still waiting for approvals. */
let before: { issued: string; pending: string; crlNumber: number };

const csrView = async (): Promise<CaCsrView> =>
  CaCsrViewSchema.parse(await (await fetch(`${url}/api/v1/ca/csr/current`, { headers: admin })).json());

/** An openssl root: P-256 key, self-signed, CA. */
function makeRoot(name: string): void {
  openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", p(`${name}.key`), "-out", p(`${name}.pem`), "-subj", `/CN=${name}`, "-days", "3650",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]); // prettier-ignore
}

/** Signs `csr` under root `root` with these extensions (openssl x509 -req). */
function issue(csr: string, root: string, out: string, ext: string[]): void {
  writeFileSync(p(`${out}.ext`), ext.join("\n") + "\n");
  openssl([
    "x509", "-req", "-in", p(csr), "-CA", p(`${root}.pem`), "-CAkey", p(`${root}.key`),
    "-set_serial", String(Date.now()), "-days", "365", "-extfile", p(`${out}.ext`), "-out", p(`${out}.pem`),
  ]); // prettier-ignore
}

const CA_EXT = [
  "basicConstraints=critical,CA:TRUE,pathlen:0",
  "keyUsage=critical,keyCertSign,cRLSign",
  "nameConstraints=critical,permitted;DNS:.test",
  "subjectKeyIdentifier=hash",
  "authorityKeyIdentifier=keyid",
];

beforeAll(async () => {
  const names = ["alice", "bob", "carol"];
  const { config, signers } = testConfig(names, 2, [], (doc) => {
    const r = (doc.requesters as Record<string, unknown>[])[0]!;
    r.allowedNames = ["*"];
    r.profiles = [...(r.profiles as string[]), "intermediate"];
  });
  coordinator = await startCoordinator({
    config,
    database: ":memory:",
    port: 0,
    logger: pino({ level: "silent" }),
  });
  url = coordinator.url;
  ca = {
    names,
    threshold: 2,
    config,
    services: coordinator.services,
    signers,
    custodians: new Map(),
    caPublicKey: null,
    caKeyId: null,
    close: () => coordinator.close(),
  };
  const started = await ca.services.ceremonies.start();
  const results = await runDkg(ca);
  equipCustodians(ca, results);
  await exchangeUntil(ca, async () => (await ca.services.ceremonies.view(started.id)).status === "complete");
  // From here each custodian re-derives the CSR itself (the real ca-csr builder); leaves and CRLs
  // are signed as proposed (their derivation is tested in test/custodian/).
  const groupKey = groupPublicKey(results[0]!.public);
  for (const [i, name] of names.entries()) {
    const r = results[i]!;
    const signer = ca.signers.get(name)!;
    const participant = new SigningParticipant(
      signer,
      { secret: r.secret, public: r.public, caKeyId: ca.caKeyId!, threshold: 2, roster: names },
      {
        leaf: (t) => hexToBytes(t.tbs),
        crl: (t) => hexToBytes(t.tbs),
        "ca-csr": () => buildCaCsrInfo({ subject: config.config.ca.subject, caPublicKey: groupKey }),
      },
      {},
      true,
    );
    const link = new ExchangeLink(
      (body) => ca.services.exchange.exchange(body, undefined, body.custodian),
      name,
      participant,
    );
    ca.custodians.set(name, { name, signer, participant, link });
  }
  makeRoot("root");
  makeRoot("other-root");
}, 60_000);

afterAll(async () => {
  await coordinator?.close();
});

describe("intermediate mode", () => {
  it("custodians approve and threshold-sign a CSR for the CA key that openssl accepts", async () => {
    const created = await post("/api/v1/ca/csr", {});
    expect(created.status).toBe(201);
    const v = CaCsrViewSchema.parse(await created.json());
    expect(v.status).toBe("pending");
    // Asking again answers the proposal in flight.
    expect((await post("/api/v1/ca/csr", {})).status).toBe(200);
    for (const name of ["alice", "bob"]) {
      const review = reviewCaCsr(ca.config, ca.caPublicKey!, ca.caKeyId!, await csrView());
      expect(review.problem).toBeUndefined();
      const { envelope } = caCsrDecision(ca.signers.get(name)!, ca.config, ca.caKeyId!, review, "approve");
      expect((await post(`/api/v1/ca/csr/${v.id}/approvals`, envelope, {})).status).toBe(202);
    }
    await exchangeUntil(ca, async () => (await csrView()).status === "signed", ["alice", "bob"]);
    const pem = await (await fetch(`${url}/api/v1/ca/csr/${v.id}?format=pem`, { headers: admin })).text();
    writeFileSync(p("tca.csr"), pem);
    openssl(["req", "-verify", "-noout", "-in", p("tca.csr")]); // exits non-zero unless the signature verifies
    expect(openssl(["req", "-noout", "-subject", "-in", p("tca.csr")])).toContain("tca Example Root CA");
  });

  it("a custodian that derives other bytes will not approve", async () => {
    const v = await csrView();
    const review = reviewCaCsr(ca.config, ca.caPublicKey!, ca.caKeyId!, {
      ...v,
      tbs: v.tbs.replace(/.$/, "0"),
    });
    expect(review.problem).toMatch(/differs/);
    expect(() => caCsrDecision(ca.signers.get("carol")!, ca.config, ca.caKeyId!, review, "approve")).toThrow(
      /will not approve/,
    );
  });

  it("install refuses another key, a non-CA, a broken chain, and another root than the pinned one", async () => {
    issue("tca.csr", "root", "tca", CA_EXT);
    // Another key with the same subject, certified as a CA by the same root.
    openssl(["req", "-new", "-newkey", "ed25519", "-nodes", "-keyout", p("k.key"), "-out", p("k.csr"), "-subj", "/C=US/O=Example Org/CN=tca Example Root CA"]); // prettier-ignore
    issue("k.csr", "root", "other-key", CA_EXT);
    issue("tca.csr", "root", "not-ca", ["basicConstraints=critical,CA:FALSE", "subjectKeyIdentifier=hash"]);
    const root = readFileSync(p("root.pem"), "utf8");
    const install = (cert: string, chain: string) =>
      post("/api/v1/ca/certificate", { certificate: readFileSync(p(cert), "utf8"), chain });
    const refused = async (cert: string, chain: string, why: RegExp) => {
      const res = await install(cert, chain);
      expect(res.status).toBe(422);
      expect(((await res.json()) as { detail: string }).detail).toMatch(why);
    };
    await refused("other-key.pem", root, /another key/);
    await refused("not-ca.pem", root, /not a CA certificate/);
    await refused("tca.pem", readFileSync(p("other-root.pem"), "utf8"), /not signed by chain certificate 1/);
    // Nothing changed: the self-signed root is still the CA certificate.
    expect(await (await fetch(`${url}/ca.pem`)).text()).not.toContain(
      readFileSync(p("tca.pem"), "utf8").trim(),
    );
    // The pin (checked the same way by the coordinator and each custodian).
    const sha = (f: string) => createHash("sha256").update(fromPem(readFileSync(p(f), "utf8"), ["CERTIFICATE"], "CERT_MALFORMED")).digest("hex"); // prettier-ignore
    const input = {
      certificate: readFileSync(p("tca.pem"), "utf8"),
      chain: root,
      caPublicKey: ca.caPublicKey!,
      caSubjectDer: nameToDer(ca.config.config.ca.subject),
      now: new Date(),
    };
    expect(() => checkCaInstall({ ...input, pinnedRootSha256: sha("other-root.pem") })).toThrow(
      /not at the root ca-config pins/,
    );
    expect(checkCaInstall({ ...input, pinnedRootSha256: sha("root.pem") }).root.sha256).toBe(sha("root.pem"));
    expect(() => checkCaInstall({ ...input, caSubjectDer: nameToDer("CN=Someone Else") })).toThrow(
      /not ca-config's CA subject/,
    );
  });

  it("before the install: a certificate is issued under the ceremony's root and a request waits for approvals", async () => {
    const issued = await submit(["before.test"], true);
    const pending = await submit(["waiting.test"], false);
    await exchangeUntil(ca, async () => (await ca.services.store.latestCrl()) !== undefined);
    before = { issued, pending, crlNumber: (await ca.services.store.latestCrl())!.number };
  });

  it("installs the certificate; a leaf for svc.test chains to the root and passes openssl verify -x509_strict", async () => {
    ceremonyRootPem = await (await fetch(`${url}/ca.pem`)).text();
    const res = await post("/api/v1/ca/certificate", {
      certificate: readFileSync(p("tca.pem"), "utf8"),
      chain: readFileSync(p("root.pem"), "utf8"),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { root: string }).root).toBe("CN=root");
    const chainPem = await (await fetch(`${url}/ca-chain.pem`)).text();
    expect(pemCertificates(chainPem, "chain")).toHaveLength(2);

    const submitted = await post(
      "/api/v1/requests",
      { csr: await makeCsr(["svc.test"]), profile: "server" },
      { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}` },
    );
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    const view = await ca.services.requests.view(id);
    for (const name of ["alice", "bob"])
      await post(`/api/v1/requests/${id}/approvals`, approval(ca, name, view), {});
    await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
    const pem = await (await fetch(`${url}/api/v1/requests/${id}/certificate`, { headers: admin })).text();
    expect(pemCertificates(pem, "chain")).toHaveLength(3); // leaf → tca CA → root
    writeFileSync(p("leaf.pem"), pem.slice(0, pem.indexOf("-----END CERTIFICATE-----") + 25) + "\n");
    expect(
      openssl([
        "verify",
        "-x509_strict",
        "-CAfile",
        p("root.pem"),
        "-untrusted",
        p("tca.pem"),
        p("leaf.pem"),
      ]),
    ).toMatch(/OK/);
  });

  it("after the install: the open request failed with the reason, the earlier certificate still downloads with the ceremony's root", async () => {
    const v = await ca.services.requests.view(before.pending);
    expect(v.status).toBe("failed");
    expect(v.failure).toMatch(/CA certificate changed .* submit it again/);
    const pem = await (
      await fetch(`${url}/api/v1/requests/${before.issued}/certificate`, { headers: admin })
    ).text();
    const certs = pemCertificates(pem, "chain");
    expect(certs).toHaveLength(2); // leaf → the ceremony's self-signed root
    writeFileSync(p("before-leaf.pem"), firstPem(pem));
    writeFileSync(p("ceremony-root.pem"), ceremonyRootPem);
    expect(pem).toContain(ceremonyRootPem.trim());
    expect(openssl(["verify", "-x509_strict", "-CAfile", p("ceremony-root.pem"), p("before-leaf.pem")])).toMatch(/OK/); // prettier-ignore
    // The inventory's download too.
    const serial = (await ca.services.requests.view(before.issued)).serial!;
    const inv = await fetch(`${url}/api/v1/certificates/${serial}?format=pem`, { headers: admin });
    expect(inv.status).toBe(200);
    expect(await inv.text()).toBe(pem);
  });

  it("after the install a CRL under the new CA certificate is signed at once: openssl verifies it and a new leaf with -crl_check", async () => {
    // RFC 5280 §5.2.1: the CRL's AKI is its issuer's SKI. openssl does not insist (it verifies a
    // CRL with the old AKI under the new certificate: same name, same key), so this looks itself.
    const hexOf = (text: string) =>
      /([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text)![1]!.replace(/:/g, "").toLowerCase();
    const ski = hexOf(openssl(["x509", "-in", p("tca.pem"), "-noout", "-ext", "subjectKeyIdentifier"]));
    const akiOf = (der: Uint8Array) => {
      writeFileSync(p("crl.der"), der);
      const text = openssl(["crl", "-inform", "DER", "-in", p("crl.der"), "-noout", "-text"]);
      return hexOf(text.slice(text.indexOf("Authority Key Identifier")));
    };
    await exchangeUntil(ca, async () => {
      const latest = await ca.services.store.latestCrl();
      return latest !== undefined && latest.number > before.crlNumber && akiOf(latest.der) === ski;
    });
    const crl = (await ca.services.store.latestCrl())!;
    writeFileSync(p("crl.der"), crl.der);
    writeFileSync(
      p("tca-and-root.pem"),
      readFileSync(p("tca.pem"), "utf8") + readFileSync(p("root.pem"), "utf8"),
    );
    // openssl crl exits non-zero unless the signature verifies under a certificate whose SKI is its AKI.
    openssl(["crl", "-inform", "DER", "-in", p("crl.der"), "-CAfile", p("tca-and-root.pem"), "-noout"]); // prettier-ignore
    // openssl checks the root's CRL too under -crl_check_all; -crl_check is the leaf's issuer's.
    expect(openssl(["verify", "-x509_strict", "-crl_check", "-CAfile", p("root.pem"), "-untrusted", p("tca.pem"), "-CRLfile", p("crl.der"), p("leaf.pem")])).toMatch(/OK/); // prettier-ignore
  });

  it("the coordinator's own certificates notice the change: issuedUnder compares the leaf's AKI with the CA certificate's SKI", () => {
    const tcaDer = fromPem(readFileSync(p("tca.pem"), "utf8"), ["CERTIFICATE"], "CERT_MALFORMED");
    const rootDer = fromPem(ceremonyRootPem, ["CERTIFICATE"], "CERT_MALFORMED");
    const beforeLeaf = readFileSync(p("before-leaf.pem"), "utf8");
    expect(issuedUnder(beforeLeaf, rootDer)).toBe(true);
    expect(issuedUnder(beforeLeaf, tcaDer)).toBe(false);
    expect(issuedUnder(readFileSync(p("leaf.pem"), "utf8"), tcaDer)).toBe(true);
  });

  it("a custodian adopts it beside the ceremony's root: HOME/ca.pem untouched, HOME/ca-cert.pem and HOME/ca-chain.pem written", async () => {
    const home = new CustodianHome(mkdtempSync(join(dir, "home-")));
    writeFileSync(home.caCertPath, ceremonyRootPem);
    const client = connectCustodian({ urls: url, env: {} });
    const adopt = () =>
      adoptCoordinatorCa({
        client,
        home,
        config: ca.config,
        caPublicKey: ca.caPublicKey!,
        current: caCertificateOf(home),
      });
    expect((await adopt()).kind).toBe("adopted");
    expect(readFileSync(home.caCertPath, "utf8")).toBe(ceremonyRootPem);
    const tca = fromPem(readFileSync(p("tca.pem"), "utf8"), ["CERTIFICATE"], "CERT_MALFORMED");
    expect(caCertificateOf(home)).toEqual(tca);
    expect(readAdoptedCa(home)).toEqual(tca);
    expect(readCaChain(home)).toEqual([fromPem(readFileSync(p("root.pem"), "utf8"), ["CERTIFICATE"], "CERT_MALFORMED")]); // prettier-ignore
    expect((await adopt()).kind).toBe("unchanged");
  });

  it("the custodians' lint refuses a name outside the permitted subtree, and any CA certificate", async () => {
    const caCert = fromPem(readFileSync(p("tca.pem"), "utf8"), ["CERTIFICATE"], "CERT_MALFORMED");
    const params = async (names: string[], profile = "server"): Promise<LeafParams> => ({
      requestId: "00000000-0000-4000-8000-000000000001",
      requester: ca.config.config.requesters[0]!.name,
      profile,
      csr: Buffer.from(fromPem(await makeCsr(names), ["CERTIFICATE REQUEST"])).toString("base64"),
      serial: "7f" + "11".repeat(15),
      notBefore: new Date(Date.now() - 60_000).toISOString(),
      notAfter: new Date(Date.now() + 24 * 3_600_000).toISOString(),
    });
    expect(deriveLeafTbs(ca.config, caCert, await params(["svc.test"])).length).toBeGreaterThan(0);
    const evil = await params(["svc.test", "evil.example"]);
    expect(() => deriveLeafTbs(ca.config, caCert, evil)).toThrow(
      /DNS name evil\.example is outside the CA certificate's permitted name constraints \(DNS:\.test/,
    );
    // The CN is checked too, as browsers and openssl do.
    const cnOnly = await params(["svc.test"]);
    cnOnly.csr = Buffer.from(fromPem(await makeCsr(["svc.test"], "evil.example"), ["CERTIFICATE REQUEST"])).toString("base64"); // prettier-ignore
    expect(() => deriveLeafTbs(ca.config, caCert, cnOnly)).toThrow(/subject CN evil\.example is outside/);
    // pathlen:0: no CA certificate under it, whatever its names.
    openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("sub.key"), "-out", p("sub.csr"), "-subj", "/CN=Sub CA"]); // prettier-ignore
    const sub = await params(["unused.test"], "intermediate");
    sub.csr = Buffer.from(fromPem(readFileSync(p("sub.csr"), "utf8"), ["CERTIFICATE REQUEST"])).toString(
      "base64",
    );
    sub.notAfter = new Date(Date.now() + 48 * 3_600_000).toISOString();
    expect(() => deriveLeafTbs(ca.config, caCert, sub)).toThrow(/pathLenConstraint 0/);
  });

  it("no going back: an older CA certificate than the installed (or adopted) one is refused", async () => {
    await new Promise((r) => setTimeout(r, 1_100)); // notBefore has one-second resolution
    issue("tca.csr", "root", "tca-later", CA_EXT);
    const root = readFileSync(p("root.pem"), "utf8");
    const install = (cert: string) =>
      post("/api/v1/ca/certificate", { certificate: readFileSync(p(cert), "utf8"), chain: root });
    expect((await install("tca-later.pem")).status).toBe(200);
    const back = await install("tca.pem");
    expect(back.status).toBe(422);
    expect(((await back.json()) as { detail: string }).detail).toMatch(/older than the installed one/);
    // A custodian that adopted the later one will not adopt the earlier one either, whoever serves it.
    const home = new CustodianHome(mkdtempSync(join(dir, "home-")));
    writeFileSync(home.caCertPath, ceremonyRootPem);
    const adopt = (client: CoordinatorClient) =>
      adoptCoordinatorCa({ client, home, config: ca.config, caPublicKey: ca.caPublicKey!, current: caCertificateOf(home) }); // prettier-ignore
    expect((await adopt(connectCustodian({ urls: url, env: {} }))).kind).toBe("adopted");
    const stale = { text: async (path: string) => (path === "/ca.pem" ? readFileSync(p("tca.pem"), "utf8") : readFileSync(p("tca.pem"), "utf8") + root) }; // prettier-ignore
    const a = await adopt(stale as unknown as CoordinatorClient);
    expect(a).toMatchObject({ kind: "refused" });
    expect((a as { reason: string }).reason).toMatch(/older than the one this custodian adopted/);
    expect(readFileSync(join(home.dir, "ca-cert.pem"), "utf8")).toBe(
      readFileSync(p("tca-later.pem"), "utf8"),
    );
  });

  it("a CSR approval counts towards t only while it is unexpired", async () => {
    const created = await post("/api/v1/ca/csr", {});
    expect(created.status).toBe(201);
    const v = CaCsrViewSchema.parse(await created.json());
    const decide = async (name: string, validForMs: number) => {
      const review = reviewCaCsr(ca.config, ca.caPublicKey!, ca.caKeyId!, await csrView());
      const { envelope } = caCsrDecision(ca.signers.get(name)!, ca.config, ca.caKeyId!, review, "approve", { validForMs }); // prettier-ignore
      return post(`/api/v1/ca/csr/${v.id}/approvals`, envelope, {});
    };
    expect((await decide("alice", 300)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 400));
    expect((await decide("bob", 60_000)).status).toBe(202);
    // alice's approval has expired: one live approval of two, no signing job.
    expect((await csrView()).jobId).toBeNull();
    expect((await decide("bob", 60_000)).status).toBe(409);
    // alice approves again (her expired approval is replaced): now t live approvals.
    expect((await decide("alice", 60_000)).status).toBe(202);
    expect((await csrView()).status).toBe("signing");
  });
});
