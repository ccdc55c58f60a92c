// Signing sessions (RFC 9591 §5 from the coordinator's seat). One job signs one TBS. Each attempt
// collects fresh commitments from eligible custodians, forms a signing package from the first t,
// gathers t shares, aggregates and verifies. A bad share names its sender, who is excluded; a signer
// that goes quiet (crash, SIGKILL) makes the attempt time out; either way the next attempt starts
// with fresh commitments, and no commitment is ever put in a second package (DESIGN §3.6, §3.7).
import { randomUUID } from "node:crypto";
import type { LoadedConfig } from "../config/load.ts";
import { openEnvelope, rosterKeys, type EnvelopeHeader } from "../protocol/envelope.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  CommitmentBodySchema,
  RefusalBodySchema,
  ShareBodySchema,
  SigningPackageSchema,
  WithdrawBodySchema,
  type SigningJobView,
  type SigningPackage,
} from "../protocol/signing-messages.ts";
import {
  commitmentFromWire,
  hexToBytes,
  publicFromWire,
  PublicPackageWireSchema,
} from "../threshold/encoding.ts";
import { aggregateSignature } from "../threshold/sign.ts";
import { ThresholdError } from "../threshold/errors.ts";
import { identifierForName, isGroupElement, isScalar, type FrostPublic } from "../threshold/suite.ts";
import { CoordinatorError } from "./errors.ts";
import type { SigningJobRecord, Store } from "./store/types.ts";
import type { CoordinatorHooks } from "./hooks.ts";

export interface JobEvent {
  at: string;
  kind: "commitment" | "package" | "share" | "bad-share" | "refusal" | "timeout" | "signed" | "failed";
  custodian?: string;
  detail?: string;
}

export interface NewJob {
  kind: string;
  subjectRef: string;
  tbs: Uint8Array;
  params: Record<string, unknown>;
  eligible: string[];
}

/** What happens when a job ends, per kind (root certificate, leaf certificate, CRL). */
export type JobCompletion = (
  job: SigningJobRecord,
  signature: Uint8Array | null,
  failure?: string,
) => Promise<void>;

