// Checkpoints of the audit chain (docs/audit.md): the coordinator asks the custodians to threshold-sign
// the chain's head; custodians sign a checkpoint only for their own CA and a sequence number above the
// last one they signed (their journal remembers it, as for CRL numbers, docs/architecture.md §3.9); the
// entry verifies offline, and a forged checkpoint signature or a wrong head is named at its entry.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { signEd25519 } from "../../src/common/ed25519.ts";
import { sha256Hex } from "../../src/common/hash.ts";
import {
  CheckpointBodySchema,
  checkpointMessage,
  parseCheckpointMessage,
  type CheckpointParams,
} from "../../src/protocol/audit-checkpoint.ts";
import { auditHash, verifyAuditChain, type AuditEntry } from "../../src/protocol/audit.ts";
import { listAudit } from "../../src/coordinator/audit/log.ts";
import { caKeyIdOf } from "../../src/coordinator/ceremony.ts";
import { Journal } from "../../src/custodian/journal.ts";
import { checkpointTbsDeriver } from "../../src/custodian/checkpoint-check.ts";
import { ExchangeLink } from "../../src/custodian/exchange.ts";
import { SigningParticipant } from "../../src/custodian/signer.ts";
import type { SigningTask } from "../../src/protocol/signing-messages.ts";
import { groupPublicKey } from "../../src/threshold/dkg.ts";
import { hexToBytes } from "../../src/threshold/encoding.ts";
import { CustodianError } from "../../src/custodian/errors.ts";
import { exchangeUntil, newCoordinator, runDkg, type InProcessCa } from "../helpers/in-process-ca.ts";

let ca: InProcessCa;
let dir: string;
const journals = new Map<string, Journal>();

/**
 * Custodians that sign root, leaf and CRL jobs as proposed (the coordinator's domain is under test,
 * as in test/helpers/in-process-ca.ts) and checkpoints with the real custodian check, journaling each
 * checkpoint share before it leaves, as a custodian session does.
 */
async function readyCaWithCheckpointChecks(): Promise<InProcessCa> {
  const c = await newCoordinator(["alice", "bob", "carol"], 2);
  const started = await c.services.ceremonies.start();
  const results = await runDkg(c);
  const groupKey = groupPublicKey(results[0]!.public);
  c.caPublicKey = groupKey;
  c.caKeyId = caKeyIdOf(groupKey);
  for (const [i, name] of c.names.entries()) {
    const signer = c.signers.get(name)!;
    const journal = new Journal(join(dir, `${name}.jsonl`), ed25519.getPublicKey(signer.signingSecret));
    journals.set(name, journal);
    const asProposed = (t: SigningTask) => hexToBytes(t.tbs);
    const participant = new SigningParticipant(
      signer,
      {
        secret: results[i]!.secret,
        public: results[i]!.public,
        caKeyId: c.caKeyId,
        threshold: 2,
        roster: c.names,
      },
      {
        root: asProposed,
        leaf: asProposed,
        crl: asProposed,
        checkpoint: checkpointTbsDeriver(c.caKeyId, journal),
      },
      {
        beforeShare: (task) => {
          if (task.kind !== "checkpoint") return;
          const p = task.params as CheckpointParams;
          journal.append(signer.signingSecret, {
            kind: "checkpoint",
            requestId: task.subjectRef,
            tbsSha256: sha256Hex(hexToBytes(task.tbs)),
            auditSeq: p.seq,
            auditHead: p.head,
            jobId: task.id,
            attempt: task.attempt,
          });
        },
      },
      true,
    );
    const link = new ExchangeLink(
      (body) => c.services.exchange.exchange(body, undefined, body.custodian),
      name,
      participant,
    );
    c.custodians.set(name, { name, signer, participant, link });
  }
  await exchangeUntil(c, async () => (await c.services.ceremonies.view(started.id)).status === "complete");
  return c;
}

const store = () => ca.services.store;
const entries = () => listAudit(store(), 0, 10_000);
const checkpoint = () => store().transaction(() => ca.services.checkpoints.request());

