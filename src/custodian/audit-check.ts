// `tca custodian audit` (docs/audit.md): a custodian compares the coordinator's audit chain with its
// own journal (docs/journal.md). Everything the chain attributes to this custodian is a statement
// signed with its identity key — an approval or rejection, a signature share — and the custodian
// journals each one before it leaves, so one the journal lacks means either the journal lost it or
// the identity key signed something this custodian's software never recorded (a stolen key). The
// custodian's own checkpoints bind the chain from the other side: it signed that entry `seq` had hash
// `head`, so a chain that differs there, or ends before it, was rewritten or cut.
//
// Journal entries the chain lacks are listed too, but as notes: an approval that never reached the
// coordinator (or reached it after the request was decided), a share for an attempt that had moved on,
// or anything from before the audit log began are all ordinary.
import type { LoadedConfig } from "../config/load.ts";
import { ApprovalStatementSchema } from "../protocol/approval.ts";
import {
  AUDIT_PAGE_MAX,
  AuditPageSchema,
  DecisionBodySchema,
  SignatureBodySchema,
  SigningJobBodySchema,
  verifyAuditChain,
  type AuditEntry,
  type AuditVerdict,
} from "../protocol/audit.ts";
import { CheckpointBodySchema, parseCheckpointMessage } from "../protocol/audit-checkpoint.ts";
import { openEnvelope, rosterKeys } from "../protocol/envelope.ts";
import { ShareBodySchema } from "../protocol/signing-messages.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import type { CoordinatorClient } from "./client.ts";
import type { CustodianHome } from "./home.ts";
import type { JournalEntry } from "./journal.ts";
import { caCertificateOf } from "./session.ts";

export interface AuditFinding {
  /** error: the chain and the journal contradict each other; note: worth a look, often benign. */
  severity: "error" | "note";
  kind:
    | "unjournaled-decision"
    | "unjournaled-share"
    | "checkpoint-mismatch"
    | "chain-cut"
    | "lost-in-recovery"
    | "decision-not-in-chain"
    | "share-not-in-chain";
  /** The audit entry concerned, if any. */
  auditSeq?: number;
  /** The journal entry concerned, if any. */
  journalSeq?: number;
  message: string;
}

export interface AuditComparison {
  findings: AuditFinding[];
  /** How much of each side was compared. */
  counts: { decisions: number; shares: number; checkpoints: number; journalEntries: number };
}

/** Allowance for the clocks of the custodian (journal times) and the coordinator (chain times). */
const SKEW_MS = 5 * 60_000;

/**
 * Compares a chain (already checked with verifyAuditChain, or at least parsed) with this custodian's
 * journal. `roster` maps names to identity keys (src/protocol/envelope.ts rosterKeys): only envelopes
 * that verify as this custodian's count as its own.
 */
