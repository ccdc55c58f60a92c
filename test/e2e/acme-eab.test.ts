// External account binding (RFC 8555 §7.3.4) with the real lego client against a coordinator whose
// ca-config has no open registration: without EAB lego is refused (externalAccountRequired); with a
// key an admin made for requester `dev`, lego registers and is issued a certificate under dev's grant
// (its names only: anything else is rejectedIdentifier); a key binds one account, once. The
// custodians here are in-process (test/helpers/in-process-ca.ts) and approve whatever is pending,
// so this file tests the binding, not policy (acme-clients.test.ts runs the agents).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Sandbox, EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { startChallTestSrv, type ChallTestSrv } from "../helpers/challtestsrv.ts";
import { approval, exchangeUntil, startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { toPem } from "../../src/x509/der.ts";
import { TestAcmeClient } from "../helpers/acme-client.ts";

const sb = new Sandbox();
let http: HttpCa;
let dns: ChallTestSrv;
let work: string;
let httpPort: number;
let directory: string;
let rootPath: string;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function eabKey(requester: string): Promise<{ keyId: string; hmacKey: string }> {
  const res = await fetch(`${http.url}/api/v1/acme/eab-keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ requester }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { keyId: string; hmacKey: string };
}

function lego(path: string, domain: string, eab?: { keyId: string; hmacKey: string }) {
  return sb.program(
    "lego",
    [
      "--server",
      directory,
      "--accept-tos",
      "--email",
      "eab@example.test",
      "--path",
      path,
      "--domains",
      domain,
      "--http",
      "--http.port",
      `127.0.0.1:${httpPort}`,
      ...(eab ? ["--eab", "--kid", eab.keyId, "--hmac", eab.hmacKey] : []),
      "run",
    ],
    {},
    work,
  );
}

/** While lego runs, the in-process custodians approve and sign every pending request. */
async function approveWhile(running: Promise<number>): Promise<number> {
  let code: number | undefined;
  void running.then((c) => (code = c));
  const { ca } = http;
  while (code === undefined) {
    for (const v of await ca.services.requests.list("pending"))
      if (v.approvals.length === 0)
        for (const name of ["alice", "bob"]) await ca.services.requests.decide(v.id, approval(ca, name, v));
    const signing = await ca.services.requests.list("signing");
    if (signing.length)
      await exchangeUntil(ca, async () => (await ca.services.requests.list("signing")).length === 0);
    await new Promise((r) => setTimeout(r, 200));
  }
  return code;
}

beforeAll(async () => {
  work = sb.tempDir("tca-acme-eab-");
  dns = await startChallTestSrv(sb);
  httpPort = await freePort();
  http = await startHttpCa({
    ceremony: true,
    acme: {
      config: { openRegistration: undefined },
      validation: { httpPort, resolver: dns.resolver },
    },
  });
  directory = `${http.url}/acme/directory`;
  rootPath = join(work, "root.pem");
  writeFileSync(rootPath, toPem((await http.ca.services.caCertificate())!, "CERTIFICATE"));
}, 60_000);

afterAll(async () => {
  await sb.cleanup();
  await http?.ca.close();
});

describe("ACME external account binding with lego", () => {
  it("the directory says an external account is required, and lego without one is refused", async () => {
    const d = (await (await fetch(directory)).json()) as { meta: { externalAccountRequired: boolean } };
    expect(d.meta.externalAccountRequired).toBe(true);
    // lego reads the directory's meta and stops before it sends anything…
    const p = lego(join(work, "no-eab"), "web.example.internal");
    expect(await p.exited).not.toBe(0);
    expect(p.output).toMatch(/requires External Account Binding/);
    // …and a client that sends newAccount anyway is refused, with nothing stored.
    const client = await TestAcmeClient.create(directory);
    const res = await client.register();
    expect(res.status).toBe(400);
    expect((res.body as { type: string }).type).toBe("urn:ietf:params:acme:error:externalAccountRequired");
    expect(client.kid).toBeUndefined();
  }, 60_000);

  it("with a key made for requester dev, lego gets a certificate under dev's grant", async () => {
    const key = await eabKey("dev");
    const path = join(work, "eab");
    const p = lego(path, "web.example.internal", key);
    expect(await approveWhile(p.exited), p.output).toBe(0);
    const crt = join(path, "certificates", "web.example.internal.crt");
    expect(openssl(["verify", "-CAfile", rootPath, crt])).toMatch(/: OK/);
    const [issued] = await http.ca.services.requests.list("issued");
    expect(issued?.requester).toBe("dev");
    // The same key cannot bind a second account.
    const again = lego(join(work, "eab-again"), "web.example.internal", key);
    expect(await again.exited).not.toBe(0);
    expect(again.output).toMatch(/urn:ietf:params:acme:error:unauthorized/);
  }, 90_000);

  it("the grant is enforced: a name outside dev's allowedNames is a rejectedIdentifier", async () => {
    const p = lego(join(work, "eab-outside"), "outside.test", await eabKey("dev"));
    expect(await p.exited).not.toBe(0);
    expect(p.output).toMatch(/rejectedIdentifier/);
    expect(p.output).toMatch(/outside\.test/);
  }, 60_000);
});
