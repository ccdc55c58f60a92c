// `tca custodian audit` (docs/audit.md): a custodian compares the coordinator's audit chain with its own
// journal. A journal consistent with the chain is clean; an approval or share the chain attributes to
// this custodian that its journal lacks is an error; a checkpoint it signed that the chain contradicts
// (another head, or a chain that ends before it) is an error; journal entries the chain lacks are notes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256Hex } from "../../src/common/hash.ts";
import { chainEntry, type AuditEntry, type AuditKind } from "../../src/protocol/audit.ts";
import { APPROVAL_DOMAIN, type ApprovalStatement } from "../../src/protocol/approval.ts";
import { sealEnvelope, type Signer } from "../../src/protocol/envelope.ts";
import { Journal } from "../../src/custodian/journal.ts";
import { compareJournalWithChain } from "../../src/custodian/audit-check.ts";

const me: Signer = { name: "alice", signingSecret: new Uint8Array(randomBytes(32)) };
const roster = new Map([
  ["alice", Buffer.from(ed25519.getPublicKey(me.signingSecret)).toString("base64url")],
]);
const caKeyId = "a".repeat(64);
let dir: string;
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tca-custodian-audit-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const journal = () => new Journal(join(dir, `j${n++}.jsonl`), ed25519.getPublicKey(me.signingSecret));

function chainOf(events: { kind: AuditKind; subject?: string; body: unknown }[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const e of events) out.push(chainEntry(out.at(-1) ?? null, { at: new Date().toISOString(), ...e }));
  return out;
}

function decision(requestId: string, tbsSha256: string, d: "approve" | "reject" = "approve") {
  const now = Date.now();
  const body: ApprovalStatement = {
    domain: APPROVAL_DOMAIN,
    caKeyId,
    requestId,
    tbsSha256,
    configDigest: "c".repeat(64),
    builderVersion: "1",
    decision: d,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3_600_000).toISOString(),
  };
  const envelope = sealEnvelope(me, {
    type: "approval",
    recipient: "coordinator",
    scope: requestId,
    caKeyId,
    body,
  });
  return {
    kind: (d === "approve" ? "approval" : "rejection") as AuditKind,
    subject: requestId,
    body: { requestId, custodian: me.name, envelope },
  };
}

function signedJob(jobId: string, requestId: string, tbs: string, attempt = 0) {
  const share = sealEnvelope(me, {
    type: "sign/share",
    recipient: "coordinator",
    scope: jobId,
    caKeyId,
    body: { jobId, attempt, share: "1".repeat(64) },
  });
  return [
    {
      kind: "signing-job" as AuditKind,
      subject: jobId,
      body: {
        jobId,
        kind: "leaf",
        subjectRef: requestId,
        tbsSha256: sha256Hex(Buffer.from(tbs, "hex")),
        tbs,
        eligible: ["alice"],
      },
    },
    {
      kind: "signature" as AuditKind,
      subject: jobId,
      body: { jobId, kind: "leaf", attempt, signers: ["alice"], signature: "2".repeat(128), shares: [share] },
    },
  ];
}