/** Entries with `change` applied to entry `seq`, and every hash from there on recomputed. */
function rechained(list: AuditEntry[], seq: number, change: (e: AuditEntry) => AuditEntry): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const e of list) {
    const prev = out.at(-1)?.hash ?? e.prev;
    let next: AuditEntry = e.seq === seq ? change(structuredClone(e)) : { ...e };
    if (e.seq >= seq) {
      next = { ...next, prev: e.seq === 1 ? next.prev : prev };
      next = { ...next, hash: auditHash(next.prev, next) };
    }
    out.push(next);
  }
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tca-checkpoint-"));
  ca = await readyCaWithCheckpointChecks();
});
afterAll(async () => {
  await ca?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the checkpoint message", () => {
  it("is ASCII text that can never parse as DER (a TBSCertificate or TBSCertList starts with 0x30)", () => {
    const m = checkpointMessage({ caKeyId: "a".repeat(64), seq: 42, head: "b".repeat(64) });
    expect(m[0]).not.toBe(0x30);
    expect(Buffer.from(m).toString("latin1")).toBe(
      `tca/audit-checkpoint/v1\nca=${"a".repeat(64)}\nseq=42\nhead=${"b".repeat(64)}\n`,
    );
    expect(parseCheckpointMessage(m)).toEqual({ caKeyId: "a".repeat(64), seq: 42, head: "b".repeat(64) });
    // One spelling per statement.
    for (const other of [
      `tca/audit-checkpoint/v1\nca=${"a".repeat(64)}\nseq=042\nhead=${"b".repeat(64)}\n`,
      `tca/audit-checkpoint/v1\nca=${"A".repeat(64)}\nseq=42\nhead=${"b".repeat(64)}\n`,
      `tca/audit-checkpoint/v1\nca=${"a".repeat(64)}\nseq=42\nhead=${"b".repeat(64)}`,
      `tca/audit-checkpoint/v1\nca=${"a".repeat(64)}\nseq=0\nhead=${"b".repeat(64)}\n`,
    ])
      expect(parseCheckpointMessage(new TextEncoder().encode(other))).toBeUndefined();
  });
});

describe("a checkpoint signed by the custodians", () => {
  it("is recorded after t custodians sign the head, and verifies offline", async () => {
    const before = await entries();
    const head = before.at(-1)!;
    const asked = await checkpoint();
    expect(asked).toMatchObject({ status: "started", seq: head.seq, head: head.hash });
    // Asking again while it runs starts nothing new.
    expect(await checkpoint()).toMatchObject({ status: "in-progress", jobId: asked.jobId });
    await exchangeUntil(ca, async () => (await entries()).at(-1)?.kind === "checkpoint");
    const chain = await entries();
    const entry = chain.at(-1)!;
    const body = CheckpointBodySchema.parse(entry.body);
    expect(body).toMatchObject({ seq: head.seq, head: head.hash, caKeyId: ca.caKeyId, jobId: asked.jobId });
    expect(body.signers).toHaveLength(2);
    // Those who signed journaled it; the one who did not, did not.
    for (const [name, j] of journals)
      expect(j.lastCheckpoint()?.seq).toBe(body.signers.includes(name) ? head.seq : undefined);
    const verdict = verifyAuditChain(chain, { config: ca.config.config });
    expect(verdict).toMatchObject({ ok: true, checkpoints: 1, checked: chain.length });
    // Nothing appended since: nothing new to sign.
    expect(await checkpoint()).toMatchObject({ status: "current", jobId: null, seq: head.seq });
  });

  it("a later checkpoint vouches for a later head; both verify", async () => {
    await store().transaction(() => ca.services.revocations.scheduleCrl()); // more entries
    await exchangeUntil(ca, async () => (await entries()).at(-1)?.kind === "crl");
    const asked = await checkpoint();
    expect(asked.status).toBe("started");
    await exchangeUntil(ca, async () => (await entries()).at(-1)?.kind === "checkpoint");
    const chain = await entries();
    expect(CheckpointBodySchema.parse(chain.at(-1)!.body).seq).toBe(asked.seq);
    expect(verifyAuditChain(chain, { config: ca.config.config })).toMatchObject({ ok: true, checkpoints: 2 });
  });

  it("a forged checkpoint signature is reported at its entry", async () => {
    const chain = await entries();
    const at = chain.filter((e) => e.kind === "checkpoint")[0]!.seq;
    const forged = rechained(chain, at, (e) => {
      const b = CheckpointBodySchema.parse(e.body);
      const key = randomBytes(32);
      return {
        ...e,
        body: { ...b, signature: Buffer.from(signEd25519(key, checkpointMessage(b))).toString("hex") },
      };
    });
    const v = verifyAuditChain(forged, { config: ca.config.config });
    expect(v.ok).toBe(false);
    expect(v.firstBroken).toMatchObject({
      seq: at,
      reason: expect.stringMatching(/does not verify under the CA key/),
    });
    expect(v.checkpoints).toBe(0);
  });

  it("a checkpoint whose head is not the chain's entry is reported at its entry", async () => {
    const chain = await entries();
    const at = chain.filter((e) => e.kind === "checkpoint")[1]!.seq;
    // The signature is the real one, over the real head: claiming another entry's place breaks it.
    const moved = rechained(chain, at, (e) => {
      const b = CheckpointBodySchema.parse(e.body);
      return { ...e, body: { ...b, seq: b.seq - 1 } };
    });
    const v = verifyAuditChain(moved, { config: ca.config.config });
    expect(v.firstBroken).toMatchObject({ seq: at, reason: expect.stringMatching(/has hash/) });
    // An entry before the checkpoint changed (and the chain re-hashed to hide it): the checkpoint names it.
    const target = CheckpointBodySchema.parse(chain.find((e) => e.seq === at)!.body).seq;
    const rewritten = rechained(chain, target, (e) => ({ ...e, at: new Date(0).toISOString() }));
    const w = verifyAuditChain(rewritten, { config: ca.config.config });
    expect(w.firstBroken).toMatchObject({ seq: at, reason: expect.stringMatching(/has hash/) });
  });
});

