// The offline verifier of the audit chain (docs/audit.md, "Verifying") on chains a real in-process CA
// writes, and on synthetic ones re-chained from them: approvals under two ca-config digests (an edit
// and a restart between them) still count; a serial is used by one request only; a long chain with
// many jobs and revocations verifies.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes, randomUUID } from "node:crypto";
import { sha256Hex } from "../../src/common/hash.ts";
import { listAudit } from "../../src/coordinator/audit/log.ts";
import { chainEntry, verifyAuditChain, type AuditEntry } from "../../src/protocol/audit.ts";
import { approval, exchangeUntil, makeCsr, readyCa, type InProcessCa } from "../helpers/in-process-ca.ts";

let ca: InProcessCa;

async function chainOf(): Promise<AuditEntry[]> {
  return listAudit(ca.services.store, 0, 1_000_000);
}

interface Draft {
  at: string;
  kind: AuditEntry["kind"];
  subject?: string;
  body: unknown;
}

/** The chain re-linked from scratch: seq, prev and hash recomputed (what a careful forger does). */
function rechain(entries: readonly Draft[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const e of entries)
    out.push(chainEntry(out.at(-1) ?? null, { at: e.at, kind: e.kind, subject: e.subject, body: e.body }));
  return out;
}

const lastCeremonyIndex = (chain: readonly AuditEntry[]): number =>
  chain.reduce((last, e, i) => (e.kind === "ceremony" ? i : last), -1);

const verify = (entries: readonly unknown[]) => verifyAuditChain(entries, { config: ca.config.config });

beforeAll(async () => {
  ca = await readyCa();
}, 60_000);
afterAll(async () => {
  await ca?.close();
});

describe("approvals under two ca-config digests", () => {
  it("count towards the threshold: the chain of a certificate approved across a ca-config edit verifies", async () => {
    const r = ca.services.requests;
    const v = await r.submit({
      requester: r.requesterFor("dev"),
      profile: "server",
      csr: await makeCsr(["edit.example.internal"]),
    });
    const digest = ca.config.digest;
    try {
      await r.decide(v.id, approval(ca, "alice", v));
      // As after a ca-config edit and a restart: bob approves under the new digest.
      ca.config.digest = "ab".repeat(32);
      await r.decide(v.id, approval(ca, "bob", v));
      await exchangeUntil(ca, async () => (await r.view(v.id)).status === "issued");
    } finally {
      ca.config.digest = digest;
    }
    const chain = await chainOf();
    const verdict = verify(chain);
    expect(verdict.firstBroken).toBeUndefined();
    expect(verdict).toMatchObject({ ok: true, certificates: 1 });
  }, 60_000);
});

describe("one serial, one certificate", () => {
  it("a second request entry with an earlier request's serial breaks the chain there", async () => {
    const chain = await chainOf();
    const k = chain.findIndex((e) => e.kind === "request");
    expect(k).toBeGreaterThanOrEqual(0);
    const first = chain[k]!;
    const twin = {
      ...first,
      subject: randomUUID(),
      body: structuredClone(first.body) as Record<string, unknown>,
    };
    twin.body.requestId = twin.subject;
    const forged = rechain([...chain, twin]);
    expect(verify(chain).ok).toBe(true);
    const v = verify(forged);
    expect(v.firstBroken).toEqual({
      seq: chain.length + 1,
      reason: `serial ${(first.body as { serial: string }).serial} is already request ${(first.body as { requestId: string }).requestId}'s`,
    });
  });
});

