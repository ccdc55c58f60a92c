// ACME with real Debian clients against a real `tca dev` (3-of-5, custodian agents in their own
// processes): lego with http-01, tls-alpn-01 and dns-01 (pebble-challtestsrv as the DNS server
// every validation lookup goes to), certbot standalone with http-01; renewal by each client;
// revocation by a client, then the threshold-signed CRL lists it; an order whose validation fails
// ends invalid with the challenge's error; a name outside every agent's policy waits for a person
// and is issued after `tca custodian approve`. The agents approve validated names under the dev
// policy (src/dev/local-ca.ts): localhost, *.localhost, *.test.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { custodianCli, startDevCa, type DevCa } from "../helpers/dev-ca.ts";
import { startChallTestSrv, type ChallTestSrv } from "../helpers/challtestsrv.ts";

const sb = new Sandbox();
let ca: DevCa;
let dns: ChallTestSrv;
let directory: string;
let work: string;
let httpPort: number;
let tlsPort: number;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

interface Run {
  code: number;
  out: string;
}

async function program(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const p = sb.program(command, args, env, work);
  const code = await p.exited;
  return { code, out: p.output };
}

/** lego with its account and certificates under `path`. */
function legoArgs(path: string, domains: string[], solver: string[], extra: string[] = []): string[] {
  return [
    "--server",
    directory,
    "--accept-tos",
    "--email",
    "e2e@example.test",
    "--path",
    path,
    ...domains.flatMap((d) => ["--domains", d]),
    ...solver,
    ...extra,
  ];
}
const HTTP = (): string[] => ["--http", "--http.port", `127.0.0.1:${httpPort}`];
const TLS = (): string[] => ["--tls", "--tls.port", `127.0.0.1:${tlsPort}`];

/** lego's dns-01 through its `exec` provider: a script that sets the TXT record in challtestsrv. */
function dnsSolver(): { args: string[]; env: NodeJS.ProcessEnv } {
  const script = join(work, "set-txt.sh");
  if (!existsSync(script)) {
    writeFileSync(
      script,
      `#!/bin/sh
# lego exec provider: $1 = present|cleanup, $2 = the record's FQDN, $3 = its value
case "$1" in
  present) curl -sSf -X POST -d "{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}" ${dns.managementUrl}/set-txt ;;
  cleanup) curl -sSf -X POST -d "{\\"host\\":\\"$2\\"}" ${dns.managementUrl}/clear-txt ;;
esac
`,
    );
    chmodSync(script, 0o755);
  }
  return {
    args: ["--dns", "exec", "--dns.resolvers", dns.resolver, "--dns.disable-cp"],
    // EXEC_SEQUENCE_INTERVAL: lego waits this long between two names' dns-01 (60 s by default).
    env: {
      EXEC_PATH: script,
      EXEC_PROPAGATION_TIMEOUT: "10",
      EXEC_POLLING_INTERVAL: "1",
      EXEC_SEQUENCE_INTERVAL: "1",
    },
  };
}

const serialOf = (pem: string): string =>
  openssl(["x509", "-noout", "-serial"], pem)
    .trim()
    .replace(/^serial=/, "")
    .toUpperCase();

function verify(certFile: string): void {
  // lego's .crt and certbot's fullchain.pem hold the leaf first, then the CA.
  expect(openssl(["verify", "-CAfile", ca.rootPath, certFile])).toMatch(/: OK/);
}

async function adminGet(path: string): Promise<unknown> {
  const res = await fetch(`${ca.url}${path}`, { headers: { authorization: `Bearer ${ca.adminToken}` } });
  expect(res.status, path).toBe(200);
  return res.json();
}

interface RequestSummary {
  id: string;
  status: string;
  serial: string;
  sans: { type: string; value: string }[];
  origin?: { kind: string; identifiers: { value: string; challenge: string }[] } | null;
}

async function requests(): Promise<RequestSummary[]> {
  return ((await adminGet("/api/v1/requests")) as { requests: RequestSummary[] }).requests;
}

beforeAll(async () => {
  work = sb.tempDir("tca-acme-e2e-");
  dns = await startChallTestSrv(sb);
  httpPort = await freePort();
  tlsPort = await freePort();
  ca = await startDevCa(sb, {
    custodians: 5,
    threshold: 3,
    agents: true,
    args: [
      "--acme-http-port",
      String(httpPort),
      "--acme-tls-port",
      String(tlsPort),
      "--acme-resolver",
      dns.resolver,
    ],
  });
  directory = readFileSync(join(ca.dir, "acme-directory.txt"), "utf8").trim();
}, 150_000);

afterAll(() => sb.cleanup());