export function compareJournalWithChain(
  me: string,
  roster: ReadonlyMap<string, string>,
  chain: readonly AuditEntry[],
  journal: readonly JournalEntry[],
  /** Where the full chain broke, when `chain` is only its verified prefix (verdict.firstBroken.seq). */
  o: { brokenAt?: number } = {},
): AuditComparison {
  const findings: AuditFinding[] = [];
  const counts = { decisions: 0, shares: 0, checkpoints: 0, journalEntries: journal.length };
  const mine = (env: unknown) => {
    try {
      const h = openEnvelope(env, roster);
      return h.sender === me ? h : undefined;
    } catch {
      return undefined;
    }
  };

  // What the journal holds, by what the chain looks up.
  const decisions = new Map<string, JournalEntry[]>();
  const shares = new Map<string, JournalEntry[]>();
  const signedCheckpoints: JournalEntry[] = [];
  for (const e of journal) {
    if (e.kind === "approval") decisions.set(e.requestId, [...(decisions.get(e.requestId) ?? []), e]);
    else if (e.kind === "signature" || e.kind === "crl" || e.kind === "checkpoint") {
      if (e.jobId) shares.set(e.jobId, [...(shares.get(e.jobId) ?? []), e]);
      if (e.kind === "checkpoint") signedCheckpoints.push(e);
    }
  }
  // Before a recovery entry, journal entries were lost and accepted as lost (docs/journal.md).
  const recovery = journal.find((e) => e.kind === "recovery");
  const recoveredUntil = recovery ? Date.parse(recovery.at) + SKEW_MS : -Infinity;
  const missing = (
    at: string,
    seq: number,
    kind: "unjournaled-decision" | "unjournaled-share",
    message: string,
  ): void => {
    if (Date.parse(at) <= recoveredUntil)
      findings.push({
        severity: "note",
        kind: "lost-in-recovery",
        auditSeq: seq,
        message: `${message} (before this journal's recovery at ${recovery!.at}: lost with it)`,
      });
    else findings.push({ severity: "error", kind, auditSeq: seq, message });
  };

  const jobs = new Map<string, { kind: string; subjectRef: string; tbsSha256: string; tbs: string }>();
  const decidedInChain = new Set<string>();
  const sharedInChain = new Set<string>();
  for (const e of chain) {
    if (e.kind === "signing-job") {
      const b = SigningJobBodySchema.safeParse(e.body);
      if (b.success) jobs.set(b.data.jobId, b.data);
    } else if (e.kind === "approval" || e.kind === "rejection") {
      const b = DecisionBodySchema.safeParse(e.body);
      const h = b.success ? mine(b.data.envelope) : undefined;
      const st = h ? ApprovalStatementSchema.safeParse(h.body) : undefined;
      if (!st?.success) continue;
      counts.decisions++;
      const s = st.data;
      decidedInChain.add(`${s.requestId}/${s.decision}`);
      const held = (decisions.get(s.requestId) ?? []).some(
        (j) => j.decision === s.decision && j.tbsSha256 === s.tbsSha256,
      );
      if (!held)
        missing(
          e.at,
          e.seq,
          "unjournaled-decision",
          `audit entry ${e.seq}: the coordinator recorded ${s.decision === "approve" ? "an approval" : "a rejection"} of request ` +
            `${s.requestId} (TBS ${s.tbsSha256.slice(0, 16)}…) by me that my journal does not have`,
        );
    } else if (e.kind === "signature") {
      const b = SignatureBodySchema.safeParse(e.body);
      if (!b.success) continue;
      for (const env of b.data.shares) {
        const h = mine(env);
        const share = h ? ShareBodySchema.safeParse(h.body) : undefined;
        if (!share?.success) continue;
        counts.shares++;
        const { jobId, attempt } = share.data;
        sharedInChain.add(`${jobId}/${attempt}`);
        const job = jobs.get(jobId);
        // The root is signed during the key ceremony, which journals nothing (docs/journal.md).
        if (job?.kind === "root") continue;
        const what = describeJob(job, jobId);
        const held = (shares.get(jobId) ?? []).find(
          (j) => j.attempt === attempt && (!job || j.tbsSha256 === job.tbsSha256),
        );
        if (!held) {
          missing(
            e.at,
            e.seq,
            "unjournaled-share",
            `audit entry ${e.seq}: the coordinator recorded my signature share for ${what} (attempt ${attempt}) that my journal does not have`,
          );
          continue;
        }
        // The same job, but the journal says it signed something else under that number.
        const crlNumber = job?.kind === "crl" ? /^crl-(\d+)$/.exec(job.subjectRef)?.[1] : undefined;
        const cp =
          job?.kind === "checkpoint" ? parseCheckpointMessage(Buffer.from(job.tbs, "hex")) : undefined;
        if ((crlNumber && held.crlNumber !== crlNumber) || (cp && held.auditSeq !== cp.seq))
          findings.push({
            severity: "error",
            kind: "unjournaled-share",
            auditSeq: e.seq,
            journalSeq: held.seq,
            message: `audit entry ${e.seq}: my share for ${what} is journaled for ${held.kind === "crl" ? `CRL number ${held.crlNumber}` : `checkpoint of entry ${held.auditSeq}`}`,
          });
      }
    } else if (e.kind === "checkpoint") {
      if (CheckpointBodySchema.safeParse(e.body).success) counts.checkpoints++;
    }
  }

  // The checkpoints this custodian signed: the chain must hold exactly that head at that place.
  const last = chain.at(-1);
  for (const j of signedCheckpoints) {
    const seq = j.auditSeq ?? 0;
    const entry = chain[seq - 1];
    if ((!entry || entry.seq !== seq) && o.brokenAt !== undefined && seq >= o.brokenAt) {
      // Not withheld: present perhaps, but past the entry that does not verify.
      findings.push({
        severity: "error",
        kind: "chain-cut",
        journalSeq: j.seq,
        message:
          `I signed a checkpoint of audit entry ${seq} (journal entry ${j.seq}), but the coordinator's chain ` +
          `breaks at entry ${o.brokenAt}, at or before it: the checkpoint cannot be compared`,
      });
    } else if (!entry || entry.seq !== seq) {
      findings.push({
        severity: "error",
        kind: "chain-cut",
        journalSeq: j.seq,
        message:
          `I signed a checkpoint of audit entry ${seq} (journal entry ${j.seq}), but the coordinator's chain ` +
          `${last ? `ends at entry ${last.seq}` : "is empty"}: entries were withheld or dropped`,
      });
    } else if (entry.hash !== j.auditHead) {
      findings.push({
        severity: "error",
        kind: "checkpoint-mismatch",
        auditSeq: seq,
        journalSeq: j.seq,
        message:
          `I signed a checkpoint saying audit entry ${seq} has hash ${(j.auditHead ?? "").slice(0, 16)}… (journal entry ${j.seq}), ` +
          `but the coordinator's entry ${seq} has hash ${entry.hash.slice(0, 16)}…: the chain was rewritten`,
      });
    }
  }

  // The other way: what the journal holds and the chain does not (notes), from when the chain begins.
  const since = chain[0] ? Date.parse(chain[0].at) - SKEW_MS : Infinity;
  for (const j of journal) {
    if (Date.parse(j.at) < since) continue;
    if (j.kind === "approval" && j.decision && !decidedInChain.has(`${j.requestId}/${j.decision}`))
      findings.push({
        severity: "note",
        kind: "decision-not-in-chain",
        journalSeq: j.seq,
        message: `journal entry ${j.seq}: my ${j.decision === "approve" ? "approval" : "rejection"} of request ${j.requestId} is not in the chain (never delivered, or refused by the coordinator?)`,
      });
    if (
      (j.kind === "signature" || j.kind === "crl" || j.kind === "checkpoint") &&
      j.jobId &&
      !sharedInChain.has(`${j.jobId}/${j.attempt ?? 0}`)
    )
      findings.push({
        severity: "note",
        kind: "share-not-in-chain",
        journalSeq: j.seq,
        message: `journal entry ${j.seq}: my ${j.kind === "signature" ? `share for serial ${j.serial ?? "?"}` : j.kind === "crl" ? `share for CRL number ${j.crlNumber ?? "?"}` : `checkpoint share of entry ${j.auditSeq ?? "?"}`} (job ${j.jobId}, attempt ${j.attempt ?? 0}) is not in the chain's signature of that job (another attempt completed it, or it has not completed)`,
      });
  }
  return { findings, counts };
}

