// TLS on the coordinator, end to end with real processes, curl and openssl (docs/tls.md):
// (a) `tca dev --tls`: the threshold CA issues the coordinator its own certificate (a request from
//     requester `coordinator`, approved and signed by the agents), curl with the root verifies it
//     and curl without it is refused, plain HTTP keeps only the public and custodian routes, and
//     issuance keeps working with the agents on TLS;
// (b) `tca serve --tls-cert/--tls-key` with an openssl-made CA: TLS only, a key that is not the
//     certificate's refused at startup, and SIGHUP installs new files.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, ROOT, type Proc } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";

const sb = new Sandbox();
afterAll(() => sb.cleanup());

/** curl's exit status, stdout and stderr (never throws). */
function curl(args: string[]): { status: number; out: string; err: string } {
  const r = spawnSync("curl", ["-sS", "--max-time", "20", ...args], { encoding: "utf8" });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** The leaf certificate a TLS server at 127.0.0.1:port presents (PEM), via openssl s_client. */
function servedLeaf(port: number): string {
  const r = spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-showcerts"], {
    input: "",
    encoding: "utf8",
  });
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(r.stdout);
  if (!m) throw new Error(`no certificate served on port ${port}:\n${r.stdout}${r.stderr}`);
  return m[0];
}

const serialOf = (pem: string): string =>
  openssl(["x509", "-noout", "-serial"], pem)
    .trim()
    .replace(/^serial=/, "")
    .toUpperCase();

describe("tca dev --tls", () => {
  let dir: string;
  let url: string;
  let port: number;
  let root: string;
  let proc: Proc;

  beforeAll(async () => {
    dir = join(sb.tempDir("tca-dev-tls-"), "ca");
    proc = sb.tca(["dev", "--tls", "--dir", dir, "--port", "0", "--custodians", "3", "--threshold", "2"]);
    await proc.waitFor(/tca dev: ready/, 150_000);
    url = readFileSync(join(dir, "coordinator.url"), "utf8").trim();
    port = Number(new URL(url).port);
    root = join(dir, "root.pem");
  }, 160_000);

  it("prints and writes https:// URLs, and the banner uses the root it wrote", () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(readFileSync(join(dir, "coordinators.txt"), "utf8").trim()).toBe(url);
    expect(proc.stdout).toContain(`coordinator     ${url}`);
    expect(proc.stdout).toContain(`--cacert ${root}`);
    expect(openssl(["x509", "-noout", "-subject", "-in", root])).toContain("tca Example Root CA");
  });

  it("curl verifies the coordinator with DIR/root.pem, and refuses it without", () => {
    const ok = curl(["--cacert", root, "-f", `${url}/api/v1/health`]);
    expect(ok.err).toBe("");
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.out).status).toBe("ok");
    const refused = curl(["-f", `${url}/api/v1/health`]);
    expect(refused.status).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
    expect(refused.err).toMatch(/certificate/i);
  });

  it("serves a certificate issued by the threshold CA on a request from requester coordinator", () => {
    const leaf = servedLeaf(port);
    const leafPath = join(dir, "served.pem");
    writeFileSync(leafPath, leaf);
    expect(openssl(["verify", "-CAfile", root, leafPath])).toContain(": OK");
    const text = openssl(["x509", "-noout", "-text", "-in", leafPath]);
    expect(text).toMatch(/DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    expect(text).toContain("TLS Web Server Authentication");
    // The request is visible (to an admin) as coming from requester `coordinator`, with this serial.
    const admin = readFileSync(join(dir, "admin.token"), "utf8").trim();
    const list = curl([
      "--cacert",
      root,
      "-f",
      "-H",
      `Authorization: Bearer ${admin}`,
      `${url}/api/v1/requests`,
    ]);
    expect(list.status).toBe(0);
    const { requests } = JSON.parse(list.out) as {
      requests: { requester: string; serial: string; status: string }[];
    };
    const mine = requests.filter((r) => r.requester === "coordinator");
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine.map((r) => r.serial.toUpperCase().replace(/^0+/, ""))).toContain(
      serialOf(leaf).replace(/^0+/, ""),
    );
  });

  it("plain HTTP on the same port: public routes yes, anything with a token 403 HTTPS_REQUIRED", () => {
    const plain = `http://127.0.0.1:${port}`;
    const ca = curl(["-f", `${plain}/ca.pem`]);
    expect(ca.status).toBe(0);
    expect(ca.out).toBe(readFileSync(root, "utf8"));
    const token = readFileSync(join(dir, "requester.token"), "utf8").trim();
    const r = curl([
      "-w",
      "\n%{http_code}",
      "-H",
      `Authorization: Bearer ${token}`,
      "-H",
      "Content-Type: application/json",
      "-d",
      "{}",
      `${plain}/api/v1/requests`,
    ]);
    const [body, status] = r.out.split(/\n(?=\d+$)/);
    expect(status).toBe("403");
    const problem = JSON.parse(body!) as { code: string; detail: string };
    expect(problem.code).toBe("HTTPS_REQUIRED");
    expect(problem.detail).toContain(`https://127.0.0.1:${port}/api/v1/requests`);
  });

  it("issues over TLS with the agents upgraded: tca request --ca-file", () => {
    const out = sb.tempDir("tca-dev-tls-req-");
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, "bin/tca.js"),
        "request",
        "svc.example.internal",
        "--coordinator",
        url,
        "--token-file",
        join(dir, "requester.token"),
        "--ca-file",
        root,
        "--timeout",
        "60",
      ],
      { cwd: out, encoding: "utf8", env: { ...process.env, TCA_LOG_LEVEL: "warn" } },
    );
    expect(r.stderr + r.stdout).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    expect(openssl(["verify", "-CAfile", root, join(out, "svc.example.internal.crt")])).toContain(": OK");
  });
});

