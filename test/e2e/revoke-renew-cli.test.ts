// `tca revoke` and `tca renew` against a real `tca dev` CA with agent processes: revoke by CLI, then
// the threshold-signed CRL checked by openssl (`openssl crl`, `openssl verify -crl_check`); bad
// serials and reasons are usage errors; renew once keeps the names with a new serial while the old
// certificate stays valid; --rekey writes a new key with mode 0600; a revoked certificate cannot be
// renewed; agents whose policy approves nothing but renewals of what they approved (`renewals:
// approveIfApprovedOriginal`) approve a renewal; `--daemon` renews and runs `--exec`, and stops
// cleanly on SIGTERM.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, type Proc } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { custodianCli, requestView, startDevCa, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let dir: string;
let agents: Proc[] = [];

const POLICY_RULES = `version: 1
autoApprove:
  - name: svc
    profiles: [server]
    names: ["*.example.internal"]
    maxValidityHours: 24
signCrls: true
renewals: approveIfApprovedOriginal
`;
// No rule: only renewals of certificates this custodian approved are approved without a person.
const POLICY_RENEWALS_ONLY = `version: 1
autoApprove: []
signCrls: true
renewals: approveIfApprovedOriginal
`;

async function startAgents(policy: string): Promise<void> {
  const file = join(dir, `policy-${agents.length}.yaml`);
  writeFileSync(file, policy);
  agents = ["alice", "bob", "carol"].map((name) =>
    custodianCli(sb, ca, name, ["agent", "--policy", file], { TCA_LOG_LEVEL: "info" }),
  );
  await Promise.all(agents.map((a) => a.waitFor(/agent started/, 30_000)));
}
async function stopAgents(): Promise<void> {
  for (const a of agents) a.kill("SIGTERM");
  await Promise.all(agents.map((a) => a.exited));
}

async function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  const p = sb.tca(args, { TCA_COORDINATOR: ca.url, ...env });
  const code = await p.exited;
  return { code, out: p.stdout, err: p.stderr };
}

/** `tca request NAME` for one hour; returns the paths of its files. */
async function request(name: string): Promise<{ crt: string; key: string }> {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const r = await run([
    "request",
    name,
    "--validity",
    "1",
    "--token-file",
    join(ca.dir, "requester.token"),
    "--key-out",
    key,
    "--cert-out",
    crt,
    "--chain-out",
    join(dir, `${name}.chain.pem`),
  ]);
  expect(r.code, r.err).toBe(0);
  return { crt, key };
}

const field = (crt: string, what: string[]) => openssl(["x509", "-in", crt, "-noout", ...what]).trim();
const serialOf = (crt: string) =>
  field(crt, ["-serial"])
    .replace(/^serial=/, "")
    .toLowerCase()
    .replace(/^(00)+/, "");
const pubkeyOf = (crt: string) => field(crt, ["-pubkey"]);

