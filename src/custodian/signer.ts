// A custodian process's part in signing (docs/signing-pipeline.md). It offers commitments ahead of
// time from its memory-only nonce pool, and signs the tasks whose package names one of them. It
// signs only bytes it derived itself and found equal to what the coordinator proposes (docs/architecture.md
// §3.2). The nonce is taken out of the pool before anything about the package is checked, so a commitment
// serves one package at most, even a refused one (docs/architecture.md §3.6); a restarted process has none.
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { sealEnvelope, type SignedEnvelope, type Signer } from "../protocol/envelope.ts";
import { MAX_OFFERED, type SigningTask } from "../protocol/signing-messages.ts";
import { NoncePool, signShare } from "../threshold/sign.ts";
import { bytesToHex, commitmentFromWire, commitmentKey, hexToBytes } from "../threshold/encoding.ts";
import { identifierForName, type FrostPublic, type FrostSecret } from "../threshold/suite.ts";
import { CustodianError } from "./errors.ts";

/** Re-derives the TBS a task should sign from the custodian's own inputs, or throws REFUSED. */
export type TbsDeriver = (task: SigningTask) => Uint8Array | Promise<Uint8Array>;

/** How long an offered commitment lives (docs/architecture.md §3.6: within minutes). */
const OFFER_TTL_MS = 5 * 60_000;
/** Offers are announced as expiring this much before the nonces do, so no package outlives them. */
const OFFER_EXPIRY_MARGIN_MS = 30_000;
const MAX_HANDLED = 100_000;

export type TaskOutcome =
  | { kind: "signed"; task: SigningTask }
  | { kind: "refused"; task: SigningTask; reason: string }
  | { kind: "lost"; task: SigningTask } // the package names a commitment this process no longer holds
  | { kind: "unrecorded"; task: SigningTask; reason: string }; // computed, but the journal write failed

export interface SignedBatch {
  /** Shares, refusals and at most one withdrawal, to send in the next exchange. */
  envelopes: SignedEnvelope[];
  outcomes: TaskOutcome[];
}

export interface SigningHooks {
  /**
   * Runs for each share after it is computed, before the next task is checked and before any share
   * is sent: the custodian's journal entry for what it is about to release.
   */
  beforeShare?(task: SigningTask): void | Promise<void>;
  /**
   * Runs once after a batch's shares are computed and journaled, before any of them is returned to
   * be sent: the journal's anchor (docs/journal.md). If it throws, no share of the batch leaves.
   */
  beforeRelease?(): void | Promise<void>;
  /** Test seam: lets a test play a custodian that sends a wrong share. The CLI never sets it. */
  tamperShare?(task: SigningTask, share: Uint8Array): Uint8Array;
}

export class SigningParticipant {
  /** This process: its nonces die with it. */
  readonly instance = randomBytes(16).toString("hex");
  readonly #pool: NoncePool;
  /** Keys of commitments offered to the coordinator and not yet seen in a task. */
  readonly #offered = new Set<string>();
  readonly #handled = new Set<string>();
  readonly #me: string;
  #batch = 0;

  constructor(
    private readonly signer: Signer,
    private readonly key: {
      secret: FrostSecret;
      public: FrostPublic;
      caKeyId: string;
      threshold: number;
      roster: string[];
      /** The share's key epoch (docs/key-lifecycle.md); absent means 0. */
      epoch?: number;
    },
    private readonly derivers: Partial<Record<SigningTask["kind"], TbsDeriver>>,
    private readonly hooks: SigningHooks = {},
    /**
     * An agent (the custodian's one long-running process) voids the open offers of the processes it
     * replaces when it starts; a person's CLI beside a running agent must not.
     */
    private readonly supersede = false,
  ) {
    this.#pool = new NoncePool(key.secret, OFFER_TTL_MS, MAX_OFFERED);
    this.#me = signer.name;
  }