export class SigningService {
  readonly #roster: Map<string, string>;
  readonly #completions = new Map<string, JobCompletion>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly opts: { shareTimeoutMs: number; caKeyId: () => Promise<string | null> },
    private readonly hooks: CoordinatorHooks,
  ) {
    this.#roster = rosterKeys(config.config.custodians);
  }

  onComplete(kind: string, fn: JobCompletion): void {
    this.#completions.set(kind, fn);
  }

  /** Re-forms sessions whose signers went quiet. */
  startTimer(intervalMs = 250): void {
    this.#timer = setInterval(() => void this.expireStale().catch(() => undefined), intervalMs);
    this.#timer.unref();
  }
  stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  async createJob(j: NewJob): Promise<string> {
    const id = randomUUID();
    const now = new Date().toISOString();
    await this.store.insertSigningJob({
      id,
      kind: j.kind,
      subjectRef: j.subjectRef,
      tbs: j.tbs,
      params: JSON.stringify(j.params),
      eligible: j.eligible,
      status: "signing",
      attempt: 0,
      signingPackage: null,
      excluded: [],
      events: "[]",
      signature: null,
      createdAt: now,
      updatedAt: now,
    });
    this.hooks.changed();
    return id;
  }

  /** Lets a custodian who approved after the job started take part (not run inside exclusive()). */
  async addEligible(jobId: string, custodian: string): Promise<void> {
    const j = await this.store.getSigningJob(jobId);
    if (!j || j.eligible.includes(custodian)) return;
    await this.store.updateSigningJob(jobId, { eligible: [...j.eligible, custodian] });
  }

  /** Stops a job for good, e.g. when a custodian rejects the request it signs. */
  async cancel(jobId: string, reason: string): Promise<void> {
    const j = await this.store.getSigningJob(jobId);
    if (!j || j.status !== "signing") return;
    await this.store.updateSigningJob(jobId, {
      status: "failed",
      signingPackage: null,
      events: addEvent(j, { kind: "failed", detail: reason }),
    });
  }

  async listFor(custodian: string): Promise<SigningJobView[]> {
    const jobs = await this.store.listSigningJobs("signing");
    const out: SigningJobView[] = [];
    for (const j of jobs)
      if (j.eligible.includes(custodian) && !j.excluded.includes(custodian)) out.push(await this.view(j));
    return out;
  }

  async get(id: string): Promise<SigningJobView> {
    const j = await this.store.getSigningJob(id);
    if (!j) throw new CoordinatorError("NOT_FOUND", `no signing job ${id}`);
    return this.view(j);
  }

  async record(id: string): Promise<SigningJobRecord | undefined> {
    return this.store.getSigningJob(id);
  }

  private async view(j: SigningJobRecord): Promise<SigningJobView> {
    const committed = (await this.store.listMessages(j.id, "sign/commitment", j.attempt)).map(
      (m) => m.sender,
    );
    return {
      id: j.id,
      kind: j.kind,
      subjectRef: j.subjectRef,
      status: j.status,
      attempt: j.attempt,
      tbs: Buffer.from(j.tbs).toString("hex"),
      params: JSON.parse(j.params) as Record<string, unknown>,
      eligible: j.eligible,
      excluded: j.excluded,
      committed,
      signingPackage: j.signingPackage ? SigningPackageSchema.parse(JSON.parse(j.signingPackage)) : null,
    };
  }

  async receive(jobId: string, envelope: unknown): Promise<SigningJobView> {
    return this.store.exclusive(async () => {
      const j = await this.store.getSigningJob(jobId);
      if (!j) throw new CoordinatorError("NOT_FOUND", `no signing job ${jobId}`);
      let h: EnvelopeHeader;
      try {
        h = openEnvelope(envelope, this.#roster, {
          scope: jobId,
          type: ["sign/commitment", "sign/share", "sign/refusal", "sign/withdraw"],
          recipient: "coordinator",
          caKeyId: await this.opts.caKeyId(),
        });
      } catch (e) {
        if (e instanceof ProtocolError)
          throw new CoordinatorError("BAD_REQUEST", e.message, { culprit: e.culprit });
        throw e;
      }
      if (j.status !== "signing")
        throw new CoordinatorError("CONFLICT", `signing job ${jobId} is ${j.status}`);
      if (!j.eligible.includes(h.sender))
        throw new CoordinatorError("FORBIDDEN", `${h.sender} is not a signer for this job`);
      if (j.excluded.includes(h.sender))
        throw new CoordinatorError("FORBIDDEN", `${h.sender} was excluded from this job`);
      const attempt = (h.body as { attempt?: unknown })?.attempt;
      if (attempt !== j.attempt)
        throw new CoordinatorError(
          "CONFLICT",
          `attempt ${String(attempt)} is over; the job is at attempt ${j.attempt}`,
        );
      this.hooks.heard(h.sender, h.type);
      // Validate before storing: a malformed message must change nothing (DESIGN §3.10).
      this.validate(j, h);
      if (h.type === "sign/withdraw") await this.onWithdraw(j, h);
      else {
        await this.storeMessage(h, envelope, j.attempt);
        if (h.type === "sign/commitment") await this.onCommitment(j, h);
        else if (h.type === "sign/share") await this.onShare(j, h);
        else await this.onRefusal(j, h);
      }
      this.hooks.changed();
      return this.get(jobId);
    });
  }

  private validate(j: SigningJobRecord, h: EnvelopeHeader): void {
    const fail = (why: string): never => {
      throw new CoordinatorError("BAD_REQUEST", `${h.type} from ${h.sender} ${why}`, { culprit: h.sender });
    };
    if (h.recipient !== "coordinator") fail("is not addressed to the coordinator");
    if ((h.body as { jobId?: unknown } | null)?.jobId !== j.id) fail("names another job");
    if (h.type === "sign/commitment") {
      const b = CommitmentBodySchema.safeParse(h.body);
      if (!b.success) return fail("is malformed");
      const c = b.data.commitment;
      if (c.identifier !== identifierForName(h.sender)) fail("carries another custodian's identifier");
      if (!isGroupElement(hexToBytes(c.hiding)) || !isGroupElement(hexToBytes(c.binding)))
        fail("carries a commitment that is not a valid group element");
    } else if (h.type === "sign/share") {
      const b = ShareBodySchema.safeParse(h.body);
      if (!b.success) return fail("is malformed");
      if (!isScalar(hexToBytes(b.data.share))) fail("carries a share that is not a canonical scalar");
      const pkg = j.signingPackage ? SigningPackageSchema.parse(JSON.parse(j.signingPackage)) : null;
      if (!pkg || !pkg.signers.includes(h.sender)) {
        throw new CoordinatorError("CONFLICT", `${h.sender} is not in the current signing package`, {
          culprit: h.sender,
        });
      }
    } else {
      const schema = h.type === "sign/refusal" ? RefusalBodySchema : WithdrawBodySchema;
      if (!schema.safeParse(h.body).success) fail("is malformed");
    }
  }

  private async storeMessage(h: EnvelopeHeader, envelope: unknown, attempt: number): Promise<void> {
    const ok = await this.store.insertMessage({
      id: h.id,
      scope: h.scope,
      type: h.type,
      sender: h.sender,
      recipient: h.recipient,
      attempt,
      envelope: JSON.stringify(envelope),
      receivedAt: new Date().toISOString(),
    });
    if (!ok)
      throw new CoordinatorError(
        "CONFLICT",
        `${h.sender} already sent ${h.type} for attempt ${attempt} (or this is a replay)`,
      );
  }

  private async onCommitment(j: SigningJobRecord, h: EnvelopeHeader): Promise<void> {
    const body = CommitmentBodySchema.safeParse(h.body);
    if (!body.success || body.data.commitment.identifier !== identifierForName(h.sender)) {
      throw new CoordinatorError(
        "BAD_REQUEST",
        `commitment from ${h.sender} is malformed or carries another identifier`,
      );
    }
    const events = addEvent(j, { kind: "commitment", custodian: h.sender });
    if (j.signingPackage) return this.store.updateSigningJob(j.id, { events });
    const commitments = await this.openAll(j.id, "sign/commitment", j.attempt);
    const t = this.config.config.threshold;
    if (commitments.length < t) return this.store.updateSigningJob(j.id, { events });
    const chosen = commitments.slice(0, t);
    const pkg: SigningPackage = {
      attempt: j.attempt,
      signers: chosen.map((c) => c.sender),
      commitments: chosen.map((c) => CommitmentBodySchema.parse(c.body).commitment),
      formedAt: new Date().toISOString(),
    };
    await this.store.updateSigningJob(j.id, {
      signingPackage: JSON.stringify(pkg),
      events: pushEvent(events, {
        kind: "package",
        detail: `attempt ${pkg.attempt}: signers ${pkg.signers.join(", ")}; commitments ${pkg.commitments.map((c) => c.hiding.slice(0, 16)).join(", ")}`,
      }),
    });
  }

  private async onShare(j: SigningJobRecord, h: EnvelopeHeader): Promise<void> {
    const body = ShareBodySchema.safeParse(h.body);
    if (!body.success) throw new CoordinatorError("BAD_REQUEST", `share from ${h.sender} is malformed`);
    const pkg = j.signingPackage ? SigningPackageSchema.parse(JSON.parse(j.signingPackage)) : null;
    if (!pkg || !pkg.signers.includes(h.sender))
      throw new CoordinatorError("CONFLICT", `${h.sender} is not in the current signing package`);
    let events = addEvent(j, { kind: "share", custodian: h.sender });
    const shares = await this.openAll(j.id, "sign/share", j.attempt);
    if (shares.length < pkg.signers.length) return this.store.updateSigningJob(j.id, { events });
    const pub = await this.publicPackage();
    const list = pkg.commitments.map(commitmentFromWire);
    const byId = Object.fromEntries(
      shares.map((s) => [identifierForName(s.sender), hexToBytes(ShareBodySchema.parse(s.body).share)]),
    );
    try {
      const signature = aggregateSignature(pub, list, j.tbs, byId);
      events = pushEvent(events, { kind: "signed" });
      await this.store.updateSigningJob(j.id, { status: "done", signature, events });
      try {
        await this.complete({ ...j, status: "done", signature, events }, signature);
      } catch (e) {
        // The signature exists: never roll it back (the TBS would be signed again). Record why
        // publishing failed instead.
        const ev = pushEvent(events, {
          kind: "failed",
          detail: `signed, but publishing failed: ${(e as Error).message}`,
        });
        await this.store.updateSigningJob(j.id, { events: ev });
      }
    } catch (e) {
      if (!(e instanceof ThresholdError)) throw e;
      if (e.culprits.length === 0) {
        // Nobody to blame (e.g. a malformed package): start over with fresh commitments.
        return this.nextAttempt(
          j,
          pushEvent(events, { kind: "failed", detail: `aggregation failed: ${e.message}` }),
          [],
        );
      }
      const culprits = shares
        .filter((s) => e.culprits.includes(identifierForName(s.sender)))
        .map((s) => s.sender);
      for (const c of culprits) {
        events = pushEvent(events, {
          kind: "bad-share",
          custodian: c,
          detail: "signature share does not verify",
        });
        this.hooks.metrics.signingFailures.inc({ custodian: c, kind: "bad-share" });
      }
      await this.nextAttempt(j, events, culprits);
    }
  }

  private async onRefusal(j: SigningJobRecord, h: EnvelopeHeader): Promise<void> {
    const body = RefusalBodySchema.safeParse(h.body);
    if (!body.success) throw new CoordinatorError("BAD_REQUEST", `refusal from ${h.sender} is malformed`);
    const events = addEvent(j, { kind: "refusal", custodian: h.sender, detail: body.data.reason });
    this.hooks.metrics.signingFailures.inc({ custodian: h.sender, kind: "refusal" });
    await this.nextAttempt(j, events, [h.sender]);
  }

  /**
   * A custodian that is shutting down (SIGTERM) gives back its commitment for the current attempt,
   * so the session re-forms now rather than after the share timeout. It is not excluded: after a
   * restart it can take part again with fresh nonces.
   */
  private async onWithdraw(j: SigningJobRecord, h: EnvelopeHeader): Promise<void> {
    const committed = (await this.store.listMessages(j.id, "sign/commitment", j.attempt)).some(
      (m) => m.sender === h.sender,
    );
    if (!committed) return;
    const events = addEvent(j, {
      kind: "timeout",
      custodian: h.sender,
      detail: `${h.sender} withdrew (shutting down)`,
    });
    await this.store.updateSigningJob(j.id, { attempt: j.attempt + 1, signingPackage: null, events });
  }

  private async nextAttempt(j: SigningJobRecord, events: string, exclude: string[]): Promise<void> {
    const excluded = [...new Set([...j.excluded, ...exclude])];
    // Fail only when too few custodians are left who could still take part; otherwise wait for
    // fresh commitments (and, for a leaf, for further approvers).
    const remaining = [...this.#roster.keys()].filter((c) => !excluded.includes(c));
    if (remaining.length < this.config.config.threshold) {
      const failure = `only ${remaining.length} custodians remain who have not been excluded, ${this.config.config.threshold} are needed`;
      const ev = pushEvent(events, { kind: "failed", detail: failure });
      await this.store.updateSigningJob(j.id, {
        status: "failed",
        excluded,
        events: ev,
        signingPackage: null,
      });
      await this.complete({ ...j, status: "failed", excluded, events: ev }, null, failure);
      return;
    }
    await this.store.updateSigningJob(j.id, {
      attempt: j.attempt + 1,
      signingPackage: null,
      excluded,
      events,
    });
  }

  /** A package whose signers have not all answered in time is dropped; a new attempt begins. */
  async expireStale(now = Date.now()): Promise<void> {
    await this.store.exclusive(async () => {
      for (const j of await this.store.listSigningJobs("signing")) {
        if (!j.signingPackage) continue;
        const pkg = SigningPackageSchema.parse(JSON.parse(j.signingPackage));
        if (now - Date.parse(pkg.formedAt) < this.opts.shareTimeoutMs) continue;
        const answered = new Set(
          (await this.store.listMessages(j.id, "sign/share", j.attempt)).map((m) => m.sender),
        );
        const silent = pkg.signers.filter((s) => !answered.has(s));
        const events = addEvent(j, { kind: "timeout", detail: `no share from ${silent.join(", ")}` });
        for (const c of silent) this.hooks.metrics.signingFailures.inc({ custodian: c, kind: "timeout" });
        await this.store.updateSigningJob(j.id, { attempt: j.attempt + 1, signingPackage: null, events });
        this.hooks.changed();
      }
    });
  }

  private async complete(j: SigningJobRecord, signature: Uint8Array | null, failure?: string): Promise<void> {
    const fn = this.#completions.get(j.kind);
    if (fn) await fn(j, signature, failure);
  }

  private async openAll(jobId: string, type: string, attempt: number) {
    return (await this.store.listMessages(jobId, type, attempt)).map((m) =>
      openEnvelope(JSON.parse(m.envelope), this.#roster),
    );
  }

  private async publicPackage(): Promise<FrostPublic> {
    const raw = await this.store.getMeta("ca.publicKeyPackage");
    if (!raw) throw new CoordinatorError("CONFLICT", "the CA has no key yet");
    return publicFromWire(PublicPackageWireSchema.parse(JSON.parse(raw)));
  }
}

function addEvent(j: SigningJobRecord, e: Omit<JobEvent, "at">): string {
  return pushEvent(j.events, e);
}
function pushEvent(events: string, e: Omit<JobEvent, "at">): string {
  const list = JSON.parse(events) as JobEvent[];
  list.push({ at: new Date().toISOString(), ...e });
  return JSON.stringify(list);
}