describe("tca serve --tls-cert/--tls-key", () => {
  let d: string;
  const config = join(ROOT, "ca-config/ca.yaml");

  /** A P-256 leaf for 127.0.0.1 signed by the test CA; returns its cert and key paths. */
  function leaf(name: string): { cert: string; key: string } {
    const key = join(d, `${name}.key`);
    const csr = join(d, `${name}.csr`);
    const cert = join(d, `${name}.pem`);
    openssl([
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      csr,
      "-subj",
      "/CN=127.0.0.1",
    ]);
    writeFileSync(join(d, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      join(d, "ca.pem"),
      "-CAkey",
      join(d, "ca.key"),
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      cert,
      "-extfile",
      join(d, "ext.cnf"),
    ]);
    return { cert, key };
  }

  beforeAll(() => {
    d = sb.tempDir("tca-static-tls-");
    openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      join(d, "ca.key"),
      "-out",
      join(d, "ca.pem"),
      "-subj",
      "/CN=Test Org CA",
      "-days",
      "2",
    ]);
  });

  it("serves TLS only; SIGHUP installs the new certificate", async () => {
    const a = leaf("a");
    const live = { cert: join(d, "live.pem"), key: join(d, "live.key") };
    copyFileSync(a.cert, live.cert);
    copyFileSync(a.key, live.key);
    const proc = sb.tca([
      "serve",
      "--config",
      config,
      "--db",
      join(d, "tca.db"),
      "--port",
      "0",
      "--tls-cert",
      live.cert,
      "--tls-key",
      live.key,
    ]);
    const url = (await proc.waitFor(/listening on (https:\/\/\S+)/))[1]!;
    const port = Number(new URL(url).port);
    const ok = curl([
      "--cacert",
      join(d, "ca.pem"),
      "-f",
      `${url}/ca.pem`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
    ]);
    // No root yet (no ceremony): 404 for the CA certificate, but over verified TLS.
    expect(ok.err).not.toMatch(/certificate/i);
    const live200 = curl(["--cacert", join(d, "ca.pem"), "-f", `${url}/api/v1/health/live`]);
    expect(live200.status).toBe(0);
    // Plain HTTP to the TLS port gets no HTTP answer at all.
    const plain = curl(["-w", "%{http_code}", `http://127.0.0.1:${port}/api/v1/health/live`]);
    expect(plain.status).not.toBe(0);
    expect(plain.out).not.toMatch(/^[1-5]\d\d$/);
    // Without the org CA the certificate is refused.
    expect(curl([`${url}/api/v1/health/live`]).status).toBe(60);

    const before = serialOf(servedLeaf(port));
    expect(before).toBe(serialOf(readFileSync(a.cert, "utf8")));
    const b = leaf("b");
    copyFileSync(b.cert, live.cert);
    copyFileSync(b.key, live.key);
    const want = serialOf(readFileSync(b.cert, "utf8"));
    expect(want).not.toBe(before);
    proc.child.kill("SIGHUP");
    await proc.waitFor(/certificate reloaded/, 20_000).catch(() => undefined); // logged at info only
    let served = before;
    for (let i = 0; i < 100 && served !== want; i++) {
      await new Promise((r) => setTimeout(r, 100));
      served = serialOf(servedLeaf(port));
    }
    expect(served).toBe(want);
    expect(curl(["--cacert", join(d, "ca.pem"), "-f", `${url}/api/v1/health/live`]).status).toBe(0);
    proc.kill();
    await proc.exited;
  });

  it("refuses at startup a key that is not the certificate's, naming both files", async () => {
    const a = leaf("c");
    const other = leaf("d");
    const proc = sb.tca([
      "serve",
      "--config",
      config,
      "--db",
      join(d, "tca2.db"),
      "--port",
      "0",
      "--tls-cert",
      a.cert,
      "--tls-key",
      other.key,
    ]);
    const code = await proc.exited;
    expect(code).not.toBe(0);
    expect(proc.stderr).toContain(`the key in ${other.key} does not match the certificate in ${a.cert}`);
    expect(proc.output).not.toMatch(/listening on/);
  });

  it("usage errors for bad flag combinations", async () => {
    const cases: [string[], RegExp][] = [
      [["--tls-cert", join(d, "a.pem")], /--tls-cert and --tls-key go together/],
      [
        ["--tls", "auto", "--tls-cert", join(d, "a.pem"), "--tls-key", join(d, "a.key")],
        /exclude each other/,
      ],
      [["--tls", "on"], /the only mode is "auto"/],
      [["--tls-name", "x.example"], /need --tls auto/],
    ];
    for (const [args, re] of cases) {
      const proc = sb.tca(["serve", "--config", config, "--db", join(d, "tca3.db"), "--port", "0", ...args]);
      expect(await proc.exited).not.toBe(0);
      expect(proc.stderr).toMatch(re);
    }
  });
});
