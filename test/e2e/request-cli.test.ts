// `tca request`: a requester's one command against a real `tca dev` CA. It makes a key and CSR,
// submits, waits while two custodian CLI processes approve, and writes a certificate that openssl
// verifies for the key it wrote; it submits an openssl CSR as is; it reports the server's refusals
// and refuses to overwrite files.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, TCA_BIN, type Proc } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { custodianCli, KEY_ARGS, makeCsr, requestView, startDevCa, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let tokenFile: string;

/** Later `tca dev` may start auto-approving agents; switch them off when it can, to stay independent. */
function devArgs(): string[] {
  const help = execFileSync(process.execPath, [TCA_BIN, "dev", "--help"], { encoding: "utf8" });
  return help.includes("--no-agents") ? ["--no-agents"] : [];
}

beforeAll(async () => {
  ca = await startDevCa(sb, { args: devArgs() });
  tokenFile = join(ca.dir, "requester.token");
}, 120_000);
afterAll(() => sb.cleanup());

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

function outputs(dir: string, name: string): string[] {
  return [
    "--key-out",
    join(dir, `${name}.key`),
    "--cert-out",
    join(dir, `${name}.crt`),
    "--chain-out",
    join(dir, `${name}.chain.pem`),
  ];
}

async function pendingIds(): Promise<string[]> {
  const res = await fetch(`${ca.url}/api/v1/requests?status=pending`, {
    headers: { authorization: `Bearer ${ca.adminToken}` },
  });
  const body = (await res.json()) as { requests: { id: string }[] };
  return body.requests.map((r) => r.id);
}

async function finished(p: Proc): Promise<{ code: number; stdout: string; stderr: string }> {
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

describe("a request's state by long-poll", () => {
  it("GET /api/v1/requests/{id}?since=STATE&wait=S answers when the state moves, not when wait runs out", async () => {
    const csr = makeCsr(sb.tempDir(), "poll", {
      newkey: KEY_ARGS["p-256"]!,
      subject: "/CN=poll.example.internal",
      sans: "DNS:poll.example.internal",
    });
    const submitted = await fetch(`${ca.url}/api/v1/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${ca.token}`, "content-type": "application/json" },
      body: JSON.stringify({ csr: csr.csrPem, profile: "server" }),
    });
    const id = ((await submitted.json()) as { id: string }).id;
    const bad = await fetch(`${ca.url}/api/v1/requests/${id}?since=nonsense&wait=5`, {
      headers: { authorization: `Bearer ${ca.token}` },
    });
    expect(bad.status).toBe(400);
    const started = Date.now();
    const poll = fetch(`${ca.url}/api/v1/requests/${id}?since=pending/0&wait=60`, {
      headers: { authorization: `Bearer ${ca.token}` },
    }).then(async (r) => (await r.json()) as { status: string; approvals: { custodian: string }[] });
    const alice = custodianCli(sb, ca, "alice", ["approve", id, "--yes", "--no-wait"]);
    expect((await finished(alice)).code, alice.stderr).toBe(0);
    const view = await poll;
    expect(view.status).toBe("pending");
    expect(view.approvals.map((a) => a.custodian)).toEqual(["alice"]);
    // Woken by the approval: far sooner than the 60 s it was allowed to wait.
    expect(Date.now() - started).toBeLessThan(45_000);
  });
});

