// OCSP end to end (docs/ocsp.md): a real `tca dev` with its agents, whose coordinator runs the OCSP
// responder on a delegated certificate the agents approved. `openssl ocsp` asks about a certificate
// issued by `tca request`: good (and "Response verify OK" against the CA), then revoked with its
// reason after `tca revoke --reason keyCompromise`, unknown for a made-up serial, a nonce echoed; and
// one GET of the base64 request (`-reqout`) with curl, as RFC 5019 §5 clients send it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { startDevCa, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let dir: string;
let leaf: string;

/** `openssl ocsp …` with stdout and stderr together ("Response verify OK" goes to stderr). */
function ocsp(args: string[]): string {
  const r = spawnSync("openssl", ["ocsp", ...args], { encoding: "utf8" });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`openssl ocsp ${args.join(" ")} failed:\n${out}`);
  return out;
}
const ask = (extra: string[] = []) =>
  ocsp(["-issuer", ca.rootPath, "-url", `${ca.url}/ocsp`, "-CAfile", ca.rootPath, "-resp_text", ...extra]);

async function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  const p = sb.tca(args, { TCA_COORDINATOR: ca.url, ...env });
  const code = await p.exited;
  return { code, out: p.stdout, err: p.stderr };
}

beforeAll(async () => {
  ca = await startDevCa(sb, { agents: true });
  dir = sb.tempDir("tca-ocsp-e2e-");
  leaf = join(dir, "svc.crt");
  const r = await run([
    "request",
    "svc.example.internal",
    "--token-file",
    join(ca.dir, "requester.token"),
    "--key-out",
    join(dir, "svc.key"),
    "--cert-out",
    leaf,
    "--chain-out",
    join(dir, "svc.chain.pem"),
  ]);
  expect(r.code, r.err).toBe(0);
}, 150_000);
afterAll(() => sb.cleanup());

describe("OCSP with openssl against tca dev", () => {
  it("the leaf's AIA names the responder; tca dev printed it", () => {
    const aia = openssl(["x509", "-in", leaf, "-noout", "-ext", "authorityInfoAccess"]);
    expect(aia).toContain(`OCSP - URI:${ca.url}/ocsp`);
    expect(aia).toContain(`CA Issuers - URI:${ca.url}/ca.crt`);
    expect(ca.proc.stdout).toContain(`OCSP responder  ${ca.url}/ocsp`);
  });

  it("answers good, verified against the CA through the delegated responder certificate, with the nonce echoed", () => {
    const out = ask(["-cert", leaf, "-nonce"]);
    expect(out).toContain("Response verify OK");
    expect(out).toMatch(/: good$/m);
    expect(out).toMatch(/Cert Status: good/);
    expect(out).toMatch(/OCSP Nonce:\s*\n\s*0410[0-9A-F]{32}/);
    expect(out).not.toMatch(/WARNING: no nonce/);
    expect(out).toMatch(/Subject: CN\s*=\s*tca OCSP responder/);
    expect(out).toMatch(/OCSP Signing/);
    expect(out).toMatch(/OCSP No Check/);
  });

  it("answers unknown for a serial the CA never issued", () => {
    const out = ask(["-serial", "0x7e57ab1e00112233445566778899aabb"]);
    expect(out).toContain("Response verify OK");
    expect(out).toMatch(/: unknown$/m);
  });

  it("answers a GET of the base64 request (RFC 5019 §5), cacheable until nextUpdate", async () => {
    const req = join(dir, "req.der");
    ocsp(["-issuer", ca.rootPath, "-cert", leaf, "-no_nonce", "-reqout", req]);
    const b64 = readFileSync(req).toString("base64");
    const resp = join(dir, "resp.der");
    const curl = spawnSync(
      "curl",
      ["-sS", "-D", "-", "-o", resp, `${ca.url}/ocsp/${encodeURIComponent(b64)}`],
      { encoding: "utf8" },
    );
    expect(curl.status, curl.stderr).toBe(0);
    expect(curl.stdout).toMatch(/content-type: application\/ocsp-response/i);
    expect(curl.stdout).toMatch(/cache-control: max-age=\d+, public, no-transform, must-revalidate/i);
    const out = ocsp([
      "-respin",
      resp,
      "-issuer",
      ca.rootPath,
      "-cert",
      leaf,
      "-CAfile",
      ca.rootPath,
      "-resp_text",
    ]);
    expect(out).toContain("Response verify OK");
    expect(out).toMatch(/: good$/m);
  });

  it("answers revoked with the reason at once after tca revoke --reason keyCompromise", async () => {
    const r = await run([
      "revoke",
      "--cert",
      leaf,
      "--reason",
      "keyCompromise",
      "--admin-token-file",
      join(ca.dir, "admin.token"),
    ]);
    expect(r.code, r.err).toBe(0);
    const out = ask(["-cert", leaf, "-nonce"]);
    expect(out).toContain("Response verify OK");
    expect(out).toMatch(/: revoked$/m);
    expect(out).toMatch(/Reason: keyCompromise/);
    expect(out).toMatch(/Revocation Time: /);
  });
});
