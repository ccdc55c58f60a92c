// The audit chain (docs/audit.md) on a real coordinator with in-process custodians: after the key
// ceremony, issuances, a rejection and a revocation, the chain read from GET /api/v1/audit verifies
// offline; then each kind of tampering is reported at the right entry — a flipped byte, a dropped
// entry, a forged approval (re-signed with a key outside the roster, or its TBS hash altered), and
// a certificate with fewer than t approvals (an approval dropped and the hashes after it re-chained,
// so only the count is wrong). Reads are for admins and custodians.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { signReadHeader } from "../../src/protocol/signed-read.ts";
import {
  AuditPageSchema,
  chainEntry,
  parseAuditLines,
  verifyAuditChain,
  type AuditEntry,
} from "../../src/protocol/audit.ts";
import { sealEnvelope, type SignedEnvelope } from "../../src/protocol/envelope.ts";
import { approval, exchangeUntil, makeCsr, startHttpCa, type InProcessCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";
import { auditHead } from "../../src/coordinator/audit/log.ts";

const ADMIN = { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const REQUESTER = { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}` };

let coordinator: RunningCoordinator;
let ca: InProcessCa;
let url: string;
let chain: AuditEntry[];

async function issue(name: string, approvers: string[]): Promise<{ id: string; serial: string }> {
  const r = await fetch(`${url}/api/v1/requests`, {
    method: "POST",
    headers: { ...REQUESTER, "content-type": "application/json" },
    body: JSON.stringify({ csr: await makeCsr([name]), profile: "server" }),
  });
  expect(r.status, await r.clone().text()).toBe(202);
  const { id, serial } = (await r.json()) as { id: string; serial: string };
  const view = await ca.services.requests.view(id);
  for (const who of approvers) await ca.services.requests.decide(id, approval(ca, who, view));
  return { id, serial };
}

async function readAll(headers: Record<string, string> | ((path: string) => Record<string, string>)) {
  const out: AuditEntry[] = [];
  for (;;) {
    const path = `/api/v1/audit?after=${out.at(-1)?.seq ?? 0}&limit=7`;
    const res = await fetch(`${url}${path}`, {
      headers: typeof headers === "function" ? headers(path) : headers,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const page = AuditPageSchema.parse(await res.json());
    if (page.entries.length === 0) return out;
    out.push(...page.entries);
  }
}

/** The chain re-linked from scratch: seq, prev and hash recomputed (what a careful forger does). */
function rechain(entries: readonly AuditEntry[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const e of entries)
    out.push(chainEntry(out.at(-1) ?? null, { at: e.at, kind: e.kind, subject: e.subject, body: e.body }));
  return out;
}

const verify = (entries: readonly unknown[]) => verifyAuditChain(entries, { config: ca.config.config });
const clone = (entries: readonly AuditEntry[]): AuditEntry[] => structuredClone([...entries]);
const indexOf = (kind: string, from = 0) => chain.findIndex((e, i) => i >= from && e.kind === kind);

beforeAll(async () => {
  ({ ca, coordinator, url } = await startHttpCa({ ceremony: true }));
  const a = await issue("api.example.internal", ["alice", "bob"]);
  await exchangeUntil(ca, async () => (await ca.services.requests.view(a.id)).status === "issued");
  const b = await issue("db.example.internal", ["bob", "carol"]);
  await exchangeUntil(ca, async () => (await ca.services.requests.view(b.id)).status === "issued");
  const c = await issue("no.example.internal", []);
  await ca.services.requests.decide(
    c.id,
    approval(ca, "carol", await ca.services.requests.view(c.id), "reject"),
  );
  const rev = await fetch(`${url}/api/v1/certificates/${a.serial}/revoke`, {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ reason: "superseded" }),
  });
  expect(rev.status, await rev.clone().text()).toBe(200);
  await exchangeUntil(ca, async () => ((await ca.services.store.latestCrl())?.number ?? 0) >= 2);
  chain = await readAll(ADMIN);
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
});

describe("the audit chain", () => {
  it("records the ceremony, requests, decisions, jobs, signatures, issuances, the revocation and CRLs", async () => {
    const kinds = chain.map((e) => e.kind);
    for (const k of [
      "ceremony",
      "request",
      "approval",
      "rejection",
      "signing-job",
      "signature",
      "issuance",
      "revocation",
      "crl",
    ])
      expect(kinds, k).toContain(k);
    expect(chain.map((e) => e.seq)).toEqual(chain.map((_, i) => i + 1));
    expect(await auditHead(ca.services.store)).toEqual({ seq: chain.length, hash: chain.at(-1)!.hash });
    // The ceremony's key, proven by all n confirmations, comes before anything it signs.
    const key = chain.findIndex(
      (e) => e.kind === "ceremony" && (e.body as { event: string }).event === "key",
    );
    expect(key).toBeGreaterThanOrEqual(0);
    expect(key).toBeLessThan(indexOf("signature"));
  });

  it("verifies offline: every entry, two certificates", () => {
    expect(verify(chain)).toEqual({
      ok: true,
      checked: chain.length,
      certificates: 2,
      checkpoints: 0,
      head: { seq: chain.length, hash: chain.at(-1)!.hash },
    });
    // The same through the file format.
    const lines = chain.map((e) => JSON.stringify(e)).join("\n") + "\n";
    expect(verify(parseAuditLines(lines)).ok).toBe(true);
  });

  it("is read by a custodian's signed read, not by a requester or anyone", async () => {
    const signed = (path: string) => ({
      authorization: signReadHeader(ca.signers.get("bob")!, "GET", path, Date.now()),
    });
    expect((await readAll(signed)).map((e) => e.hash)).toEqual(chain.map((e) => e.hash));
    expect((await fetch(`${url}/api/v1/audit`, { headers: REQUESTER })).status).toBe(403);
    expect((await fetch(`${url}/api/v1/audit`)).status).toBe(401);
    expect((await fetch(`${url}/api/v1/audit?limit=0`, { headers: ADMIN })).status).toBe(400);
    expect((await fetch(`${url}/api/v1/audit?after=0x1`, { headers: ADMIN })).status).toBe(400);
  });
});

describe("tampering is reported at the right entry", () => {
  it("a flipped byte", () => {
    const k = indexOf("issuance");
    const lines = chain.map((e) => JSON.stringify(e));
    const line = lines[k]!;
    const at = line.indexOf('"certificate":"') + 40;
    lines[k] = line.slice(0, at) + (line[at] === "A" ? "B" : "A") + line.slice(at + 1);
    const v = verify(parseAuditLines(lines.join("\n")));
    expect(v.ok).toBe(false);
    expect(v.firstBroken).toEqual({ seq: k + 1, reason: "its hash does not match its contents" });
    expect(v.checked).toBe(k);
    // A byte that makes the line no longer JSON is named at its place too.
    lines[k] = line.replace("{", "[");
    expect(verify(parseAuditLines(lines.join("\n"))).firstBroken?.seq).toBe(k + 1);
  });

  it("a dropped entry", () => {
    const k = indexOf("approval");
    const v = verify(chain.filter((_, i) => i !== k));
    expect(v.firstBroken).toEqual({
      seq: k + 1,
      reason: `entry ${k + 1} is missing (entry ${k + 2} follows entry ${k})`,
    });
    // The last entries dropped: not detectable without a checkpoint (docs/audit.md).
    expect(verify(chain.slice(0, -2)).ok).toBe(true);
  });

  it("an approval re-signed with a key that is not in the roster", () => {
    const k = indexOf("approval");
    const forged = clone(chain);
    const body = forged[k]!.body as { envelope: SignedEnvelope };
    const header = JSON.parse(Buffer.from(body.envelope.payload, "base64url").toString()) as {
      sender: string;
      scope: string;
      caKeyId: string;
      body: unknown;
    };
    body.envelope = sealEnvelope(
      { name: header.sender, signingSecret: new Uint8Array(randomBytes(32)) },
      {
        type: "approval",
        recipient: "coordinator",
        scope: header.scope,
        caKeyId: header.caKeyId,
        body: header.body,
      },
    );
    const v = verify(rechain(forged));
    expect(v.firstBroken).toEqual({
      seq: k + 1,
      reason: `envelope claiming to be from ${header.sender} has a bad signature`,
    });
    // And by a stranger.
    body.envelope = sealEnvelope(
      { name: "mallory", signingSecret: new Uint8Array(randomBytes(32)) },
      {
        type: "approval",
        recipient: "coordinator",
        scope: header.scope,
        caKeyId: header.caKeyId,
        body: header.body,
      },
    );
    expect(verify(rechain(forged)).firstBroken).toEqual({
      seq: k + 1,
      reason: 'envelope sender "mallory" is not in the roster',
    });
  });

  it("an approval whose TBS hash was altered", () => {
    const k = indexOf("approval");
    const forged = clone(chain);
    const body = forged[k]!.body as { envelope: SignedEnvelope };
    const header = JSON.parse(Buffer.from(body.envelope.payload, "base64url").toString()) as {
      body: { tbsSha256: string };
    };
    header.body.tbsSha256 = "ab".repeat(32);
    body.envelope = { ...body.envelope, payload: Buffer.from(JSON.stringify(header)).toString("base64url") };
    const v = verify(rechain(forged));
    expect(v.firstBroken?.seq).toBe(k + 1);
    expect(v.firstBroken?.reason).toMatch(/bad signature/);
  });

  it("a certificate with fewer than t approvals", () => {
    const issuance = indexOf("issuance");
    const requestId = (chain[issuance]!.body as { requestId: string }).requestId;
    const drop = chain.findIndex((e) => e.kind === "approval" && e.subject === requestId);
    expect(drop).toBeLessThan(issuance);
    const forged = rechain(chain.filter((_, i) => i !== drop));
    const v = verify(forged);
    // The issuance moved up by one.
    expect(v.firstBroken?.seq).toBe(issuance);
    expect(forged[issuance - 1]!.kind).toBe("issuance");
    expect(v.firstBroken?.reason).toMatch(
      /has 1 approval of its TBS before it \((alice|bob)\); 2 are needed/,
    );
  });

  it("a certificate verified under another roster is refused at the first signed statement", () => {
    const other = structuredClone(ca.config.config);
    other.custodians[0]!.signingKey = Buffer.from(randomBytes(32)).toString("base64url");
    const v = verifyAuditChain(chain, { config: other });
    expect(v.ok).toBe(false);
    expect(v.firstBroken!.seq).toBeLessThanOrEqual(indexOf("approval") + 1);
  });
});

describe("tca audit verify (in process)", () => {
  it("prints OK for the exported file and BROKEN at the entry for a tampered one, exit 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tca-audit-"));
    const config = join(dir, "ca-config.yaml");
    writeFileSync(config, toYaml(ca.config.config));
    const good = join(dir, "audit.jsonl");
    writeFileSync(good, chain.map((e) => JSON.stringify(e)).join("\n") + "\n");
    const bad = join(dir, "bad.jsonl");
    writeFileSync(
      bad,
      chain
        .filter((_, i) => i !== 3)
        .map((e) => JSON.stringify(e))
        .join("\n") + "\n",
    );
    const { Command } = await import("commander");
    const { registerAudit } = await import("../../src/cli/commands/audit.ts");
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
    const code = process.exitCode;
    try {
      const program = new Command();
      registerAudit(program);
      await program.parseAsync(["node", "tca", "audit", "verify", good, "--config", config]);
      expect(process.exitCode ?? 0).toBe(0);
      await program.parseAsync(["node", "tca", "audit", "verify", bad, "--config", config]);
      expect(process.exitCode).toBe(3);
    } finally {
      process.stdout.write = write;
      process.exitCode = code;
    }
    expect(out[0]).toBe(`OK: ${chain.length} entries, 2 certificates, 0 checkpoints\n`);
    expect(out[1]).toBe("BROKEN at entry 4: entry 4 is missing (entry 5 follows entry 3)\n");
  });

  it("tca audit export writes the chain page by page to --out, refusing to overwrite without --force", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tca-audit-export-"));
    const token = join(dir, "admin.token");
    writeFileSync(token, `${EXAMPLE_ADMIN_TOKEN}\n`);
    const out = join(dir, "audit.jsonl");
    const { Command } = await import("commander");
    const { registerAudit } = await import("../../src/cli/commands/audit.ts");
    const args = [
      "node",
      "tca",
      "audit",
      "export",
      "--coordinator",
      url,
      "--admin-token-file",
      token,
      "--out",
      out,
    ];
    const stderr = process.stderr.write.bind(process.stderr);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    const code = process.exitCode;
    try {
      const program = new Command();
      registerAudit(program);
      await program.parseAsync(args);
      expect(process.exitCode ?? 0).toBe(0);
      const exported = parseAuditLines(readFileSync(out, "utf8")) as AuditEntry[];
      // Everything up to the head at export time (later tests here append nothing).
      expect(exported.slice(0, chain.length)).toEqual(chain);
      expect(verify(exported).ok).toBe(true);
      expect(existsSync(`${out}.partial`)).toBe(false);
      const again = new Command();
      registerAudit(again);
      await again.parseAsync(args);
      expect(process.exitCode).not.toBe(0);
    } finally {
      process.stderr.write = stderr;
      process.exitCode = code;
    }
  });
});