describe("ACME with real clients against tca dev (3-of-5, agents as processes)", () => {
  it("tca dev prints the directory URL and writes it to DIR/acme-directory.txt", async () => {
    expect(directory).toBe(`${ca.url}/acme/directory`);
    expect(ca.proc.stdout).toContain(directory);
    const d = (await (await fetch(directory)).json()) as Record<string, unknown>;
    expect(d.newOrder).toBe(`${ca.url}/acme/new-order`);
    expect((d.meta as { externalAccountRequired: boolean }).externalAccountRequired).toBe(false);
  });

  it("lego with http-01 gets a certificate openssl verifies; the custodians saw where it came from", async () => {
    const path = join(work, "lego-http");
    const r = await program("lego", [...legoArgs(path, ["web.test"], HTTP()), "run"]);
    expect(r.code, r.out).toBe(0);
    const crt = join(path, "certificates", "web.test.crt");
    verify(crt);
    const serial = serialOf(readFileSync(crt, "utf8"));
    const req = (await requests()).find((q) => q.serial.replace(/:/g, "").toUpperCase() === serial);
    expect(req?.status).toBe("issued");
    expect(req?.origin?.kind).toBe("acme");
    expect(req?.origin?.identifiers).toEqual([
      expect.objectContaining({ value: "web.test", challenge: "http-01" }),
    ]);
  }, 90_000);

  it("lego with tls-alpn-01 (RFC 8737)", async () => {
    const path = join(work, "lego-tls");
    const r = await program("lego", [...legoArgs(path, ["alpn.test"], TLS()), "run"]);
    expect(r.code, r.out).toBe(0);
    verify(join(path, "certificates", "alpn.test.crt"));
  }, 90_000);

  it("lego with dns-01 through pebble-challtestsrv, a wildcard included", async () => {
    const path = join(work, "lego-dns");
    const solver = dnsSolver();
    const r = await program(
      "lego",
      [...legoArgs(path, ["dns.test", "*.dns.test"], solver.args), "run"],
      solver.env,
    );
    expect(r.code, r.out).toBe(0);
    const crt = join(path, "certificates", "dns.test.crt");
    verify(crt);
    expect(openssl(["x509", "-in", crt, "-noout", "-ext", "subjectAltName"])).toMatch(/DNS:\*\.dns\.test/);
  }, 90_000);

  it("certbot certonly --standalone with http-01, then renews", async () => {
    const dirs = ["config", "work", "logs"].flatMap((d) => [`--${d}-dir`, join(work, `certbot-${d}`)]);
    const common = ["--non-interactive", "--server", directory, ...dirs];
    const r = await program("certbot", [
      "certonly",
      "--standalone",
      "--agree-tos",
      "-m",
      "e2e@example.test",
      "-d",
      "certbot.test",
      "--http-01-port",
      String(httpPort),
      "--http-01-address",
      "127.0.0.1",
      ...common,
    ]);
    expect(r.code, r.out).toBe(0);
    const live = join(work, "certbot-config", "live", "certbot.test");
    verify(join(live, "fullchain.pem"));
    const first = serialOf(readFileSync(join(live, "cert.pem"), "utf8"));
    const renew = await program("certbot", [
      "renew",
      "--force-renewal",
      "--no-random-sleep-on-renew",
      ...common,
    ]);
    expect(renew.code, renew.out).toBe(0);
    verify(join(live, "fullchain.pem"));
    expect(serialOf(readFileSync(join(live, "cert.pem"), "utf8"))).not.toBe(first);
  }, 150_000);

  it("lego renews, then revokes; the CRL the custodians sign lists the revoked serial", async () => {
    const path = join(work, "lego-http");
    const crt = join(path, "certificates", "web.test.crt");
    const before = serialOf(readFileSync(crt, "utf8"));
    // 90-day certificates: --days 100 makes lego renew now.
    const renew = await program("lego", [
      ...legoArgs(path, ["web.test"], HTTP()),
      "renew",
      "--days",
      "100",
      "--no-random-sleep",
    ]);
    expect(renew.code, renew.out).toBe(0);
    verify(crt);
    const renewed = serialOf(readFileSync(crt, "utf8"));
    expect(renewed).not.toBe(before);
    const revoke = await program("lego", [
      ...legoArgs(path, ["web.test"], HTTP()),
      "revoke",
      "--reason",
      "4",
    ]);
    expect(revoke.code, revoke.out).toBe(0);
    // The CRL is reissued and threshold-signed once the agents sign it.
    const deadline = Date.now() + 60_000;
    let crl = "";
    for (;;) {
      const file = join(work, "ca.crl");
      writeFileSync(file, Buffer.from(await (await fetch(`${ca.url}/crl`)).arrayBuffer()));
      crl = openssl(["crl", "-inform", "DER", "-in", file, "-noout", "-text"]);
      if (crl.replace(/:/g, "").toUpperCase().includes(renewed)) break;
      if (Date.now() > deadline) throw new Error(`the CRL never listed ${renewed}:\n${crl}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(crl).toMatch(/Superseded/);
  }, 150_000);

  it("an order whose validation fails ends invalid with the challenge's error", async () => {
    const path = join(work, "lego-fail");
    const elsewhere = await freePort(); // lego answers here; tca fetches from httpPort, where nothing listens
    const r = await program("lego", [
      ...legoArgs(path, ["unreachable.test"], ["--http", "--http.port", `127.0.0.1:${elsewhere}`]),
      "run",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/urn:ietf:params:acme:error:connection/);
    expect(r.out).toMatch(/unreachable\.test/);
  }, 90_000);

  it("a name outside every agent's policy waits for a person, and is issued after `tca custodian approve`", async () => {
    const path = join(work, "lego-held");
    const lego = sb.program(
      "lego",
      [...legoArgs(path, ["held.example.com"], HTTP(), ["--cert.timeout", "120"]), "run"],
      {},
      work,
    );
    let held: RequestSummary | undefined;
    const deadline = Date.now() + 60_000;
    while (!held) {
      held = (await requests()).find((q) => q.sans.some((s) => s.value === "held.example.com"));
      if (Date.now() > deadline) throw new Error(`no request for held.example.com:\n${lego.output}`);
      if (!held) await new Promise((r) => setTimeout(r, 300));
    }
    expect(held.origin?.kind).toBe("acme");
    // The agents saw it and left it for a person.
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await requests()).find((q) => q.id === held!.id)?.status).toBe("pending");
    // Three custodians at their terminals: each approves, then stays online to sign.
    const approvals = ["alice", "bob", "carol"].map((name) =>
      custodianCli(sb, ca, name, ["approve", held!.id, "--yes"]),
    );
    for (const p of approvals) expect(await p.exited, p.output).toBe(0);
    expect(await lego.exited, lego.output).toBe(0);
    verify(join(path, "certificates", "held.example.com.crt"));
  }, 150_000);
});
