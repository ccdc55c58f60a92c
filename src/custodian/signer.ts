// A custodian's part in signing sessions. It signs only bytes it re-derived itself and found equal
// to what the coordinator proposes (DESIGN §3.2); nonces come from the memory-only pool and are taken
// out before anything else is checked, so a commitment serves one package at most (DESIGN §3.6).
import { inspect } from "node:util";
import { z } from "zod";
import { sealEnvelope, type Signer } from "../protocol/envelope.ts";
import { SigningJobViewSchema, type SigningJobView } from "../protocol/signing-messages.ts";
import { NoncePool, signShare } from "../threshold/sign.ts";
import { bytesToHex, commitmentFromWire, hexToBytes } from "../threshold/encoding.ts";
import { identifierForName, type FrostPublic, type FrostSecret } from "../threshold/suite.ts";
import type { CoordinatorClient } from "./client.ts";
import { CustodianError } from "./errors.ts";

/** Re-derives the TBS a job should sign from the custodian's own inputs, or throws REFUSED. */
export type TbsDeriver = (job: SigningJobView) => Uint8Array | Promise<Uint8Array>;

export type StepOutcome = "idle" | "committed" | "signed" | "refused" | "finished";

export interface SigningEvents {
  onRefused?(job: SigningJobView, reason: string): void;
  onSigned?(job: SigningJobView): void;
  /** Runs after the share is computed and before it is sent: the custodian's journal entry. */
  beforeShare?(job: SigningJobView): void | Promise<void>;
  /** Test seam: lets a test play a custodian that sends a wrong share. The CLI never sets it. */
  tamperShare?(share: Uint8Array): Uint8Array;
}

export class SigningParticipant {
  readonly #pool: NoncePool;
  readonly #committed = new Map<string, number>();
  readonly #handled = new Set<string>();
  readonly #me: string;

  constructor(
    private readonly client: CoordinatorClient,
    private readonly signer: Signer,
    private readonly key: {
      secret: FrostSecret;
      public: FrostPublic;
      caKeyId: string;
      threshold: number;
      roster: string[];
    },
    private readonly derivers: Record<string, TbsDeriver>,
    private readonly events: SigningEvents = {},
  ) {
    this.#pool = new NoncePool(key.secret);
    this.#me = signer.name;
  }

  async jobs(): Promise<SigningJobView[]> {
    const r = await this.client.get(
      `/api/v1/signing/jobs?custodian=${encodeURIComponent(this.#me)}`,
      z.object({ jobs: z.array(SigningJobViewSchema) }),
    );
    return r.jobs;
  }

  async job(id: string): Promise<SigningJobView> {
    return this.client.get(`/api/v1/signing/jobs/${encodeURIComponent(id)}`, SigningJobViewSchema);
  }

