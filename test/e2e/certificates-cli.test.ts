// `tca certificates list|show|get|export` against a real `tca dev` CA (agents approve and sign):
// three certificates issued over HTTP, one revoked, then each command as a separate process —
// the table, JSON pages and --all, filters, a readable record, files openssl reads (PEM chain and
// DER leaf), CSV and JSON exports, and errors with the README's exit codes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { KEY_ARGS, makeCsr, startDevCa, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let tokenFile: string;
let adminTokenFile: string;
let work: string;
const serials: Record<string, string> = {};
/** No token or coordinator from the environment running the tests. */
const CLEAN = { TCA_TOKEN: "", TCA_ADMIN_TOKEN: "", TCA_COORDINATOR: "", TCA_CA_FILE: "" };

async function tca(args: string[], env: NodeJS.ProcessEnv = {}) {
  const p = sb.tca(["certificates", ...args], { ...CLEAN, ...env });
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}
const asRequester = () => ["--coordinator", ca.url, "--token-file", tokenFile];
const asAdmin = () => ["--coordinator", ca.url, "--admin-token-file", adminTokenFile];

beforeAll(async () => {
  // No OCSP responder: its certificate would be one more in the admin's inventory (docs/ocsp.md).
  ca = await startDevCa(sb, { agents: true, args: ["--no-ocsp"] });
  tokenFile = join(ca.dir, "requester.token");
  adminTokenFile = join(ca.dir, "admin.token");
  work = sb.tempDir("tca-certs-");
  for (const name of ["alpha", "beta", "gamma"]) {
    const host = `${name}.example.internal`;
    const csr = makeCsr(work, name, {
      newkey: KEY_ARGS["p-256"]!,
      subject: `/CN=${host}`,
      sans: `DNS:${host}`,
    });
    const r = await fetch(`${ca.url}/api/v1/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${ca.token}`, "content-type": "application/json" },
      body: JSON.stringify({ csr: csr.csrPem, profile: "server" }),
    });
    expect(r.status).toBe(202);
    const { id, serial } = (await r.json()) as { id: string; serial: string };
    const cert = await fetch(`${ca.url}/api/v1/requests/${id}/certificate?wait=60`, {
      headers: { authorization: `Bearer ${ca.token}` },
    });
    expect(cert.status, await cert.clone().text()).toBe(200);
    serials[name] = serial;
  }
  const rev = await fetch(`${ca.url}/api/v1/certificates/${serials.gamma}/revoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${ca.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "keyCompromise" }),
  });
  expect(rev.status).toBe(200);
}, 180_000);
afterAll(() => sb.cleanup());

describe("tca certificates", () => {
  it("list prints a table, newest first; --json pages with a cursor; --all follows them", async () => {
    const t = await tca(["list", ...asRequester()]);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^SERIAL\s+CN\s+STATUS\s+NOT AFTER\s+REQUESTER$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).toEqual([
      "gamma.example.internal",
      "beta.example.internal",
      "alpha.example.internal",
    ]);
    expect(lines[1]).toMatch(/revoked/);
    expect(lines[3]).toMatch(
      /^[0-9a-f]+\s+alpha\.example\.internal\s+valid\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+dev$/,
    );

    const first = await tca(["list", ...asRequester(), "--json", "--limit", "2"]);
    const page = JSON.parse(first.stdout) as { certificates: { serial: string }[]; next: string | null };
    expect(page.certificates).toHaveLength(2);
    expect(page.next).toEqual(expect.any(String));
    const rest = await tca(["list", ...asRequester(), "--json", "--limit", "2", "--cursor", page.next!]);
    expect((JSON.parse(rest.stdout) as { certificates: unknown[]; next: null }).next).toBeNull();
    const all = await tca(["list", ...asRequester(), "--json", "--limit", "1", "--all"]);
    const every = (JSON.parse(all.stdout) as { certificates: { serial: string }[] }).certificates;
    expect(every.map((c) => c.serial).sort()).toEqual(
      Object.values(serials)
        .map((s) => s.replace(/^00/, ""))
        .sort(),
    );
  });

  it("list filters: --search, --status, --expiring-within, --requester; admin token and $TCA_TOKEN", async () => {
    const json = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = await tca(["list", "--json", ...args], env);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { certificates: { subject: string; status: string }[] }).certificates;
    };
    expect((await json([...asRequester(), "--search", "BETA"])).map((c) => c.subject)).toEqual([
      "CN=beta.example.internal",
    ]);
    expect((await json([...asAdmin(), "--status", "revoked"])).map((c) => c.subject)).toEqual([
      "CN=gamma.example.internal",
    ]);
    const soon = await json([...asAdmin(), "--expiring-within", "3650d"]);
    expect(soon.map((c) => c.status)).toEqual(["valid", "valid"]);
    expect(await json([...asAdmin(), "--expiring-within", "1h"])).toEqual([]);
    expect(await json([...asAdmin(), "--requester", "nobody"])).toEqual([]);
    expect(await json(["--coordinator", ca.url], { TCA_TOKEN: ca.token })).toHaveLength(3);
    expect(await json([], { TCA_COORDINATOR: ca.url, TCA_ADMIN_TOKEN: ca.adminToken })).toHaveLength(3);
  });

  it("show prints the record; get writes the PEM chain and the DER leaf that openssl reads", async () => {
    const s = await tca(["show", serials.gamma!.toUpperCase(), ...asRequester()]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/^serial\s+[0-9a-f]+$/m);
    expect(s.stdout).toMatch(/^subject\s+CN=gamma\.example\.internal$/m);
    expect(s.stdout).toMatch(/^names\s+dns:gamma\.example\.internal$/m);
    expect(s.stdout).toMatch(/^status\s+revoked$/m);
    expect(s.stdout).toMatch(/^revoked\s+\S+ \(keyCompromise\)$/m);

    const pem = join(work, "alpha.pem");
    const g = await tca(["get", serials.alpha!, "--out", pem, ...asRequester()]);
    expect(g.code, g.stderr).toBe(0);
    expect(readFileSync(pem, "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(openssl(["x509", "-in", pem, "-noout", "-subject"])).toMatch(/CN\s*=\s*alpha\.example\.internal/);
    expect(openssl(["verify", "-CAfile", ca.rootPath, pem])).toMatch(/OK/);
    const der = join(work, "alpha.der");
    const d = await tca(["get", serials.alpha!, "--der", "--out", der, ...asRequester()]);
    expect(d.code, d.stderr).toBe(0);
    expect(openssl(["x509", "-inform", "DER", "-in", der, "-noout", "-serial"]).toLowerCase()).toContain(
      serials.alpha!.replace(/^00/, ""),
    );
    // Without --out the chain goes to stdout; an existing --out is kept unless --force.
    const out = await tca(["get", serials.beta!, ...asRequester()]);
    expect(out.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const again = await tca(["get", serials.alpha!, "--out", pem, ...asRequester()]);
    expect([again.code, again.stderr]).toEqual([2, expect.stringMatching(/exists.*--force/)]);
  });

  it("export writes every certificate as CSV or JSON", async () => {
    const csv = join(work, "all.csv");
    const e = await tca(["export", "--csv", "--out", csv, ...asAdmin()]);
    expect(e.code, e.stderr).toBe(0);
    const rows = readFileSync(csv, "utf8").split("\r\n").filter(Boolean);
    expect(rows[0]).toBe(
      "serial,subject,sans,profile,requester,requestId,notBefore,notAfter,status,revokedAt,reason,keyType",
    );
    expect(rows).toHaveLength(4);
    expect(rows.find((r) => r.includes("gamma"))).toMatch(/,revoked,[^,]+,keyCompromise,ec-p256$/);
    const j = await tca(["export", "--json", "--status", "valid", ...asAdmin()]);
    expect((JSON.parse(j.stdout) as { certificates: unknown[] }).certificates).toHaveLength(2);
  });

  it("fails with the README's exit codes and one line saying what to do", async () => {
    const missing = await tca(["show", "0badc0ffee0badc0ffee", ...asRequester()]);
    expect([missing.code, missing.stderr]).toEqual([
      1,
      expect.stringMatching(/^tca: error: no certificate with serial 0badc0ffee0badc0ffee/),
    ]);
    const noToken = await tca(["list", "--coordinator", ca.url]);
    expect([noToken.code, noToken.stderr]).toEqual([2, expect.stringMatching(/token is needed/)]);
    const badStatus = await tca(["list", ...asRequester(), "--status", "active"]);
    expect(badStatus.code).toBe(2);
    const badDuration = await tca(["list", ...asRequester(), "--expiring-within", "soon"]);
    expect([badDuration.code, badDuration.stderr]).toEqual([2, expect.stringMatching(/30d/)]);
    const badDate = await tca(["list", ...asRequester(), "--expires-before", "tomorrow"]);
    expect([badDate.code, badDate.stderr]).toEqual([1, expect.stringMatching(/expiresBefore/)]);
    writeFileSync(join(work, "wrong.token"), "wrong-token-0123456789abcdef");
    const wrong = await tca(["list", "--coordinator", ca.url, "--token-file", join(work, "wrong.token")]);
    expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringMatching(/token is not valid/)]);
    const away = await tca(["list", "--coordinator", "http://127.0.0.1:9", "--token-file", tokenFile]);
    expect(away.code, away.stderr).toBe(4);
  });
});