describe("tca custodian audit: the journal against the chain", () => {
  const requestId = randomUUID();
  const tbs = "30" + randomBytes(40).toString("hex");
  const tbsSha256 = sha256Hex(Buffer.from(tbs, "hex"));
  const jobId = randomUUID();

  it("a journal consistent with the chain is clean", () => {
    const j = journal();
    j.append(me.signingSecret, {
      kind: "approval",
      requestId,
      tbsSha256,
      decision: "approve",
      expiresAt: "x",
    });
    j.append(me.signingSecret, { kind: "signature", requestId, tbsSha256, serial: "01", jobId, attempt: 0 });
    const chain = chainOf([decision(requestId, tbsSha256), ...signedJob(jobId, requestId, tbs)]);
    const r = compareJournalWithChain("alice", roster, chain, j.entries());
    expect(r.findings).toEqual([]);
    expect(r.counts).toMatchObject({ decisions: 1, shares: 1 });
  });

  it("an approval in the chain that the journal lacks is reported as an error", () => {
    const j = journal();
    const other = randomUUID();
    j.append(me.signingSecret, {
      kind: "approval",
      requestId,
      tbsSha256,
      decision: "approve",
      expiresAt: "x",
    });
    const chain = chainOf([decision(requestId, tbsSha256), decision(other, tbsSha256)]);
    const r = compareJournalWithChain("alice", roster, chain, j.entries());
    expect(r.findings).toEqual([
      expect.objectContaining({
        severity: "error",
        kind: "unjournaled-decision",
        auditSeq: 2,
        message: expect.stringContaining(
          `the coordinator recorded an approval of request ${other} (TBS ${tbsSha256.slice(0, 16)}…) by me that my journal does not have`,
        ),
      }),
    ]);
  });

  it("an approval of other bytes than the journal's, or a share the journal lacks, is an error", () => {
    const j = journal();
    j.append(me.signingSecret, {
      kind: "approval",
      requestId,
      tbsSha256,
      decision: "approve",
      expiresAt: "x",
    });
    const chain = chainOf([decision(requestId, "f".repeat(64)), ...signedJob(jobId, requestId, tbs)]);
    const r = compareJournalWithChain("alice", roster, chain, j.entries());
    expect(r.findings.filter((f) => f.severity === "error").map((f) => f.kind)).toEqual([
      "unjournaled-decision",
      "unjournaled-share",
    ]);
    expect(r.findings.find((f) => f.kind === "unjournaled-share")!.message).toMatch(
      /my signature share for the certificate of request .* that my journal does not have/,
    );
  });

  it("another custodian's statements are not mine to answer for", () => {
    const bob: Signer = { name: "bob", signingSecret: new Uint8Array(randomBytes(32)) };
    const both = new Map([
      ...roster,
      ["bob", Buffer.from(ed25519.getPublicKey(bob.signingSecret)).toString("base64url")],
    ]);
    const envelope = sealEnvelope(bob, {
      type: "approval",
      recipient: "coordinator",
      scope: requestId,
      caKeyId,
      body: { requestId },
    });
    const chain = chainOf([
      { kind: "approval", subject: requestId, body: { requestId, custodian: "bob", envelope } },
    ]);
    expect(compareJournalWithChain("alice", both, chain, journal().entries()).findings).toEqual([]);
  });

  it("journal entries the chain lacks are notes", () => {
    const j = journal();
    j.append(me.signingSecret, {
      kind: "approval",
      requestId,
      tbsSha256,
      decision: "reject",
      expiresAt: "x",
    });
    const chain = chainOf([{ kind: "request", subject: requestId, body: {} }]);
    const r = compareJournalWithChain("alice", roster, chain, j.entries());
    expect(r.findings).toEqual([
      expect.objectContaining({ severity: "note", kind: "decision-not-in-chain", journalSeq: 0 }),
    ]);
  });

  it("a checkpoint I signed that the chain contradicts, or that lies past its end, is an error", () => {
    const chain = chainOf([decision(requestId, tbsSha256), { kind: "request", subject: "x", body: {} }]);
    const j = journal();
    j.append(me.signingSecret, {
      kind: "approval",
      requestId,
      tbsSha256,
      decision: "approve",
      expiresAt: "x",
    });
    const cp = (auditSeq: number, auditHead: string) =>
      j.append(me.signingSecret, {
        kind: "checkpoint",
        requestId: `checkpoint-${auditSeq}`,
        tbsSha256: "d".repeat(64),
        auditSeq,
        auditHead,
        jobId: randomUUID(),
        attempt: 0,
      });
    cp(1, chain[0]!.hash); // agrees
    cp(2, "e".repeat(64)); // another head
    cp(5, "e".repeat(64)); // past the end
    const errors = compareJournalWithChain("alice", roster, chain, j.entries()).findings.filter(
      (f) => f.severity === "error",
    );
    expect(errors.map((f) => [f.kind, f.auditSeq ?? f.journalSeq])).toEqual([
      ["checkpoint-mismatch", 2],
      ["chain-cut", 3],
    ]);
    expect(errors[1]!.message).toMatch(
      /checkpoint of audit entry 5 .* ends at entry 2: entries were withheld or dropped/,
    );
  });
});