async function crlListing(serial: string): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const pem = await (await fetch(`${ca.url}/crl.pem`)).text();
    if (pem.includes("BEGIN X509 CRL")) {
      writeFileSync(join(dir, "crl.pem"), pem);
      const text = openssl(["crl", "-in", join(dir, "crl.pem"), "-noout", "-text"]);
      if (text.toLowerCase().includes(serial)) return text;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the CRL never listed ${serial}`);
}

beforeAll(async () => {
  ca = await startDevCa(sb);
  dir = sb.tempDir("tca-renew-");
  await startAgents(POLICY_RULES);
}, 120_000);
afterAll(() => sb.cleanup());

describe("tca revoke", () => {
  it("refuses a bad serial, a bad reason and certificateHold as usage errors (2); an unknown serial fails (1)", async () => {
    const token = ["--token-file", join(ca.dir, "requester.token")];
    const bad = await run(["revoke", "not-a-serial", ...token]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/"not-a-serial" is not a serial number/);
    const reason = await run(["revoke", "0a1b2c3d4e5f60718293", "--reason", "because", ...token]);
    expect(reason.code).toBe(2);
    expect(reason.err).toMatch(/--reason must be one of: unspecified, keyCompromise/);
    const hold = await run(["revoke", "0a1b2c3d4e5f60718293", "--reason", "certificateHold", ...token]);
    expect(hold.code).toBe(2);
    expect(hold.err).toMatch(/certificateHold is not offered.*final/);
    const none = await run(["revoke", "0a1b2c3d4e5f60718293", ...token]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no certificate with serial/);
    const noToken = await run(["revoke", "0a1b2c3d4e5f60718293"], { TCA_TOKEN: "", TCA_ADMIN_TOKEN: "" });
    expect(noToken.code).toBe(2);
  });

  it("revokes by --cert; the next CRL lists it, openssl verify -crl_check says revoked; revoking again fails", async () => {
    const a = await request("revoked.example.internal");
    const keep = await request("kept.example.internal");
    const serial = serialOf(a.crt);
    const r = await run([
      "revoke",
      "--cert",
      a.crt,
      "--reason",
      "keyCompromise",
      "--admin-token-file",
      join(ca.dir, "admin.token"),
      "--json",
    ]);
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out) as { serial: string; reason: string; crl: string };
    expect(out).toMatchObject({ serial, reason: "keyCompromise", crl: `${ca.url}/crl.pem` });
    const text = await crlListing(serial);
    expect(text).toMatch(/Key Compromise/);
    const crl = join(dir, "crl.pem");
    expect(() => openssl(["verify", "-crl_check", "-CRLfile", crl, "-CAfile", ca.rootPath, a.crt])).toThrow(
      /certificate revoked/,
    );
    expect(openssl(["verify", "-crl_check", "-CRLfile", crl, "-CAfile", ca.rootPath, keep.crt])).toMatch(
      /OK/,
    );
    // The requester's own token, the serial as openssl prints it (upper case, with 00 maybe).
    const again = await run([
      "revoke",
      field(a.crt, ["-serial"]).replace(/^serial=/, ""),
      "--token-file",
      join(ca.dir, "requester.token"),
    ]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already revoked/);
    // A revoked certificate cannot be renewed: refused (3), and it says why.
    const renew = await run(["renew", "--cert", a.crt, "--key", a.key]);
    expect(renew.code, renew.err).toBe(3);
    expect(renew.err).toMatch(/revoked.*cannot be renewed/);
  });
});

describe("tca renew", () => {
  it("renews once: same subject and names, a new serial, the same key; the old certificate stays valid", async () => {
    const b = await request("renewme.example.internal");
    const out = sb.tempDir("tca-renewed-");
    const r = await run(["renew", "--cert", b.crt, "--key", b.key, "--out-dir", out, "--json"]);
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out) as { serial: string; renewalOf: string; certificate: string; id: string };
    const renewed = join(out, "renewme.example.internal.crt");
    expect(res.certificate).toBe(renewed);
    expect(res.renewalOf).toBe(serialOf(b.crt));
    expect(serialOf(renewed)).toBe(res.serial);
    expect(res.serial).not.toBe(res.renewalOf);
    expect(field(renewed, ["-subject"])).toBe(field(b.crt, ["-subject"]));
    expect(field(renewed, ["-ext", "subjectAltName"])).toBe(field(b.crt, ["-ext", "subjectAltName"]));
    expect(pubkeyOf(renewed)).toBe(pubkeyOf(b.crt));
    expect(existsSync(join(out, "renewme.example.internal.chain.pem"))).toBe(true);
    expect(openssl(["verify", "-CAfile", ca.rootPath, renewed])).toMatch(/OK/);
    expect(openssl(["verify", "-CAfile", ca.rootPath, b.crt])).toMatch(/OK/);
    // The request says what it renews.
    expect(await requestView(ca, res.id)).toMatchObject({ renewalOf: res.renewalOf, requester: "dev" });

    // Renewed once, it is not renewed again: 409 names the renewal and its serial (refused, 3).
    const again = await run(["renew", "--cert", b.crt, "--key", b.key, "--out-dir", out]);
    expect(again.code, again.err).toBe(3);
    expect(again.err).toContain(`request ${res.id} issued serial ${res.serial}`);
    // Revoking the original names that renewal, which stays valid.
    const rv = await run([
      "revoke",
      "--cert",
      b.crt,
      "--reason",
      "keyCompromise",
      "--admin-token-file",
      join(ca.dir, "admin.token"),
    ]);
    expect(rv.code, rv.err).toBe(0);
    expect(rv.out).toMatch(new RegExp(`renewals ${res.serial} .*NOT revoked; revoke them too`));

    const b2 = await request("rekeyme.example.internal");
    const rekeyDir = sb.tempDir("tca-rekeyed-");
    const k = await run(["renew", "--cert", b2.crt, "--key", b2.key, "--out-dir", rekeyDir, "--rekey"]);
    expect(k.code, k.err).toBe(0);
    const newKey = join(rekeyDir, "rekeyme.example.internal.key");
    expect(statSync(newKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(newKey, "utf8")).not.toBe(readFileSync(b2.key, "utf8"));
    const newCrt = join(rekeyDir, "rekeyme.example.internal.crt");
    expect(pubkeyOf(newCrt)).toBe(openssl(["pkey", "-in", newKey, "-pubout"]).trim());
    expect(pubkeyOf(newCrt)).not.toBe(pubkeyOf(b2.crt));
  });

  it("a key that is not the certificate's is a usage error; so is --exec without --daemon", async () => {
    const c = await request("other.example.internal");
    const d = await request("another.example.internal");
    const wrong = await run(["renew", "--cert", c.crt, "--key", d.key]);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/is not the key of the certificate/);
    const exec = await run(["renew", "--cert", c.crt, "--key", c.key, "--exec", "true"]);
    expect(exec.code).toBe(2);
    const pid1 = await run(["renew", "--cert", c.crt, "--key", c.key, "--daemon", "--signal", "1:HUP"]);
    expect(pid1.code).toBe(2);
    expect(pid1.err).toMatch(/--signal: 1 is not a process to signal/);
    // A combined PEM (certificate and key in one file) is refused, and left as it was.
    const combined = join(dir, "combined.pem");
    writeFileSync(combined, readFileSync(c.crt, "utf8") + readFileSync(c.key, "utf8"), { mode: 0o600 });
    const before = readFileSync(combined, "utf8");
    const same = await run(["renew", "--cert", combined, "--key", combined]);
    expect(same.code).toBe(2);
    expect(same.err).toMatch(/--cert and --key are the same file/);
    expect(readFileSync(combined, "utf8")).toBe(before);
    expect(statSync(combined).mode & 0o777).toBe(0o600);
    // Renewed in place, a certificate kept private stays so (its mode is kept, never widened).
    chmodSync(c.crt, 0o600);
    const inPlace = await run(["renew", "--cert", c.crt, "--key", c.key]);
    expect(inPlace.code, inPlace.err).toBe(0);
    expect(statSync(c.crt).mode & 0o777).toBe(0o600);
    expect(statSync(c.key).mode & 0o777).toBe(0o600);
  });

  it("--daemon renews at --renew-at of the lifetime, runs --exec after each renewal, and stops cleanly on SIGTERM", async () => {
    const orig = await request("daemon.example.internal");
    const out = sb.tempDir("tca-daemon-");
    const marker = join(out, "renewed.log");
    const p = sb.tca(
      [
        "renew",
        "--cert",
        orig.crt,
        "--key",
        orig.key,
        "--out-dir",
        out,
        "--daemon",
        "--renew-at",
        "0.001",
        "--exec",
        `echo "$TCA_SERIAL" >> ${marker}`,
      ],
      { TCA_COORDINATOR: ca.url },
    );
    await p.waitFor(/--exec exited with 0/, 60_000);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr).toMatch(
      /stopped by SIGTERM: the renewal daemon for .*daemon\.example\.internal\.crt after [1-9]\d* renewal/,
    );
    const lines = readFileSync(marker, "utf8").trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toMatch(/^[0-9a-f]+$/);
    expect(lines).toContain(serialOf(join(out, "daemon.example.internal.crt")));
    expect(lines).not.toContain(serialOf(orig.crt));
  });
  it("agents approve a renewal of a certificate they approved, under renewals: approveIfApprovedOriginal alone", async () => {
    const orig = await request("agentrenew.example.internal");
    await stopAgents();
    await startAgents(POLICY_RENEWALS_ONLY);
    // A new request is now left for a person...
    const fresh = await run([
      "request",
      "fresh.example.internal",
      "--no-wait",
      "--json",
      "--token-file",
      join(ca.dir, "requester.token"),
      "--key-out",
      join(dir, "fresh.key"),
    ]);
    expect(fresh.code, fresh.err).toBe(0);
    const freshId = (JSON.parse(fresh.out) as { id: string }).id;
    // ...but a renewal of a certificate they approved is approved and issued.
    const out = sb.tempDir("tca-agent-renewed-");
    const r = await run([
      "renew",
      "--cert",
      orig.crt,
      "--key",
      orig.key,
      "--out-dir",
      out,
      "--timeout",
      "60",
    ]);
    expect(r.code, r.err).toBe(0);
    expect(openssl(["verify", "-CAfile", ca.rootPath, join(out, "agentrenew.example.internal.crt")])).toMatch(
      /OK/,
    );
    expect(agents.map((a) => a.stdout).join("")).toMatch(/renewal of [0-9a-f]+, a certificate I approved/);
    expect((await requestView(ca, freshId)).status).toBe("pending");
  });
});
