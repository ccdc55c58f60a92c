// One certificate from CSR to chain (docs/architecture.md §4): `openssl req` CSRs of every key type → HTTP
// submit → two custodian CLI processes approve → certificates that openssl verifies and that carry a TLS
// handshake.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Sandbox, Proc } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { startDevCa, custodianCli, submitCsr, makeCsr, KEY_ARGS, type DevCa } from "../helpers/dev-ca.ts";

const sb = new Sandbox();
let ca: DevCa;
let work: string;
const KEY_TYPES = ["rsa-2048", "p-256", "p-384", "ed25519", "ed448"] as const;
const issued = new Map<string, { leaf: string; key: string; chain: string }>();

beforeAll(async () => {
  ca = await startDevCa(sb);
  work = sb.tempDir();
}, 120_000);
afterAll(() => sb.cleanup());

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

describe("issuance through custodian CLI approvals", () => {
  it("issues RSA-2048, P-256, P-384, Ed25519 and Ed448 certificates that openssl verifies", async () => {
    const ids: string[] = [];
    const keys = new Map<string, string>();
    for (const kt of KEY_TYPES) {
      const host = `${kt}.svc.example.internal`;
      const csr = makeCsr(work, kt, {
        newkey: KEY_ARGS[kt]!,
        subject: `/CN=${host}/O=Example`,
        sans: `DNS:${host},DNS:alt-${host},IP:127.0.0.1`,
      });
      const res = await submitCsr(ca, csr.csrPem, "server");
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      expect(res.body.status).toBe("pending");
      ids.push(res.body.id as string);
      keys.set(res.body.id as string, csr.key);
    }
    // Two custodians, each its own process: approve, stay online, sign.
    const alice = custodianCli(sb, ca, "alice", ["approve", ...ids, "--yes"]);
    await alice.waitFor(new RegExp(`${ids.at(-1)}: approved`));
    const bob = custodianCli(sb, ca, "bob", ["approve", ...ids, "--yes"]);
    expect(await bob.exited, bob.stderr).toBe(0);
    expect(await alice.exited, alice.stderr).toBe(0);
    expect(alice.stderr).toMatch(/1 of 2 approvals…/);
    expect(alice.stderr).toMatch(/signing…|issued/);

    for (const [i, id] of ids.entries()) {
      const kt = KEY_TYPES[i]!;
      const res = await fetch(`${ca.url}/api/v1/requests/${id}/certificate`, {
        headers: { authorization: `Bearer ${ca.token}` },
      });
      expect(res.status).toBe(200);
      const chain = await res.text();
      const certs = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
      expect(certs).toHaveLength(2);
      const leaf = join(work, `${kt}.pem`);
      writeFileSync(leaf, certs[0]!);
      const chainPath = join(work, `${kt}-chain.pem`);
      writeFileSync(chainPath, chain);
      expect(openssl(["verify", "-x509_strict", "-CAfile", ca.rootPath, leaf])).toMatch(/: OK/);
      const text = openssl(["x509", "-in", leaf, "-noout", "-text"]);
      const host = `${kt}.svc.example.internal`;
      expect(text).toMatch(new RegExp(`DNS:${host}, DNS:alt-${host}, IP Address:127.0.0.1`));
      expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
      expect(text).toMatch(/Signature Algorithm: ED25519/);
      expect(text).toMatch(/CA:FALSE/);
      issued.set(kt, { leaf, key: keys.get(id)!, chain: chainPath });
    }
    // The request record says who approved.
    const view = (await (
      await fetch(`${ca.url}/api/v1/requests/${ids[0]}`, { headers: { authorization: `Bearer ${ca.token}` } })
    ).json()) as {
      status: string;
      approvals: { custodian: string }[];
    };
    expect(view.status).toBe("issued");
    expect(view.approvals.map((a) => a.custodian).sort()).toEqual(["alice", "bob"]);
  });

  it("an issued server certificate carries a TLS handshake (openssl s_server / s_client)", async () => {
    const cert = issued.get("p-256");
    expect(cert, "the issuance test must run first").toBeDefined();
    const port = await freePort();
    const server = new Proc(
      spawn(
        "openssl",
        [
          "s_server",
          "-accept",
          String(port),
          "-cert",
          cert!.leaf,
          "-key",
          cert!.key,
          "-naccept",
          "1",
          "-quiet",
        ],
        { stdio: ["pipe", "pipe", "pipe"] },
      ),
    );
    sb.procs.push(server);
    await new Promise((r) => setTimeout(r, 700));
    const out = openssl(
      [
        "s_client",
        "-connect",
        `127.0.0.1:${port}`,
        "-verify_return_error",
        "-CAfile",
        ca.rootPath,
        "-servername",
        "p-256.svc.example.internal",
        "-verify_hostname",
        "p-256.svc.example.internal",
      ],
      "Q\n",
    );
    expect(out).toMatch(/Verify return code: 0 \(ok\)/);
    expect(out).toMatch(/subject=.*CN\s*=\s*p-256\.svc\.example\.internal/);
    server.kill();
  });
});
