// Custodian agents with local policies, revocation and threshold-signed CRLs, a stopped
// agent that loses nothing, and /metrics that counts what happened. Real processes on loopback.
import { storedSerial } from "../../src/x509/serial.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox, type Proc } from "../helpers/processes.ts";
import { startRewritingProxy, rewriteJson } from "../helpers/proxy.ts";
import { openssl } from "../helpers/openssl.ts";
import {
  startDevCa,
  custodianCli,
  submitCsr,
  makeCsr,
  KEY_ARGS,
  requestView,
  type DevCa,
} from "../helpers/dev-ca.ts";
import { buildCrlTbs, type RevocationReason } from "../../src/x509/crl.ts";
import { fromPem } from "../../src/x509/der.ts";
import { bytesToHex } from "../../src/threshold/encoding.ts";

const sb = new Sandbox();
const servers: Server[] = [];
let ca: DevCa;
let work: string;
const agents = new Map<string, Proc>();
const counts = { submitted: 0, issued: 0, carolApprovals: 0 };

const policy = (names: string[]) => `version: 1
autoApprove:
  - name: services
    profiles: [server]
    requesters: [dev]
    names: ${JSON.stringify(names)}
    maxValidityHours: 720
signCrls: true
`;

function startAgent(name: string, coordinator = ca.url): Proc {
  const h = ca.home(name);
  const p = sb.tca(
    [
      "custodian",
      "agent",
      "--home",
      h.home,
      "--passphrase-file",
      h.passphraseFile,
      "--policy",
      join(work, `${name}-policy.yaml`),
      "--coordinator",
      coordinator,
    ],
    { TCA_LOG_LEVEL: "info" },
  );
  agents.set(name, p);
  return p;
}

async function stopAgent(name: string): Promise<Proc> {
  const p = agents.get(name)!;
  p.kill("SIGTERM");
  expect(await p.exited, p.output).toBe(0);
  expect(p.stdout).toMatch(/"msg":"agent stopped"/);
  return p;
}

async function waitUntil<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function submit(host: string): Promise<string> {
  const csr = makeCsr(work, host, {
    newkey: KEY_ARGS["p-256"]!,
    subject: `/CN=${host}`,
    sans: `DNS:${host}`,
  });
  const res = await submitCsr(ca, csr.csrPem, "server");
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  counts.submitted++;
  return res.body.id as string;
}