describe("a custodian's checkpoint check", () => {
  const task = (p: CheckpointParams, id: string = randomUUID()): SigningTask => ({
    id,
    kind: "checkpoint",
    subjectRef: `checkpoint-${p.seq}`,
    attempt: 0,
    tbs: p.seq > 0 ? Buffer.from(checkpointMessage(p)).toString("hex") : "",
    params: { ...p },
    signingPackage: { attempt: 0, signers: [], commitments: [], formedAt: new Date().toISOString() },
  });
  const signedBy = () => [...journals].find(([, j]) => j.lastCheckpoint())!;

  it("refuses a sequence number not above the last one it signed, and a second head for one number", async () => {
    const [, journal] = signedBy();
    const last = journal.lastCheckpoint()!;
    const derive = checkpointTbsDeriver(ca.caKeyId!, journal);
    const head = "c".repeat(64);
    const refused = async (p: CheckpointParams, id?: string) => {
      try {
        await derive(task(p, id));
        return undefined;
      } catch (e) {
        expect(e).toBeInstanceOf(CustodianError);
        return (e as Error).message;
      }
    };
    expect(await refused({ caKeyId: ca.caKeyId!, seq: last.seq, head })).toMatch(
      /already signed a checkpoint/,
    );
    expect(await refused({ caKeyId: ca.caKeyId!, seq: last.seq - 1, head })).toMatch(/does not increase/);
    // The same bytes in the same job (a re-formed attempt) may be signed again.
    expect(
      await refused({ caKeyId: ca.caKeyId!, seq: last.seq, head: last.head }, last.jobId),
    ).toBeUndefined();
    // Another CA, or parameters that are not a checkpoint's.
    expect(await refused({ caKeyId: "d".repeat(64), seq: last.seq + 1, head })).toMatch(/another CA key/);
    expect(await refused({ caKeyId: ca.caKeyId!, seq: 0, head } as CheckpointParams)).toMatch(/malformed/);
    // Above the last one: signed.
    expect(await refused({ caKeyId: ca.caKeyId!, seq: last.seq + 1, head })).toBeUndefined();
  });

  it("a checkpoint job below the signers' last one is refused through the coordinator", async () => {
    const chain = await entries();
    const last = CheckpointBodySchema.parse(chain.filter((e) => e.kind === "checkpoint").at(-1)!.body);
    // A true statement about an earlier entry: only its number is wrong for these two custodians.
    const first = chain[0]!;
    const p: CheckpointParams = { caKeyId: ca.caKeyId!, seq: first.seq, head: first.hash };
    const jobId = await store().transaction(() =>
      ca.services.signing.createJob({
        kind: "checkpoint",
        subjectRef: `checkpoint-${p.seq}`,
        tbs: checkpointMessage(p),
        params: { ...p },
        eligible: last.signers,
      }),
    );
    const refusals = async () =>
      (await ca.services.signing.record(jobId))!.events.filter((e) => e.kind === "refusal");
    await exchangeUntil(ca, async () => (await refusals()).length > 0);
    // The first refusal ends the attempt (the other signer's answer comes too late for it); the one
    // custodian left cannot sign alone, so the job waits for nobody: cancel it.
    for (const r of await refusals()) {
      expect(last.signers).toContain(r.custodian);
      expect(r.detail).toMatch(/does not increase/);
    }
    await store().transaction(() => ca.services.signing.cancel(jobId, "test over"));
    // No checkpoint entry for it, and the chain still verifies.
    const after = await entries();
    expect(after.filter((e) => e.kind === "checkpoint")).toHaveLength(2);
    expect(verifyAuditChain(after, { config: ca.config.config }).ok).toBe(true);
  });
});
