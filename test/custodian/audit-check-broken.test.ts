// `tca custodian audit` on a chain that breaks (docs/audit.md, "Checkpoints"): only the verified prefix
// is compared with the journal, so a checkpoint this custodian signed at or past the broken entry is
// reported as not comparable there, not as entries withheld.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { chainEntry, type AuditEntry } from "../../src/protocol/audit.ts";
import type { Signer } from "../../src/protocol/envelope.ts";
import { Journal } from "../../src/custodian/journal.ts";
import { compareJournalWithChain } from "../../src/custodian/audit-check.ts";

const me: Signer = { name: "alice", signingSecret: new Uint8Array(randomBytes(32)) };
const roster = new Map([
  ["alice", Buffer.from(ed25519.getPublicKey(me.signingSecret)).toString("base64url")],
]);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tca-custodian-audit-broken-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a checkpoint past the entry where the chain breaks", () => {
  it("is reported as not comparable, not as withheld; one past the end of a whole chain still is withheld", () => {
    const chain: AuditEntry[] = [];
    for (let k = 0; k < 3; k++)
      chain.push(
        chainEntry(chain.at(-1) ?? null, {
          at: new Date().toISOString(),
          kind: "request",
          subject: `r${k}`,
          body: {},
        }),
      );
    const j = new Journal(join(dir, "j.jsonl"), ed25519.getPublicKey(me.signingSecret));
    j.append(me.signingSecret, {
      kind: "checkpoint",
      requestId: "checkpoint-5",
      tbsSha256: "d".repeat(64),
      auditSeq: 5,
      auditHead: "e".repeat(64),
      jobId: randomUUID(),
      attempt: 0,
    });
    // The verified prefix: entries 1–3; entry 4 did not verify.
    const broken = compareJournalWithChain("alice", roster, chain, j.entries(), { brokenAt: 4 });
    expect(broken.findings.filter((f) => f.severity === "error")).toEqual([
      expect.objectContaining({
        severity: "error",
        kind: "chain-cut",
        message: expect.stringMatching(
          /checkpoint of audit entry 5 .* breaks at entry 4, at or before it: the checkpoint cannot be compared$/,
        ),
      }),
    ]);
    const whole = compareJournalWithChain("alice", roster, chain, j.entries());
    expect(whole.findings[0]!.message).toMatch(/ends at entry 3: entries were withheld or dropped$/);
  });
});