async function certificate(id: string): Promise<{ path: string; serial: string }> {
  const res = await fetch(`${ca.url}/api/v1/requests/${id}/certificate?wait=30`, {
    headers: { authorization: `Bearer ${ca.token}` },
  });
  expect(res.status).toBe(200);
  const path = join(work, `${id}.pem`);
  writeFileSync(path, (await res.text()).split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
  const serial = ((await requestView(ca, id)) as unknown as { serial: string }).serial;
  return { path, serial };
}

async function currentCrl(): Promise<{ path: string; text: string } | undefined> {
  const res = await fetch(`${ca.url}/crl.pem`);
  if (res.status !== 200) return undefined;
  const path = join(work, `crl-${Date.now()}.pem`);
  writeFileSync(path, await res.text());
  return { path, text: openssl(["crl", "-in", path, "-noout", "-text"]) };
}

const approvers = async (id: string) =>
  ((await requestView(ca, id)) as unknown as { approvals: { custodian: string }[] }).approvals
    .map((a) => a.custodian)
    .sort();

beforeAll(async () => {
  ca = await startDevCa(sb, { args: ["--share-timeout", "5"] });
  work = sb.tempDir();
  // Each custodian decides for itself: alice's agent also takes *.web names, bob's only *.svc ones.
  writeFileSync(
    join(work, "alice-policy.yaml"),
    policy(["*.svc.example.internal", "*.web.example.internal"]),
  );
  writeFileSync(join(work, "bob-policy.yaml"), policy(["*.svc.example.internal"]));
  writeFileSync(join(work, "carol-policy.yaml"), policy(["*.svc.example.internal"]));
  for (const name of ["alice", "bob"]) startAgent(name);
  for (const name of ["alice", "bob"]) await agents.get(name)!.waitFor(/agent started/);
}, 120_000);
afterAll(async () => {
  for (const s of servers) s.close();
  await sb.cleanup();
});

describe("agents, revocation, metrics", () => {
  let svc: { path: string; serial: string };
  let web: { path: string; serial: string };

  it("issues a request inside the agents' policy with no person involved", async () => {
    const id = await submit("api.svc.example.internal");
    svc = await certificate(id);
    counts.issued++;
    expect(openssl(["verify", "-CAfile", ca.rootPath, svc.path])).toMatch(/: OK/);
    expect(await approvers(id)).toEqual(["alice", "bob"]);
    await agents.get("bob")!.waitFor(new RegExp(`"request":"${id}".*"decision":"approve".*matches rule`));
  });

  it("leaves a request outside every agent's policy for a person, and one agent plus one CLI approval issue together", async () => {
    const outside = await submit("db.other.example.org");
    await agents
      .get("alice")!
      .waitFor(
        new RegExp(`"request":"${outside}".*"decision":"skip".*name db.other.example.org matches none`),
      );
    await agents.get("bob")!.waitFor(new RegExp(`"request":"${outside}".*"decision":"skip"`));
    expect((await requestView(ca, outside)).status).toBe("pending");

    const id = await submit("www.web.example.internal");
    await waitUntil(
      async () => ((await approvers(id)).includes("alice") ? true : undefined),
      "alice's agent to approve",
    );
    await agents.get("bob")!.waitFor(new RegExp(`"request":"${id}".*"decision":"skip"`));
    expect((await requestView(ca, id)).status).toBe("pending");
    const carol = custodianCli(sb, ca, "carol", ["approve", id, "--yes"]);
    counts.carolApprovals++;
    expect(await carol.exited, carol.stderr).toBe(0);
    web = await certificate(id);
    counts.issued++;
    expect(await approvers(id)).toEqual(["alice", "carol"]);
    expect((await requestView(ca, outside)).status).toBe("pending");
  });

  it("revokes, and the next threshold-signed CRL makes openssl report the certificate revoked", async () => {
    // Only the owner or an admin may revoke.
    const anonymous = await fetch(`${ca.url}/api/v1/certificates/${svc.serial}/revoke`, { method: "POST" });
    expect(anonymous.status).toBe(401);
    const res = await fetch(`${ca.url}/api/v1/certificates/${svc.serial}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${ca.token}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "keyCompromise" }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const again = await fetch(`${ca.url}/api/v1/certificates/${svc.serial}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${ca.adminToken}` },
    });
    expect(again.status).toBe(409);
    const crl = await waitUntil(async () => {
      const c = await currentCrl();
      return c && /Key Compromise/.test(c.text) ? c : undefined;
    }, "a CRL listing the revoked serial");
    expect(crl.text).toMatch(new RegExp(svc.serial.replace(/^00/, "").toUpperCase()));
    expect(() =>
      openssl(["verify", "-crl_check", "-CRLfile", crl.path, "-CAfile", ca.rootPath, svc.path]),
    ).toThrow(/certificate revoked/);
    expect(openssl(["verify", "-crl_check", "-CRLfile", crl.path, "-CAfile", ca.rootPath, web.path])).toMatch(
      /: OK/,
    );
    // The certificates point relying parties at this CRL.
    expect(openssl(["x509", "-in", svc.path, "-noout", "-text"])).toContain(`${ca.url}/crl`);
  });

  it("a coordinator that drops an earlier revoked serial from a new CRL gets no signature", async () => {
    // Stop bob's agent so the next CRL cannot complete before carol has looked at it.
    await stopAgent("bob");
    const caDer = fromPem(readFileSync(ca.rootPath, "utf8"), ["CERTIFICATE"]);
    type P = {
      crlNumber: string;
      thisUpdate: string;
      nextUpdate: string;
      entries: { serial: string; revokedAt: string; reason: string }[];
    };
    const { url: proxyUrl, server: proxy } = await startRewritingProxy(
      ca.url,
      rewriteJson<{ tasks: { kind: string; tbs: string; params: P }[] }>(
        "/api/v1/custodians/exchange",
        (json) => {
          for (const job of json.tasks.filter((j) => j.kind === "crl")) {
            job.params.entries = job.params.entries.filter((e) => e.serial !== storedSerial(svc.serial));
            job.tbs = bytesToHex(
              buildCrlTbs({
                caCertDer: caDer,
                crlNumber: BigInt(job.params.crlNumber),
                thisUpdate: new Date(job.params.thisUpdate),
                nextUpdate: new Date(job.params.nextUpdate),
                entries: job.params.entries.map((e) => ({
                  serial: e.serial,
                  revokedAt: new Date(e.revokedAt),
                  reason: e.reason as RevocationReason,
                })),
              }),
            );
          }
        },
        "POST",
      ),
    );
    servers.push(proxy);
    const revoke = await fetch(`${ca.url}/api/v1/certificates/${web.serial}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${ca.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "superseded" }),
    });
    expect(revoke.status).toBe(200);
    const carol = startAgent("carol", proxyUrl);
    await carol.waitFor(
      new RegExp(
        `"kind":"crl".*the new CRL drops revoked serial (00)?${svc.serial.replace(/^00/, "")}".*"msg":"refused to sign"`,
      ),
    );
    expect(carol.stdout).not.toMatch(/"kind":"crl".*"signature share sent"/);
    await stopAgent("carol");
  });

  it("an agent stopped with SIGTERM in the middle of a request loses nothing: after restart it completes", async () => {
    // The CRL with both serials completes once bob is back (alice + bob sign it).
    startAgent("bob");
    const crl = await waitUntil(async () => {
      const c = await currentCrl();
      return c && /Superseded/.test(c.text) && /Key Compromise/.test(c.text) ? c : undefined;
    }, "a CRL with both revoked serials");
    expect(() =>
      openssl(["verify", "-crl_check", "-CRLfile", crl.path, "-CAfile", ca.rootPath, web.path]),
    ).toThrow(/certificate revoked/);

    // alice's agent approves a *.web request (1 of 2), then is stopped before anyone else approves.
    const id = await submit("shop.web.example.internal");
    await waitUntil(
      async () => ((await approvers(id)).includes("alice") ? true : undefined),
      "alice's agent to approve",
    );
    await stopAgent("alice");
    const carol = custodianCli(sb, ca, "carol", ["approve", id, "--yes", "--no-wait"]);
    counts.carolApprovals++;
    expect(await carol.exited, carol.stderr).toBe(0);
    expect((await requestView(ca, id)).status).toBe("signing");
    // Restarted, the agent finds the signing job for what it approved; carol signs from the CLI.
    startAgent("alice");
    const sign = custodianCli(sb, ca, "carol", ["sign", id]);
    expect(await sign.exited, sign.stderr).toBe(0);
    const cert = await certificate(id);
    counts.issued++;
    expect(openssl(["verify", "-CAfile", ca.rootPath, cert.path])).toMatch(/: OK/);
  });

  it("/metrics parses as Prometheus text and its counters match what happened", async () => {
    const res = await fetch(`${ca.url}/metrics`, { headers: { authorization: `Bearer ${ca.adminToken}` } });
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await res.text();
    const samples = new Map<string, number>();
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) {
        if (line.startsWith("# TYPE"))
          expect(line).toMatch(/^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/);
        continue;
      }
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
      expect(m, `not Prometheus text: ${line}`).not.toBeNull();
      samples.set(`${m![1]}${m![2] ?? ""}`, Number(m![3]));
    }
    const get = (k: string) => samples.get(k) ?? 0;
    expect(get('tca_requests_submitted_total{profile="server"}')).toBe(counts.submitted);
    expect(get('tca_certificates_issued_total{profile="server"}')).toBe(counts.issued);
    expect(get('tca_requests{status="issued"}')).toBe(counts.issued);
    expect(get('tca_requests{status="pending"}')).toBe(1);
    expect(get('tca_approvals_total{custodian="carol",decision="approve"}')).toBe(counts.carolApprovals);
    expect(get('tca_revocations_total{reason="keyCompromise"}')).toBe(1);
    expect(get('tca_revocations_total{reason="superseded"}')).toBe(1);
    expect(get('tca_signing_failures_total{custodian="carol",kind="refusal"}')).toBe(1);
    expect(get("tca_crls_signed_total")).toBeGreaterThanOrEqual(2);
    expect(get('tca_issuance_seconds_count{profile="server"}')).toBe(counts.issued);
    // Health names every custodian and when it was last heard from.
    const health = (await (
      await fetch(`${ca.url}/api/v1/health`, { headers: { authorization: `Bearer ${ca.adminToken}` } })
    ).json()) as {
      database: string;
      custodians: { name: string; lastContact: string | null }[];
    };
    expect(health.database).toBe("ok");
    expect(health.custodians.map((c) => c.name)).toEqual(["alice", "bob", "carol"]);
    expect(health.custodians.every((c) => c.lastContact !== null)).toBe(true);
  });
});