function describeJob(job: { kind: string; subjectRef: string } | undefined, jobId: string): string {
  if (!job) return `job ${jobId}`;
  if (job.kind === "leaf") return `the certificate of request ${job.subjectRef} (job ${jobId})`;
  if (job.kind === "crl") return `CRL number ${job.subjectRef.replace(/^crl-/, "")} (job ${jobId})`;
  if (job.kind === "checkpoint")
    return `the checkpoint of entry ${job.subjectRef.replace(/^checkpoint-/, "")} (job ${jobId})`;
  return `${job.kind} job ${jobId}`;
}

/** What `tca custodian audit` found: the chain's verdict, and the comparison with the journal. */
export interface CustodianAuditResult {
  custodian: string;
  journal: string;
  entries: number;
  verdict: AuditVerdict;
  findings: AuditFinding[];
  counts: AuditComparison["counts"];
  /** No error finding and a chain that verifies (with `strict`, no note either). */
  consistent: boolean;
}

/**
 * Reads the whole chain from the coordinator (this custodian's signed reads, up to the head the
 * first page names), verifies it against this custodian's own ca-config and pinned CA key, and
 * compares it with the journal.
 */
export async function auditAgainstCoordinator(o: {
  client: Pick<CoordinatorClient, "get">;
  home: CustodianHome;
  config: LoadedConfig;
  strict?: boolean;
}): Promise<CustodianAuditResult> {
  const me = o.home.identity().name;
  const journal = o.home.journal(); // checked against its anchor: a damaged journal stops here
  const entries: AuditEntry[] = [];
  let head: number | undefined;
  for (;;) {
    const after = entries.at(-1)?.seq ?? 0;
    const page = await o.client.get(`/api/v1/audit?after=${after}&limit=${AUDIT_PAGE_MAX}`, AuditPageSchema);
    head ??= page.head?.seq ?? 0;
    const wanted = page.entries.filter((e) => e.seq <= head!);
    entries.push(...wanted);
    if (wanted.length === 0 || (entries.at(-1)?.seq ?? 0) >= head) break;
  }
  const caPublicKey = readCaCert(caCertificateOf(o.home)).publicKeyRaw;
  const verdict = verifyAuditChain(entries, { config: o.config.config, caPublicKey });
  // Compare what verified: past a broken entry the chain proves nothing about this custodian.
  const checked = verdict.ok ? entries : entries.slice(0, verdict.checked);
  const { findings, counts } = compareJournalWithChain(
    me,
    rosterKeys(o.config.config.custodians),
    checked,
    journal.entries(),
    verdict.firstBroken ? { brokenAt: verdict.firstBroken.seq } : {},
  );
  const errors = findings.filter((f) => f.severity === "error" || o.strict).length;
  return {
    custodian: me,
    journal: o.home.journalPath,
    entries: entries.length,
    verdict,
    findings,
    counts,
    consistent: verdict.ok && errors === 0,
  };
}
