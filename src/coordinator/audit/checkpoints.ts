// Checkpoints of the audit chain (docs/audit.md, src/protocol/audit-checkpoint.ts): now and then the
// coordinator asks the custodians to threshold-sign the chain's head — every `everyEntries` entries,
// at least every `everyMs` while entries keep coming, and when an admin asks
// (POST /api/v1/audit/checkpoints). A checkpoint is a signing job like a CRL: any t custodians sign
// it, each after its own checks (src/custodian/checkpoint-check.ts). Its signature is verified under
// the CA key before the `checkpoint` entry is appended (docs/architecture.md §3.8), like every job.
//
// One checkpoint job runs at a time. Its state (the job in flight, the last checkpoint) is one meta
// row, read and written inside transaction(), so replicas agree on it as on the CRL state.
import { z } from "zod";
import { verifyEd25519 } from "../../common/ed25519.ts";
import {
  checkpointMessage,
  CheckpointParamsSchema,
  type CheckpointBody,
  type CheckpointParams,
  type CheckpointRequest,
} from "../../protocol/audit-checkpoint.ts";
import type { LoadedConfig } from "../../config/load.ts";
import type { CaMaterial } from "../ca-material.ts";
import { clock } from "../clock.ts";
import { CoordinatorError } from "../errors.ts";
import type { SigningService } from "../signing.ts";
import type { SigningJobRecord, Store } from "../store/types.ts";
import type { AuditEntry } from "../../protocol/audit.ts";
import { appendAudit, auditHead, listAudit } from "./log.ts";

const META_KEY = "audit.checkpoint";

const StateSchema = z
  .object({
    /** The checkpoint job in flight, if any. */
    job: z.string().nullable(),
    /** The last checkpoint recorded: the entry it vouches for, and its own entry. */
    seq: z.number().int().min(0),
    entrySeq: z.number().int().min(0),
    at: z.string().nullable(),
    /** When the last job failed (refused by too many custodians, or its signature did not verify). */
    failedAt: z.string().nullable(),
    /** The head the last job was started for (0: none yet): what its attempt already covers. */
    startedFor: z.number().int().min(0).default(0),
  })
  .strict();
type CheckpointState = z.infer<typeof StateSchema>;
const INITIAL: CheckpointState = { job: null, seq: 0, entrySeq: 0, at: null, failedAt: null, startedFor: 0 };

/**
 * Whether an entry is a checkpoint job's own bookkeeping: its signing-job and signature entries and
 * the checkpoint entry. These move the head but say nothing new a checkpoint would vouch for.
 */
function isCheckpointBookkeeping(e: AuditEntry): boolean {
  if (e.kind === "checkpoint") return true;
  if (e.kind !== "signing-job" && e.kind !== "signature") return false;
  return (e.body as { kind?: unknown } | null)?.kind === "checkpoint";
}

export interface CheckpointOptions {
  /** A checkpoint once this many entries follow the last one (default 1,000). */
  everyEntries?: number;
  /** A checkpoint once the last one (or the chain's first entry) is this old and entries followed (default 1 h). */
  everyMs?: number;
  /** After a failed job, the timer waits this long before it tries again (default 10 min). */
  retryMs?: number;
}