  /** Tops the pool up to `target` fresh commitments; the envelope that offers them, if any. */
  offer(target = MAX_OFFERED): SignedEnvelope | undefined {
    const n = Math.min(target, MAX_OFFERED) - this.#pool.size;
    if (n <= 0) return undefined;
    const now = Date.now();
    const commitments = Array.from({ length: n }, () => this.#pool.commit(now));
    for (const c of commitments) this.#offered.add(commitmentKey(c));
    return this.seal("sign/offer", {
      instance: this.instance,
      batch: this.#batch++,
      supersede: this.supersede && this.#batch === 1,
      commitments,
      expiresAt: new Date(now + OFFER_TTL_MS - OFFER_EXPIRY_MARGIN_MS).toISOString(),
      ...(this.key.epoch ? { keyEpoch: this.key.epoch } : {}),
    });
  }

  /**
   * Lines the pool up with the coordinator's answer: a commitment it no longer lists as open, and
   * that no task names, was used in a package this process will never see, or voided: its nonces
   * are wiped now rather than at expiry, so the pool always has room for fresh offers.
   */
  sync(open: readonly string[], tasks: readonly SigningTask[]): number {
    const keep = new Set(open);
    for (const t of tasks) for (const c of t.signingPackage.commitments) keep.add(commitmentKey(c));
    let released = 0;
    for (const key of [...this.#offered]) {
      if (keep.has(key)) continue;
      this.#offered.delete(key);
      if (this.#pool.discard(key)) released++;
    }
    return released;
  }

  /**
   * Signs what it may of these tasks; one task's problem never stops the others. Each share is
   * journaled before the next task is checked, so the checks that read the journal (a serial signed
   * for other bytes, a CRL number that does not increase, the attempt cap) see the tasks earlier in
   * the same batch too (docs/architecture.md §3.2, §3.9).
   */
  async signTasks(
    tasks: readonly SigningTask[],
    decline?: (task: SigningTask) => string | undefined,
  ): Promise<SignedBatch> {
    const envelopes: SignedEnvelope[] = [];
    const outcomes: TaskOutcome[] = [];
    const lost: string[] = [];
    const shares: { envelope: SignedEnvelope; at: number }[] = [];
    const refuse = (task: SigningTask, reason: string) => {
      envelopes.push(this.refusal(task, reason));
      outcomes.push({ kind: "refused", task, reason });
    };
    for (const task of tasks) {
      const slot = `${task.id}/${task.attempt}`;
      if (this.#handled.has(slot)) continue;
      this.remember(slot);
      const mine = task.signingPackage.commitments.find((c) => c.identifier === this.key.secret.identifier);
      // Take the nonces out first: whatever happens next, this commitment is used up.
      const nonces = mine ? this.#pool.take(mine) : undefined;
      if (mine) this.#offered.delete(commitmentKey(mine));
      if (!nonces) {
        // Not ours to sign (expired, from before a restart, or never ours): give it back, never sign.
        if (mine) lost.push(commitmentKey(mine));
        outcomes.push({ kind: "lost", task });
        continue;
      }
      let share: Uint8Array;
      try {
        const reason = decline?.(task) ?? this.packageProblem(task) ?? (await this.derivationProblem(task));
        if (reason) {
          for (const n of [nonces.hiding, nonces.binding]) n.fill(0);
          refuse(task, reason);
          continue;
        }
        share = signShare(
          this.key.secret,
          this.key.public,
          nonces,
          task.signingPackage.commitments.map(commitmentFromWire),
          hexToBytes(task.tbs),
        );
      } catch (e) {
        // A package noble cannot sign (bad points, a wrong commitment for us): refuse, never retry it.
        for (const n of [nonces.hiding, nonces.binding]) n.fill(0);
        refuse(task, `the signing package is invalid: ${(e as Error).message}`);
        continue;
      }
      try {
        // The nonces are spent (signShare zeroed them): waiting for the journal cannot reuse them.
        await this.hooks.beforeShare?.(task);
      } catch (e) {
        // Not on this custodian's own record, so the share never leaves. Nor does a refusal: this is
        // a local fault, not a judgement of the job, and the attempt re-forms after its timeout.
        outcomes.push({ kind: "unrecorded", task, reason: (e as Error).message });
        continue;
      }
      if (this.hooks.tamperShare) share = this.hooks.tamperShare(task, share);
      const envelope = this.seal(
        "sign/share",
        { jobId: task.id, attempt: task.attempt, share: bytesToHex(share) },
        task.id,
      );
      envelopes.push(envelope);
      shares.push({ envelope, at: outcomes.length });
      outcomes.push({ kind: "signed", task });
    }
    if (shares.length > 0) {
      try {
        await this.hooks.beforeRelease?.();
      } catch (e) {
        // Journaled but not anchored: none of these shares leaves (as for a failed journal write).
        const held = new Set(shares.map((s) => s.envelope));
        envelopes.splice(0, envelopes.length, ...envelopes.filter((env) => !held.has(env)));
        for (const { at } of shares)
          outcomes[at] = { kind: "unrecorded", task: outcomes[at]!.task, reason: (e as Error).message };
      }
    }
    if (lost.length > 0)
      envelopes.push(this.seal("sign/withdraw", { instance: this.instance, commitments: lost }));
    return { envelopes, outcomes };
  }

  /** On shutdown: gives back every commitment of this process, so sessions re-form at once. */
  withdrawAll(): SignedEnvelope {
    this.#pool.clear();
    this.#offered.clear();
    return this.seal("sign/withdraw", { instance: this.instance });
  }

  private packageProblem(task: SigningTask): string | undefined {
    const pkg = task.signingPackage;
    const ids = pkg.commitments.map((c) => c.identifier);
    const rosterIds = new Map(this.key.roster.map((n) => [identifierForName(n), n]));
    const epoch = this.key.epoch ?? 0;
    const problems = [
      // An old-epoch share must never be mixed with new ones (docs/key-lifecycle.md "Epochs").
      (pkg.keyEpoch ?? 0) !== epoch &&
        `the signing package is for key epoch ${pkg.keyEpoch ?? 0}; this custodian's share is of epoch ${epoch}`,
      pkg.attempt !== task.attempt && "the signing package belongs to another attempt",
      pkg.commitments.length !== this.key.threshold &&
        `the signing package has ${pkg.commitments.length} commitments, not ${this.key.threshold}`,
      new Set(ids).size !== ids.length && "the signing package names a signer twice",
      ids.some((id) => !rosterIds.has(id)) && "the signing package names an identifier outside the roster",
      pkg.signers.join() !== ids.map((id) => rosterIds.get(id)).join() &&
        "the signing package's signer names do not match its commitments",
    ].filter((p): p is string => typeof p === "string");
    return problems[0];
  }

  /** Re-derives the TBS and compares bytes; why not, or undefined if this task may be signed. */
  private async derivationProblem(task: SigningTask): Promise<string | undefined> {
    const derive = this.derivers[task.kind];
    if (!derive) return `this custodian does not sign ${task.kind} jobs`;
    try {
      const mine = await derive(task);
      if (bytesToHex(mine) !== task.tbs)
        return "the TBS the coordinator proposes differs from the one this custodian derived";
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private refusal(task: SigningTask, reason: string): SignedEnvelope {
    return this.seal("sign/refusal", { jobId: task.id, attempt: task.attempt, reason }, task.id);
  }

  private seal(
    type: "sign/offer" | "sign/share" | "sign/refusal" | "sign/withdraw",
    body: unknown,
    scope = this.instance,
  ): SignedEnvelope {
    return sealEnvelope(this.signer, {
      type,
      recipient: "coordinator",
      scope,
      caKeyId: this.key.caKeyId,
      body,
    });
  }

  private remember(slot: string): void {
    if (this.#handled.size >= MAX_HANDLED) this.#handled.delete(this.#handled.values().next().value!);
    this.#handled.add(slot);
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
    this.#offered.clear();
  }
}

export function refuse(reason: string): never {
  throw new CustodianError("REFUSED", reason);
}