describe("a chain that began after the CA did (an upgraded CA)", () => {
  const revocation = (serial: string) => ({
    at: new Date().toISOString(),
    kind: "revocation" as const,
    subject: serial,
    body: {
      serial,
      requestId: randomUUID(),
      reason: "keyCompromise",
      revokedAt: new Date().toISOString(),
      revokedBy: "admin:admin",
    },
  });

  it("accepts a revocation of a serial it never issued when it has no ceremony entry, with a note", async () => {
    const chain = await chainOf();
    const lastCeremony = lastCeremonyIndex(chain);
    expect(lastCeremony).toBeGreaterThanOrEqual(0);
    const later = rechain([...chain.slice(lastCeremony + 1), revocation("7f".repeat(16))]);
    const v = verifyAuditChain(later, { config: ca.config.config, caPublicKey: ca.caPublicKey! });
    expect(v.firstBroken).toBeUndefined();
    expect(v.ok).toBe(true);
    expect(v.notes).toEqual([
      `1 revocation names a serial that no issuance in the chain carries (first at entry ${later.length}): accepted because the chain has no ceremony entry, so it began after the CA did`,
    ]);
    // A chain with its ceremony: the same revocation breaks it.
    const whole = rechain([...chain, revocation("7f".repeat(16))]);
    expect(verify(whole).firstBroken).toEqual({
      seq: whole.length,
      reason: `revocation of serial ${"7f".repeat(16)}, which no earlier issuance carries`,
    });
    expect(verify(chain).notes).toBeUndefined();
  });

  it("notes, and does not check, the later entries of a request already in flight when it began", async () => {
    const chain = await chainOf();
    const lastCeremony = lastCeremonyIndex(chain);
    // As on a CA upgraded while a request was pending: the chain has its approvals, job, signature
    // and issuance, but not its request entry.
    const later = rechain(chain.slice(lastCeremony + 1).filter((e) => e.kind !== "request"));
    const v = verifyAuditChain(later, { config: ca.config.config, caPublicKey: ca.caPublicKey! });
    expect(v.firstBroken).toBeUndefined();
    expect(v.ok).toBe(true);
    expect(v.certificates).toBe(0);
    expect(v.notes?.some((n) => /about a request or signing job from before the chain began/.test(n))).toBe(
      true,
    );
    // With its ceremony the same gap breaks the chain: nothing is excused in a chain that began with the CA.
    const whole = rechain(chain.filter((e) => e.kind !== "request"));
    expect(verify(whole).firstBroken?.reason).toMatch(/which is not recorded before it/);
  });

  it("still refuses a revocation of a serial the chain requested but did not issue", async () => {
    const chain = await chainOf();
    const lastCeremony = lastCeremonyIndex(chain);
    const serial = (chain.find((e) => e.kind === "request")!.body as { serial: string }).serial;
    const later = chain.slice(lastCeremony + 1).filter((e) => e.kind !== "issuance");
    const forged = rechain([...later, revocation(serial)]);
    const v = verifyAuditChain(forged, { config: ca.config.config, caPublicKey: ca.caPublicKey! });
    expect(v.firstBroken).toEqual({
      seq: forged.length,
      reason: `revocation of serial ${serial}, which no earlier issuance carries`,
    });
  });
});

describe("a long chain", () => {
  it("with 3,000 signing jobs and 1,500 revocations verifies (each job keeps a count, not a copy)", async () => {
    const chain = await chainOf();
    const later = chain.slice(lastCeremonyIndex(chain) + 1);
    const at = new Date().toISOString();
    const more: Draft[] = [];
    for (let k = 0; k < 3_000; k++) {
      const tbs = randomBytes(32).toString("hex");
      const jobId = randomUUID();
      more.push({
        at,
        kind: "signing-job",
        subject: jobId,
        body: {
          jobId,
          kind: "crl",
          subjectRef: `crl-${k + 2}`,
          tbsSha256: sha256Hex(Buffer.from(tbs, "hex")),
          tbs,
          eligible: ca.names,
        },
      });
      if (k % 2 === 0) {
        const serial = randomBytes(16).toString("hex");
        more.push({
          at,
          kind: "revocation",
          subject: serial,
          body: {
            serial,
            requestId: randomUUID(),
            reason: "superseded",
            revokedAt: at,
            revokedBy: "admin:admin",
          },
        });
      }
    }
    const long = rechain([...later, ...more]);
    const v = verifyAuditChain(long, { config: ca.config.config, caPublicKey: ca.caPublicKey! });
    expect(v.firstBroken).toBeUndefined();
    expect(v).toMatchObject({ ok: true, checked: long.length });
    expect(v.notes?.[0]).toMatch(/^1500 revocations name serials/);
  }, 60_000);
});