  /** Advances one job by at most one message. */
  async step(job: SigningJobView): Promise<StepOutcome> {
    if (job.status !== "signing" || job.excluded.includes(this.#me) || !job.eligible.includes(this.#me))
      return "finished";
    const pkg = job.signingPackage;
    const slot = `${job.id}/${job.attempt}`;
    if (pkg && pkg.attempt === job.attempt && pkg.signers.includes(this.#me)) {
      if (this.#handled.has(slot)) return "idle";
      this.#handled.add(slot);
      return this.signPackage(job);
    }
    if (pkg || this.#committed.get(job.id) === job.attempt || job.committed.includes(this.#me)) return "idle";
    // Check before committing, so a job we would refuse does not hold the others up.
    const reason = await this.refusalReason(job);
    if (reason) return this.refuse(job, reason);
    const commitment = this.#pool.commit();
    this.#committed.set(job.id, job.attempt);
    await this.send(job, "sign/commitment", { jobId: job.id, attempt: job.attempt, commitment });
    return "committed";
  }

  private async signPackage(job: SigningJobView): Promise<StepOutcome> {
    const pkg = job.signingPackage!;
    const mine = pkg.commitments.find((c) => c.identifier === this.key.secret.identifier);
    // Take the nonces out first: whatever happens next, this commitment is used up.
    const nonces = mine ? this.#pool.take(mine) : undefined;
    if (!nonces) return "idle"; // not our commitment (or already used, or from before a restart): never sign
    const ids = pkg.commitments.map((c) => c.identifier);
    const rosterIds = new Map(this.key.roster.map((n) => [identifierForName(n), n]));
    const problems = [
      pkg.commitments.length !== this.key.threshold &&
        `the signing package has ${pkg.commitments.length} commitments, not ${this.key.threshold}`,
      new Set(ids).size !== ids.length && "the signing package names a signer twice",
      ids.some((id) => !rosterIds.has(id)) && "the signing package names an identifier outside the roster",
      pkg.signers.join() !== ids.map((id) => rosterIds.get(id)).join() &&
        "the signing package's signer names do not match its commitments",
    ].filter(Boolean);
    const reason = problems[0] || (await this.refusalReason(job));
    if (reason) {
      for (const n of [nonces.hiding, nonces.binding]) n.fill(0);
      return this.refuse(job, String(reason));
    }
    const tbs = hexToBytes(job.tbs);
    let share: Uint8Array;
    try {
      share = signShare(
        this.key.secret,
        this.key.public,
        nonces,
        pkg.commitments.map(commitmentFromWire),
        tbs,
      );
    } catch (e) {
      // A package noble cannot sign (bad points, wrong commitment for us): refuse, never retry it.
      return this.refuse(job, `the signing package is invalid: ${(e as Error).message}`);
    }
    // The nonces are already spent (signShare zeroed them), so waiting here cannot reuse them.
    await this.events.beforeShare?.(job);
    if (this.events.tamperShare) share = this.events.tamperShare(share);
    await this.send(job, "sign/share", { jobId: job.id, attempt: job.attempt, share: bytesToHex(share) });
    this.events.onSigned?.(job);
    return "signed";
  }

  /** Re-derives the TBS and compares bytes; returns why not, or undefined if this job may be signed. */
  private async refusalReason(job: SigningJobView): Promise<string | undefined> {
    const derive = this.derivers[job.kind];
    if (!derive) return `this custodian does not sign ${job.kind} jobs`;
    try {
      const mine = await derive(job);
      if (bytesToHex(mine) !== job.tbs)
        return "the TBS the coordinator proposes differs from the one this custodian derived";
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private async refuse(job: SigningJobView, reason: string): Promise<StepOutcome> {
    this.events.onRefused?.(job, reason);
    await this.send(job, "sign/refusal", { jobId: job.id, attempt: job.attempt, reason }).catch(
      () => undefined,
    );
    return "refused";
  }

  /**
   * On shutdown: give back commitments this process made but has not signed with, so sessions
   * re-form at once instead of waiting for the coordinator's share timeout. The nonces die here.
   */
  async withdrawAll(): Promise<number> {
    let n = 0;
    for (const [jobId, attempt] of this.#committed) {
      if (this.#handled.has(`${jobId}/${attempt}`)) continue;
      await this.send({ id: jobId }, "sign/withdraw", { jobId, attempt }).catch(() => undefined);
      n++;
    }
    this.#committed.clear();
    this.#pool.clear();
    return n;
  }

  private async send(
    job: Pick<SigningJobView, "id">,
    type: "sign/commitment" | "sign/share" | "sign/refusal" | "sign/withdraw",
    body: unknown,
  ): Promise<void> {
    const env = sealEnvelope(this.signer, {
      type,
      recipient: "coordinator",
      scope: job.id,
      caKeyId: this.key.caKeyId,
      body,
    });
    try {
      await this.client.post(`/api/v1/signing/jobs/${encodeURIComponent(job.id)}/messages`, env, z.unknown());
    } catch (e) {
      // A 409 means the attempt moved on while we spoke; the next poll picks up the new state.
      if ((e as { status?: number }).status !== 409) throw e;
    }
  }

  /** Holds a key share: never print it. */
  toJSON(): string {
    return "<redacted>";
  }
  [inspect.custom](): string {
    return `SigningParticipant(${this.#me}) <redacted>`;
  }

  get pendingNonces(): number {
    return this.#pool.size;
  }

  close(): void {
    this.#pool.clear();
  }
}

export function refuse(reason: string): never {
  throw new CustodianError("REFUSED", reason);
}
