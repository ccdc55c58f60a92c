// Intermediate mode end to end (docs/intermediate.md): a real `tca dev` whose custodian agents run in
// their own processes (the dev policy has signCaCsr: true). `tca ceremony csr` has them approve and
// threshold-sign a CSR for the CA key, an openssl-made root signs it (pathlen 0, nameConstraints
// permitted .test), `tca ceremony install-ca-cert` installs it, each agent adopts it after its own
// checks, and a leaf for svc.test chains leaf → tca CA → root under `openssl verify -x509_strict`;
// a request for evil.example is rejected by the agents' lint, with the reason.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { makeCsr, requestView, startDevCa, submitCsr, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let work: string;
const p = (f: string) => join(work, f);

beforeAll(async () => {
  work = sb.tempDir("tca-intermediate-e2e-");
  ca = await startDevCa(sb, { agents: true });
}, 120_000);

afterAll(() => sb.cleanup());

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("tca under an openssl-made root", () => {
  it("csr ceremony, openssl signs, install, leaf verifies -x509_strict, a name outside .test is refused", async () => {
    const admin = ["--coordinator", ca.url, "--token-file", join(ca.dir, "admin.token")];
    const csr = sb.tca(["ceremony", "csr", "--out", p("tca.csr"), ...admin]);
    expect(await csr.exited, csr.output).toBe(0);
    openssl(["req", "-verify", "-noout", "-in", p("tca.csr")]);

    openssl([
      "req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", p("root.key"), "-out", p("root.pem"),
      "-subj", "/CN=Example External Root", "-days", "3650",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]); // prettier-ignore
    writeFileSync(
      p("ca.ext"),
      [
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "keyUsage=critical,keyCertSign,cRLSign",
        "nameConstraints=critical,permitted;DNS:.test",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid",
      ].join("\n") + "\n",
    );
    openssl([
      "x509", "-req", "-in", p("tca.csr"), "-CA", p("root.pem"), "-CAkey", p("root.key"), "-set_serial", "4096",
      "-days", "365", "-extfile", p("ca.ext"), "-out", p("tca.pem"),
    ]); // prettier-ignore

    const install = sb.tca([
      "ceremony",
      "install-ca-cert",
      "--cert",
      p("tca.pem"),
      "--chain",
      p("root.pem"),
      ...admin,
    ]);
    expect(await install.exited, install.output).toBe(0);
    expect(install.output).toContain("Example External Root");
    // Every agent adopts it after its own checks (HOME/ca-chain.pem) before it signs under it.
    await until("the agents to adopt the CA certificate", () =>
      ["alice", "bob", "carol"].every((n) => existsSync(join(ca.home(n).home, "ca-chain.pem"))),
    );

    const good = makeCsr(work, "svc", {
      newkey: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
      subject: "/CN=svc.test",
      sans: "DNS:svc.test",
    });
    const submitted = await submitCsr(ca, good.csrPem);
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const res = await fetch(`${ca.url}/api/v1/requests/${String(submitted.body.id)}/certificate?wait=60`, {
      headers: { authorization: `Bearer ${ca.token}` },
    });
    const chain = await res.text();
    expect(res.status, chain).toBe(200);
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(3); // leaf → tca CA → root
    writeFileSync(p("leaf.pem"), chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 25) + "\n");
    openssl(["verify", "-x509_strict", "-CAfile", p("root.pem"), "-untrusted", p("tca.pem"), p("leaf.pem")]);

    const evil = makeCsr(work, "evil", {
      newkey: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
      subject: "/CN=evil.example",
      sans: "DNS:evil.example",
    });
    const refused = await submitCsr(ca, evil.csrPem);
    expect(refused.status, JSON.stringify(refused.body)).toBe(202);
    const id = String(refused.body.id);
    await until(
      "the agents to reject evil.example",
      async () => (await requestView(ca, id)).status === "rejected",
    );
    const v = (await requestView(ca, id)) as { rejection?: { reason: string } };
    expect(v.rejection?.reason).toMatch(
      /evil\.example is outside the CA certificate's permitted name constraints/,
    );
  }, 180_000);
});