describe("tca request", () => {
  it("generates a key and CSR, waits for two custodians' approvals, writes a verifiable certificate", async () => {
    const dir = sb.tempDir("tca-request-");
    const name = "svc.example.internal";
    const req = sb.tca([
      "request",
      name,
      "--san",
      "127.0.0.1",
      "--token-file",
      tokenFile,
      "--coordinator",
      ca.url,
      "--json",
      ...outputs(dir, name),
    ]);
    const id = (await req.waitFor(new RegExp(`request (${UUID.source}) submitted`), 30_000))[1]!;
    // It is pending on the coordinator, and the requester says so while it waits.
    const deadline = Date.now() + 10_000;
    while (!(await pendingIds()).includes(id)) {
      if (Date.now() > deadline) throw new Error(`request ${id} never appeared pending`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await req.waitFor(/pending: 0 of 2 approvals, waiting for 2 more…/);

    const alice = custodianCli(sb, ca, "alice", ["approve", id, "--yes"]);
    await alice.waitFor(new RegExp(`${id}: approved`));
    await req.waitFor(/pending: 1 of 2 approvals, waiting for 1 more…/);
    const bob = custodianCli(sb, ca, "bob", ["approve", id, "--yes"]);

    const done = await finished(req);
    expect(done.code, done.stderr).toBe(0);
    expect((await finished(bob)).code, bob.stderr).toBe(0);
    expect((await finished(alice)).code, alice.stderr).toBe(0);
    expect(done.stderr).toMatch(/issued: serial [0-9a-f]+/);

    const result = JSON.parse(done.stdout) as Record<string, string>;
    const view = await requestView(ca, id);
    expect(result).toMatchObject({
      id,
      status: "issued",
      serial: view.serial,
      certificate: join(dir, `${name}.crt`),
      chain: join(dir, `${name}.chain.pem`),
      key: join(dir, `${name}.key`),
    });

    const crt = result.certificate!;
    const key = result.key!;
    expect(openssl(["verify", "-x509_strict", "-CAfile", ca.rootPath, crt])).toMatch(/: OK/);
    expect(readFileSync(crt, "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    const chain = readFileSync(result.chain!, "utf8");
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(chain.startsWith(readFileSync(crt, "utf8"))).toBe(true);
    expect(chain).toContain(readFileSync(ca.rootPath, "utf8").trim());

    const text = openssl(["x509", "-in", crt, "-noout", "-text"]);
    expect(text).toMatch(/Subject: CN\s*=\s*svc\.example\.internal/);
    expect(text).toMatch(/DNS:svc\.example\.internal, IP Address:127\.0\.0\.1/);
    expect(text).toMatch(/Public Key Algorithm: id-ecPublicKey/);

    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(openssl(["x509", "-in", crt, "-noout", "-pubkey"])).toBe(openssl(["pkey", "-in", key, "-pubout"]));
    // The key never reaches the terminal.
    const keyBody = readFileSync(key, "utf8").split("\n")[1]!;
    expect(done.stdout + done.stderr).not.toContain(keyBody);
  });

  it("fails over: with --coordinator DOWN,UP the request and both custodians' approvals go to UP", async () => {
    const dir = sb.tempDir("tca-request-failover-");
    const name = "failover.example.internal";
    // Port 1: nothing listens, the connection is refused, so even the submit may go on to the next.
    const coordinators = `http://127.0.0.1:1,${ca.url}`;
    const req = sb.tca([
      "request",
      name,
      "--token-file",
      tokenFile,
      "--coordinator",
      coordinators,
      "--json",
      ...outputs(dir, name),
    ]);
    const id = (await req.waitFor(new RegExp(`request (${UUID.source}) submitted`), 30_000))[1]!;
    const env = { TCA_COORDINATOR: coordinators };
    const alice = custodianCli(sb, ca, "alice", ["approve", id, "--yes"], env);
    await alice.waitFor(new RegExp(`${id}: approved`));
    const bob = custodianCli(sb, ca, "bob", ["approve", id, "--yes"], env);
    const done = await finished(req);
    expect(done.code, done.stderr).toBe(0);
    expect((await finished(bob)).code, bob.stderr).toBe(0);
    expect((await finished(alice)).code, alice.stderr).toBe(0);
    const result = JSON.parse(done.stdout) as Record<string, string>;
    expect(result).toMatchObject({ id, status: "issued" });
    expect(openssl(["verify", "-x509_strict", "-CAfile", ca.rootPath, result.certificate!])).toMatch(/: OK/);
    // Submitted once: one request with this name.
    const all = (await (
      await fetch(`${ca.url}/api/v1/requests?status=issued`, {
        headers: { authorization: `Bearer ${ca.adminToken}` },
      })
    ).json()) as {
      requests: { id: string; subject: string }[];
    };
    expect(all.requests.filter((r) => r.subject.includes(name)).map((r) => r.id)).toEqual([id]);
  });

  it("submits an openssl-made CSR as is with --no-wait: exit 0, prints the id, writes no key", async () => {
    const dir = sb.tempDir("tca-request-csr-");
    const { csr } = makeCsr(dir, "byo", {
      newkey: KEY_ARGS.ed25519!,
      subject: "/CN=byo.example.internal",
      sans: "DNS:byo.example.internal",
    });
    const r = await finished(
      sb.tca(
        [
          "request",
          "byo.example.internal",
          "--csr",
          csr,
          "--no-wait",
          "--coordinator",
          ca.url,
          "--cert-out",
          join(dir, "out.crt"),
          "--chain-out",
          join(dir, "out.chain.pem"),
        ],
        { TCA_TOKEN: ca.token },
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(new RegExp(`^${UUID.source}$`));
    const view = await requestView(ca, id);
    expect(view.status).toBe("pending");
    expect(view.csr).toBeTruthy();
    expect(existsSync(join(dir, "out.crt"))).toBe(false);
    expect(existsSync(join(dir, "byo.example.internal.key"))).toBe(false);
  });

  it("a bad token exits 1 with the server's detail and writes nothing", async () => {
    const dir = sb.tempDir("tca-request-token-");
    const bad = join(dir, "bad.token");
    writeFileSync(bad, "not-the-requester-token-0123456789\n");
    const r = await finished(
      sb.tca([
        "request",
        "bad.example.internal",
        "--token-file",
        bad,
        "--coordinator",
        ca.url,
        ...outputs(dir, "bad"),
      ]),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tca: error: the requester token is not valid$/m);
    expect(r.stdout).toBe("");
    expect(existsSync(join(dir, "bad.key"))).toBe(false);
  });

  it("refuses to overwrite an existing key file (and submits nothing)", async () => {
    const dir = sb.tempDir("tca-request-exists-");
    const keyPath = join(dir, "exists.key");
    writeFileSync(keyPath, "precious\n");
    const before = (await pendingIds()).length;
    const r = await finished(
      sb.tca([
        "request",
        "exists.example.internal",
        "--token-file",
        tokenFile,
        "--coordinator",
        ca.url,
        ...outputs(dir, "exists"),
      ]),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exists\.key already exists; use --force to overwrite it/);
    expect(readFileSync(keyPath, "utf8")).toBe("precious\n");
    expect((await pendingIds()).length).toBe(before);
  });

  it("a rejected request exits 3 and says who rejected it and why", async () => {
    const dir = sb.tempDir("tca-request-reject-");
    const req = sb.tca([
      "request",
      "nope.example.internal",
      "--token-file",
      tokenFile,
      "--coordinator",
      ca.url,
      ...outputs(dir, "nope"),
    ]);
    const id = (await req.waitFor(new RegExp(`request (${UUID.source}) submitted`), 30_000))[1]!;
    const rej = await finished(custodianCli(sb, ca, "carol", ["reject", id, "--reason", "not our service"]));
    expect(rej.code, rej.stderr).toBe(0);
    const r = await finished(req);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rejected by carol: not our service/);
    expect(existsSync(join(dir, "nope.crt"))).toBe(false);
    // The key was written when the request was submitted.
    expect(statSync(join(dir, "nope.key")).mode & 0o777).toBe(0o600);
  });
});