export class CheckpointService {
  #timer: NodeJS.Timeout | undefined;
  readonly #everyEntries: number;
  readonly #everyMs: number;
  readonly #retryMs: number;

  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly signing: SigningService,
    private readonly ca: CaMaterial,
    o: CheckpointOptions = {},
  ) {
    this.#everyEntries = o.everyEntries ?? 1_000;
    this.#everyMs = o.everyMs ?? 3_600_000;
    this.#retryMs = o.retryMs ?? 600_000;
  }

  private async state(): Promise<CheckpointState> {
    const raw = await this.store.getMeta(META_KEY);
    if (!raw) return { ...INITIAL };
    const parsed = StateSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new Error(`corrupt row in the database: meta ${META_KEY}`);
    return parsed.data;
  }
  private async setState(patch: Partial<CheckpointState>): Promise<void> {
    await this.store.setMeta(META_KEY, JSON.stringify({ ...(await this.state()), ...patch }));
  }

  /** The job in flight, if its record still says it is signing. */
  private async inFlight(s: CheckpointState): Promise<SigningJobRecord | undefined> {
    if (!s.job) return undefined;
    const j = await this.signing.record(s.job);
    return j?.status === "signing" && j.kind === "checkpoint" ? j : undefined;
  }

  /**
   * Starts a checkpoint job of the chain's current head, unless one is running or nothing was
   * appended since the last checkpoint. Call inside transaction().
   */
  async request(): Promise<CheckpointRequest> {
    const caKeyId = await this.ca.keyId();
    if (!caKeyId || !(await this.ca.certificate()))
      throw new CoordinatorError(
        "CONFLICT",
        "the CA has no key and root certificate yet: nothing to sign with",
      );
    const s = await this.state();
    const running = await this.inFlight(s);
    if (running) {
      const p = running.params as CheckpointParams;
      return { status: "in-progress", jobId: running.id, seq: p.seq, head: p.head };
    }
    const head = await auditHead(this.store);
    if (!head) throw new CoordinatorError("CONFLICT", "the audit chain is empty: nothing to checkpoint");
    // The head is the last checkpoint's own entry: nothing happened since that a signature would add.
    if (head.seq <= s.entrySeq) return { status: "current", jobId: null, seq: s.seq, head: null };
    const params: CheckpointParams = { caKeyId, seq: head.seq, head: head.hash };
    const jobId = await this.signing.createJob({
      kind: "checkpoint",
      subjectRef: `checkpoint-${head.seq}`,
      tbs: checkpointMessage(params),
      params: { ...params },
      // Any t custodians, as for CRLs: the checkpoint is about the coordinator's record, not a request.
      eligible: this.config.config.custodians.map((c) => c.name),
    });
    await this.setState({ job: jobId, startedFor: head.seq });
    return { status: "started", jobId, seq: head.seq, head: head.hash };
  }

  /**
   * The job ended: verify the signature under the CA key over exactly the message (docs/architecture.md
   * §3.8), then append the `checkpoint` entry. A failed job or a signature that does not verify leaves
   * no entry; the timer tries again later, for the head as it is then.
   */
  async onSigned(job: SigningJobRecord, signature: Uint8Array | null): Promise<void> {
    if (job.kind !== "checkpoint")
      throw new Error(`signing job ${job.id} is a ${job.kind} job, not a checkpoint job`);
    const p = CheckpointParamsSchema.parse(job.params);
    const message = checkpointMessage(p);
    const pub = await this.ca.publicKey();
    const ok =
      signature !== null &&
      pub !== null &&
      Buffer.compare(Buffer.from(message), Buffer.from(job.tbs)) === 0 &&
      verifyEd25519(signature, message, pub);
    const s = await this.state();
    const mine = s.job === job.id;
    if (!ok) {
      if (mine) await this.setState({ job: null, failedAt: clock.iso() });
      return;
    }
    const body: CheckpointBody = {
      caKeyId: p.caKeyId,
      seq: p.seq,
      head: p.head,
      signature: Buffer.from(signature).toString("hex"),
      jobId: job.id,
      signers: job.signingPackage?.signers ?? [],
    };
    const entry = await appendAudit(this.store, { kind: "checkpoint", subject: `checkpoint-${p.seq}`, body });
    await this.setState({
      ...(mine ? { job: null } : {}),
      ...(p.seq > s.seq ? { seq: p.seq, entrySeq: entry.seq, at: entry.at } : {}),
    });
  }

  /**
   * Whether the timer should start a checkpoint now: none running, entries since the last one, and
   * either `everyEntries` of them or `everyMs` since the last one (or since the chain began).
   */
  private async due(now: number): Promise<boolean> {
    const s = await this.state();
    if (await this.inFlight(s)) return false;
    if (s.failedAt && now - Date.parse(s.failedAt) < this.#retryMs) return false;
    const head = await auditHead(this.store);
    if (!head || head.seq <= s.entrySeq) return false;
    // Without custodians that sign (signCheckpoints: false, or people away), an attempt leaves its
    // signing-job entry and moves the head; that alone must not start the next attempt, or an idle
    // CA would add a job and an entry every interval forever.
    if (!(await this.activityAfter(Math.max(s.entrySeq, s.startedFor)))) return false;
    if (head.seq - s.entrySeq >= this.#everyEntries) return true;
    const since = s.at ?? (await listAudit(this.store, 0, 1))[0]?.at;
    return since !== undefined && now - Date.parse(since) >= this.#everyMs;
  }

  /** Whether an entry other than checkpoint bookkeeping follows entry `seq`. */
  private async activityAfter(seq: number): Promise<boolean> {
    for (let after = seq; ;) {
      const page = await listAudit(this.store, after, 100);
      if (page.some((e) => !isCheckpointBookkeeping(e))) return true;
      if (page.length < 100) return false;
      after = page.at(-1)!.seq;
    }
  }

  /**
   * A job that has waited longer than `everyMs` (custodians away) is given up for one of the head as
   * it is now: custodians that signed the old one accept the higher sequence number.
   */
  private async stale(now: number): Promise<void> {
    const s = await this.state();
    const j = await this.inFlight(s);
    if (!j || now - Date.parse(j.createdAt) < this.#everyMs) return;
    await this.signing.cancel(j.id, "superseded by a checkpoint of a later head");
    await this.setState({ job: null });
  }

  /** One check of the timer: give up a stale job, then start a checkpoint if one is due. */
  tick(now = clock.now()): Promise<void> {
    return this.store.transaction(async () => {
      await this.stale(now);
      if (await this.due(now)) await this.request();
    });
  }

  /** Checks every `intervalMs` whether a checkpoint is due, on the lease holder only. */
  startTimer(intervalMs = 60_000, lease?: { held(): Promise<boolean> }): void {
    this.#timer = setInterval(() => {
      void (lease ? lease.held() : Promise.resolve(true))
        .then((mine) => {
          if (!mine) return;
          return this.tick();
        })
        .catch(() => undefined);
    }, intervalMs);
    this.#timer.unref();
  }
  stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
