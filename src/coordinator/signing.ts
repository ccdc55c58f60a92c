// Signing sessions (RFC 9591 §5 from the coordinator's seat; docs/signing-pipeline.md). One job signs
// one TBS. Custodian processes offer commitments ahead of time; as soon as a job has t eligible
// approvers with open offers, the coordinator forms the signing package from one offer of each, and
// the signers answer with their shares in their next exchange: one round trip per signature.
//
// Liveness rules: an offer is used by the first package that names it, even if that package is then
// refused (docs/architecture.md §3.6); when an attempt moves on (a bad share, a refusal, a silent signer, a
// withdrawal) its commitments are void and the next attempt takes fresh offers; no commitment is ever
// put in a second package. A bad share names its sender, who is excluded from the job (docs/architecture.md
// §3.7).
import { randomUUID } from "node:crypto";
import type { LoadedConfig } from "../config/load.ts";
import type { EnvelopeHeader } from "../protocol/envelope.ts";
import {
  MAX_OFFERED,
  OfferBodySchema,
  RefusalBodySchema,
  ShareBodySchema,
  WithdrawBodySchema,
  type SigningJobView,
  type SigningPackage,
  type SigningTask,
} from "../protocol/signing-messages.ts";
import {
  commitmentFromWire,
  commitmentKey,
  hexToBytes,
  publicFromWire,
  PublicPackageWireSchema,
} from "../threshold/encoding.ts";
import { aggregateSignature } from "../threshold/sign.ts";
import { ThresholdError } from "../threshold/errors.ts";
import { identifierForName, isGroupElement, isScalar, type FrostPublic } from "../threshold/suite.ts";
import { CoordinatorError } from "./errors.ts";
import type { JobEvent, JobParams, OfferRecord, SigningJobRecord, Store } from "./store/types.ts";
import type { CoordinatorHooks } from "./hooks.ts";
import { storeEnvelope, storedBody } from "./stored-envelope.ts";
import { outsideTransactions } from "./async-scope.ts";
import { crashPoint } from "./crash-points.ts";
import { clock } from "./clock.ts";
import { appendAudit } from "./audit/log.ts";
import { sha256Hex } from "../common/hash.ts";
import type { KeyStateReader } from "./lifecycle/key-state.ts";

export type { JobEvent } from "./store/types.ts";

/** A job to make: its kind and the parameters of that kind, what it signs, who may sign. */
export type NewJob = JobParams & {
  subjectRef: string;
  tbs: Uint8Array;
  eligible: string[];
};

/** What happens when a job ends, per kind (root certificate, leaf certificate, CRL). */
export type JobCompletion = (
  job: SigningJobRecord,
  signature: Uint8Array | null,
  failure?: string,
) => Promise<void>;

/** An offer is used only if it outlives the share timeout by this much. */
const OFFER_MARGIN_MS = 5_000;
/** A custodian process not heard from for this long is not picked for new packages. */
const LIVE_MS = 45_000;
/** How often one replica records that a process spoke (liveness is judged over LIVE_MS). */
const TOUCH_MS = 2_000;
/** How long a job waits for a package before its request is shown to every custodian. */
export const STARVED_MS = 3_000;
/** How often a starving request is shown again to a custodian process that has seen it. */
const RESHOW_MS = 30_000;
/** Withdrawals after which a custodian is left out of a job. */
const MAX_STRIKES = 2;
/** Most jobs one pass of package forming looks at. */
const FORM_BATCH = 512;

export class SigningService {
  readonly #completions = new Map<string, JobCompletion>();
  /** When this replica last recorded each custodian process as heard from (writes are throttled). */
  readonly #touched = new Map<string, number>();
  /** Jobs that have waited for a package, since when: their requests are shown to more custodians. */
  readonly #starved = new Map<string, { since: number; shownTo: Map<string, number> }>();
  #pub: { raw: string; pub: FrostPublic } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #kickPending = false;
  #tickMs = 250;

  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly opts: {
      shareTimeoutMs: number;
      caKeyId: () => Promise<string | null>;
      /** The key state in force (docs/key-lifecycle.md): epochs of offers and packages, who signs. */
      keyState?: Pick<KeyStateReader, "current" | "configRosterDigest">;
    },
    private readonly hooks: CoordinatorHooks,
  ) {}

  get threshold(): number {
    return this.config.config.threshold;
  }
  get caKeyId(): Promise<string | null> {
    return this.opts.caKeyId();
  }

  onComplete(kind: string, fn: JobCompletion): void {
    this.#completions.set(kind, fn);
  }

  /**
   * Re-forms sessions whose signers went quiet, and forms packages that are waiting for offers: on
   * one replica at a time, the holder of the `lease` (any replica may do it; one is enough).
   */
  startTimer(intervalMs = 250, lease?: { held(): Promise<boolean> }): void {
    this.#tickMs = intervalMs;
    this.#timer = setInterval(
      () =>
        void (async () => {
          if (lease && !(await lease.held())) return;
          await this.expireStale();
        })().catch(() => undefined),
      intervalMs,
    );
    this.#timer.unref();
  }
  stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Forms packages soon, in a transaction of its own (for changes made outside an exchange). */
  kick(): void {
    if (this.#kickPending) return;
    this.#kickPending = true;
    setImmediate(() =>
      outsideTransactions(() => {
        this.#kickPending = false;
        void this.store.transaction(() => this.formPackages()).catch(() => undefined);
      }),
    );
  }

  /**
   * A custodian process spoke to this replica: recorded in the database, where every replica's
   * package forming reads it (at most every TOUCH_MS per process from one replica).
   */
  async seen(custodian: string, instance: string, at = clock.now()): Promise<void> {
    const key = `${custodian}/${instance}`;
    if (at - (this.#touched.get(key) ?? 0) < TOUCH_MS) return;
    if (this.#touched.size >= 10_000)
      for (const [k, t] of this.#touched) if (at - t >= TOUCH_MS) this.#touched.delete(k);
    this.#touched.set(key, at);
    await outsideTransactions(() => this.store.touchProcess(custodian, instance, new Date(at).toISOString()));
  }

  /** A process hung up (killed, or shut down): it is not picked for packages until it speaks again. */
  gone(custodian: string, instance: string): void {
    this.#touched.delete(`${custodian}/${instance}`);
    outsideTransactions(() => void this.store.dropProcess(instance).catch(() => undefined));
  }

  /** Processes heard from within LIVE_MS, by any replica, as "custodian/instance". */
  private live(now: number): Promise<Set<string>> {
    return this.store.liveProcesses(new Date(now - LIVE_MS).toISOString());
  }

  async createJob(j: NewJob): Promise<string> {
    const id = randomUUID();
    const now = clock.iso();
    await this.store.insertSigningJob({
      ...j,
      id,
      status: "signing",
      attempt: 0,
      signingPackage: null,
      excluded: [],
      events: [],
      signature: null,
      createdAt: now,
      updatedAt: now,
    });
    await appendAudit(this.store, {
      kind: "signing-job",
      subject: id,
      body: {
        jobId: id,
        kind: j.kind,
        subjectRef: j.subjectRef,
        tbsSha256: sha256Hex(j.tbs),
        tbs: Buffer.from(j.tbs).toString("hex"),
        eligible: j.eligible,
      },
    });
    this.kick();
    this.hooks.changed();
    return id;
  }

  /** Lets a custodian who approved after the job started take part. */
  async addEligible(jobId: string, custodian: string): Promise<void> {
    const j = await this.store.getSigningJob(jobId);
    if (!j || j.eligible.includes(custodian)) return;
    await this.store.updateSigningJob(jobId, { eligible: [...j.eligible, custodian] });
    this.kick();
  }

  /** Stops a job for good, e.g. when a custodian rejects the request it signs. */
  async cancel(jobId: string, reason: string): Promise<void> {
    const j = await this.store.getSigningJob(jobId);
    if (!j || j.status !== "signing") return;
    this.#starved.delete(j.subjectRef);
    await this.voidAttempt(j);
    await this.store.updateSigningJob(jobId, {
      status: "failed",
      signingPackage: null,
      events: addEvent(j.events, { kind: "failed", detail: reason }),
    });
  }

  async get(id: string): Promise<SigningJobView> {
    const j = await this.store.getSigningJob(id);
    if (!j) throw new CoordinatorError("NOT_FOUND", `no signing job ${id}`);
    return {
      id: j.id,
      kind: j.kind as SigningJobView["kind"],
      subjectRef: j.subjectRef,
      status: j.status,
      attempt: j.attempt,
      tbs: Buffer.from(j.tbs).toString("hex"),
      params: j.params,
      eligible: j.eligible,
      excluded: j.excluded,
      signingPackage: j.signingPackage,
    };
  }

  async record(id: string): Promise<SigningJobRecord | undefined> {
    return this.store.getSigningJob(id);
  }

  /**
   * Who a job in flight waits for: the signers of its package that have not answered, or, with no
   * package yet, how many of its eligible custodians could sign now (a live process with an open
   * offer) — fewer than t means it waits for custodians to come back.
   */
  async signers(
    j: SigningJobRecord,
    now = clock.now(),
  ): Promise<{ available: number; missing: number; waitingFor: string[] }> {
    const t = this.threshold;
    if (j.status !== "signing") return { available: t, missing: 0, waitingFor: [] };
    if (j.signingPackage) {
      const members = await this.store.listOffersInJob(j.id, j.attempt);
      return {
        available: t,
        missing: 0,
        waitingFor: members.filter((m) => m.state === "in-package").map((m) => m.custodian),
      };
    }
    const live = await this.live(now);
    const validAfter = new Date(now + this.opts.shareTimeoutMs + OFFER_MARGIN_MS).toISOString();
    const ready = new Set(
      (await this.store.listOpenOffers(validAfter))
        .filter((o) => live.has(`${o.custodian}/${o.instance}`))
        .map((o) => o.custodian),
    );
    const available = j.eligible.filter((c) => !j.excluded.includes(c) && ready.has(c)).length;
    return { available, missing: Math.max(0, t - available), waitingFor: [] };
  }

  /**
   * Request ids whose jobs have waited for a package longer than `forMs` (more approvers may help),
   * each given once to each viewer (a custodian process).
   */
  starvedFor(viewer: string, forMs: number, max: number, now = clock.now()): string[] {
    const out: string[] = [];
    for (const [ref, s] of this.#starved) {
      if (out.length >= max) break;
      const shown = s.shownTo.get(viewer);
      // Once per viewer, and again every RESHOW_MS while it still starves (an answer can be lost).
      if (now - s.since < forMs || (shown !== undefined && now - shown < RESHOW_MS)) continue;
      s.shownTo.set(viewer, now);
      out.push(ref);
    }
    return out;
  }

  // ---- what a custodian process sends (inside the exchange's transaction) ----

  /** `sign/offer`: stores the commitments as open offers of this process. */
  async receiveOffer(h: EnvelopeHeader): Promise<void> {
    const b = OfferBodySchema.safeParse(h.body);
    if (!b.success) throw bad(h, "is malformed");
    await this.refuseOutsideKeyState(h, b.data.keyEpoch ?? 0);
    const me = identifierForName(h.sender);
    for (const c of b.data.commitments) {
      if (c.identifier !== me) throw bad(h, "carries another custodian's identifier");
      if (!isGroupElement(hexToBytes(c.hiding)) || !isGroupElement(hexToBytes(c.binding)))
        throw bad(h, "carries a commitment that is not a valid group element");
    }
    // The lifetime is taken relative to the envelope's own time and counted from receipt here, so a
    // custodian whose clock runs ahead cannot make its offers outlive its nonces.
    const ttlMs = Date.parse(b.data.expiresAt) - Date.parse(h.issuedAt);
    if (!(ttlMs > 0) || ttlMs > 15 * 60_000) throw bad(h, "must expire within 15 minutes of its issue");
    if (h.scope !== b.data.instance) throw bad(h, "names another process than its scope");
    if (b.data.supersede) await this.dropInstances(h.sender, (i) => i !== b.data.instance, "restarted");
    // A process holds at most MAX_OFFERED open offers (docs/architecture.md §3.6), a custodian twice that
    // over its processes: no one can crowd the others out of packages by offering more.
    const live = await this.live(clock.now());
    const open = (await this.store.listOffersOf(h.sender, ["offered"])).filter(
      (o) => o.instance === b.data.instance || live.has(`${o.custodian}/${o.instance}`),
    ); // offers of processes gone quiet do not count: they expire on their own
    const ofInstance = open.filter((o) => o.instance === b.data.instance).length;
    if (
      ofInstance + b.data.commitments.length > MAX_OFFERED ||
      open.length + b.data.commitments.length > 2 * MAX_OFFERED
    )
      throw new CoordinatorError(
        "CONFLICT",
        `${h.sender} already holds ${ofInstance} open offers in this process (${open.length} in all); at most ${MAX_OFFERED} per process`,
      );
    const offeredAt = clock.iso();
    await this.store.insertOffers(
      b.data.commitments.map((c) => ({
        commitmentKey: commitmentKey(c),
        custodian: h.sender,
        instance: b.data.instance,
        identifier: c.identifier,
        hiding: c.hiding,
        binding: c.binding,
        expiresAt: new Date(clock.now() + ttlMs).toISOString(),
        offeredAt,
        state: "offered",
        jobId: null,
        attempt: null,
      })),
    );
  }

  /** `sign/withdraw`: the process can no longer use these commitments (or any of its own). */
  async receiveWithdraw(h: EnvelopeHeader): Promise<void> {
    const b = WithdrawBodySchema.safeParse(h.body);
    if (!b.success) throw bad(h, "is malformed");
    if (h.scope !== b.data.instance) throw bad(h, "names another process than its scope");
    const keys = b.data.commitments ? new Set(b.data.commitments) : undefined;
    await this.dropInstances(h.sender, (i) => i === b.data.instance, "withdrew", keys ? { only: keys } : {});
  }

  /**
   * Voids open offers of some of a custodian's processes and re-forms the attempts whose package
   * holds one of their commitments unanswered — only those: a custodian cannot reset a job it is not
   * in, and an attempt is re-formed once (the next one names no voided commitment).
   */
  private async dropInstances(
    custodian: string,
    which: (instance: string) => boolean,
    why: string,
    o: { only?: Set<string>; strike?: boolean } = {},
  ): Promise<void> {
    const { only, strike = true } = o;
    const mine = (await this.store.listOffersOf(custodian, ["offered", "in-package"])).filter(
      (x) => which(x.instance) && (!only || only.has(x.commitmentKey)),
    );
    await this.store.setOfferState(
      mine.filter((o) => o.state === "offered").map((o) => o.commitmentKey),
      "void",
    );
    for (const slot of mine.filter((x) => x.state === "in-package")) {
      const j = slot.jobId ? await this.store.getSigningJob(slot.jobId) : undefined;
      if (!j || j.status !== "signing" || j.attempt !== slot.attempt) continue;
      const events = addEvent(j.events, {
        kind: strike ? "withdrawn" : "timeout",
        custodian,
        detail: `${custodian} ${why}: its commitment for attempt ${j.attempt} is gone`,
      });
      await this.nextAttempt(j, events, strike ? struckOut(events, [custodian]) : []);
    }
  }

  /** `sign/share`: one signer's share for the current attempt; the last one completes the job. */
  async receiveShare(h: EnvelopeHeader, envelopeJson: string): Promise<void> {
    const b = ShareBodySchema.safeParse(h.body);
    if (!b.success) throw bad(h, "is malformed");
    if (!isScalar(hexToBytes(b.data.share))) throw bad(h, "carries a share that is not a canonical scalar");
    if (h.scope !== b.data.jobId) throw bad(h, "names another job than its scope");
    const { j, slot } = await this.slotFor(h, b.data.jobId, b.data.attempt);
    await storeEnvelope(this.store, h, envelopeJson, j.attempt);
    await this.store.setOfferState([slot.commitmentKey], "answered");
    this.hooks.heard(h.sender, h.type);
    j.events = addEvent(j.events, { kind: "share", custodian: h.sender });
    const members = await this.store.listOffersInJob(j.id, j.attempt);
    if (members.some((m) => m.state !== "answered")) {
      this.store.afterCommit(() => crashPoint("after-share"));
      return this.store.updateSigningJob(j.id, { events: j.events });
    }
    await this.aggregate(j);
  }

  /** `sign/refusal`: the custodian will not sign this job; it is excluded and the job re-forms. */
  async receiveRefusal(h: EnvelopeHeader, envelopeJson: string): Promise<void> {
    const b = RefusalBodySchema.safeParse(h.body);
    if (!b.success) throw bad(h, "is malformed");
    if (h.scope !== b.data.jobId) throw bad(h, "names another job than its scope");
    const { j } = await this.slotFor(h, b.data.jobId, b.data.attempt);
    await storeEnvelope(this.store, h, envelopeJson, j.attempt);
    this.hooks.metrics.signingFailures.inc({ custodian: h.sender, kind: "refusal" });
    const events = addEvent(j.events, { kind: "refusal", custodian: h.sender, detail: b.data.reason });
    await this.nextAttempt(j, events, [h.sender]);
  }

  /** The job and this sender's place in its current package, or a 4xx saying why not. */
  private async slotFor(
    h: EnvelopeHeader,
    jobId: string,
    attempt: number,
  ): Promise<{ j: SigningJobRecord; slot: OfferRecord }> {
    const j = await this.store.getSigningJob(jobId);
    if (!j) throw new CoordinatorError("NOT_FOUND", `no signing job ${jobId}`);
    if (j.status !== "signing") throw new CoordinatorError("CONFLICT", `signing job ${jobId} is ${j.status}`);
    if (attempt !== j.attempt)
      throw new CoordinatorError(
        "CONFLICT",
        `attempt ${attempt} is over; the job is at attempt ${j.attempt}`,
      );
    const slot = (await this.store.listOffersInJob(j.id, j.attempt)).find((o) => o.custodian === h.sender);
    if (!slot || slot.state !== "in-package")
      throw new CoordinatorError(
        "CONFLICT",
        slot
          ? `${h.sender} already answered attempt ${attempt}`
          : `${h.sender} is not in the current signing package`,
        { culprit: h.sender },
      );
    return { j, slot };
  }

  /** RFC 9591 §5.3: aggregate and verify once; on failure, name the signers whose shares are bad. */
  private async aggregate(j: SigningJobRecord): Promise<void> {
    const pkg = j.signingPackage!;
    const messages = await this.store.listMessages(j.id, "sign/share", j.attempt);
    const shares = messages.map((m) => ({
      sender: m.sender,
      share: ShareBodySchema.parse(storedBody(m.envelope)).share,
    }));
    const byId = Object.fromEntries(shares.map((s) => [identifierForName(s.sender), hexToBytes(s.share)]));
    let events = j.events;
    try {
      const signature = aggregateSignature(
        await this.publicPackage(),
        pkg.commitments.map(commitmentFromWire),
        j.tbs,
        byId,
      );
      events = addEvent(events, { kind: "signed" });
      await this.store.updateSigningJob(j.id, { status: "done", signature, events });
      await appendAudit(this.store, {
        kind: "signature",
        subject: j.id,
        body: {
          jobId: j.id,
          kind: j.kind,
          attempt: j.attempt,
          signers: pkg.signers,
          signature: Buffer.from(signature).toString("hex"),
          shares: messages.map((m) => JSON.parse(m.envelope) as unknown),
        },
      });
      this.#starved.delete(j.subjectRef);
      this.hooks.changed();
      try {
        await this.complete({ ...j, status: "done", signature, events }, signature);
      } catch (e) {
        // The signature exists: never roll it back (the TBS would be signed again). Record why
        // publishing failed instead.
        const ev = addEvent(events, {
          kind: "failed",
          detail: `signed, but publishing failed: ${(e as Error).message}`,
        });
        await this.store.updateSigningJob(j.id, { events: ev });
      }
    } catch (e) {
      if (!(e instanceof ThresholdError)) throw e;
      if (e.culprits.length === 0) {
        // Nobody to blame (e.g. a malformed package): start over with fresh commitments.
        events = addEvent(events, { kind: "failed", detail: `aggregation failed: ${e.message}` });
        return this.nextAttempt(j, events, []);
      }
      const culprits = shares
        .filter((s) => e.culprits.includes(identifierForName(s.sender)))
        .map((s) => s.sender);
      for (const c of culprits) {
        events = addEvent(events, {
          kind: "bad-share",
          custodian: c,
          detail: "signature share does not verify",
        });
        this.hooks.metrics.signingFailures.inc({ custodian: c, kind: "bad-share" });
      }
      await this.nextAttempt(j, events, culprits);
    }
  }

  /** Voids the current attempt's commitments and starts the next (or fails if too few remain). */
  private async nextAttempt(j: SigningJobRecord, events: JobEvent[], exclude: string[]): Promise<void> {
    await this.voidAttempt(j);
    const excluded = [...new Set([...j.excluded, ...exclude])];
    const remaining = this.config.config.custodians.map((c) => c.name).filter((c) => !excluded.includes(c));
    if (remaining.length < this.threshold) {
      const failure = `only ${remaining.length} custodians remain who have not been excluded, ${this.threshold} are needed`;
      const ev = addEvent(events, { kind: "failed", detail: failure });
      await this.store.updateSigningJob(j.id, {
        status: "failed",
        excluded,
        events: ev,
        signingPackage: null,
      });
      this.#starved.delete(j.subjectRef);
      await this.complete({ ...j, status: "failed", excluded, events: ev }, null, failure);
      this.hooks.changed();
      return;
    }
    await this.store.updateSigningJob(j.id, {
      attempt: j.attempt + 1,
      signingPackage: null,
      excluded,
      events,
    });
    this.kick();
    this.hooks.changed();
  }

  private async voidAttempt(j: SigningJobRecord): Promise<void> {
    const open = (await this.store.listOffersInJob(j.id, j.attempt)).filter((o) => o.state === "in-package");
    await this.store.setOfferState(
      open.map((o) => o.commitmentKey),
      "void",
    );
  }

  /**
   * Offers are taken only for the key state in force (docs/key-lifecycle.md, "Epochs"): of its epoch
   * (absent = 0), from a member of its roster, and only while this coordinator's ca-config roster is
   * that roster.
   */
  private async refuseOutsideKeyState(h: EnvelopeHeader, offered: number): Promise<void> {
    const ks = await this.opts.keyState?.current();
    if (!ks) return;
    const refusal = await this.refusal();
    if (refusal) throw new CoordinatorError("CONFLICT", refusal);
    if (!ks.members.has(h.sender))
      throw new CoordinatorError("FORBIDDEN", `${h.sender} is not a custodian of the roster in force`, {
        culprit: h.sender,
      });
    if (offered !== ks.state.epoch)
      throw new CoordinatorError(
        "CONFLICT",
        `${h.type} from ${h.sender} is for key epoch ${offered}, the key epoch in force is ${ks.state.epoch}`,
      );
  }

  /** Why this coordinator must not sign now (its ca-config's roster is not the roster in force), or null. */
  async refusal(): Promise<string | null> {
    const ks = await this.opts.keyState?.current();
    if (!ks || ks.state.rosterDigest === this.opts.keyState!.configRosterDigest) return null;
    return `this coordinator signs nothing: its ca-config's roster is not the roster in force (digest ${ks.state.rosterDigest}); it must restart with the ca-config the custodians signed`;
  }

  /**
   * A refresh or reshare completed (in its transaction): the open offers were made for shares of
   * the old epoch and are void, and packages in flight start a new attempt (nobody is excluded for
   * it) that takes offers of the new epoch.
   */
  async onEpochChange(epoch: number): Promise<void> {
    const open = await this.store.listOpenOffers(new Date(0).toISOString());
    await this.store.setOfferState(
      open.map((o) => o.commitmentKey),
      "void",
    );
    for (const listed of await this.store.listJobsWithPackage()) {
      const j = await this.store.getSigningJob(listed.id);
      if (!j || j.status !== "signing" || !j.signingPackage) continue;
      await this.voidAttempt(j);
      await this.store.updateSigningJob(j.id, {
        attempt: j.attempt + 1,
        signingPackage: null,
        events: addEvent(j.events, { kind: "withdrawn", detail: `the key moved to epoch ${epoch}` }),
      });
    }
    this.kick();
  }

  // ---- forming packages ----

  /**
   * Gives every job that waits for a package t signers, one open offer each, from live processes of
   * eligible custodians that have not been excluded. Load spreads to whoever holds the most offers.
   * Runs inside transaction(), so an offer lands in one package at most.
   */
  async formPackages(now = clock.now()): Promise<number> {
    const jobs = await this.store.listJobsAwaitingPackage(FORM_BATCH);
    if (jobs.length === 0) return 0;
    // Only under the roster in force, and each package names the epoch its shares must be of.
    const ks = await this.opts.keyState?.current();
    if (ks && ks.state.rosterDigest !== this.opts.keyState!.configRosterDigest) return 0;
    const keyEpoch = ks?.state.epoch ?? 0;
    const validAfter = new Date(now + this.opts.shareTimeoutMs + OFFER_MARGIN_MS).toISOString();
    const open = new Map<string, OfferRecord[]>();
    const live = await this.live(now);
    for (const o of await this.store.listOpenOffers(validAfter)) {
      if (!live.has(`${o.custodian}/${o.instance}`)) continue;
      if (ks && !ks.members.has(o.custodian)) continue; // removed from the roster in force
      const list = open.get(o.custodian) ?? [];
      list.push(o);
      open.set(o.custodian, list);
    }
    let formed = 0;
    for (const j of jobs) {
      const candidates = j.eligible.filter((c) => !j.excluded.includes(c) && (open.get(c)?.length ?? 0) > 0);
      if (candidates.length < this.threshold) {
        if (!this.#starved.has(j.subjectRef))
          this.#starved.set(j.subjectRef, { since: now, shownTo: new Map() });
        continue;
      }
      // At random among those who can sign now (the load spreads, and nobody can make itself first
      // in every package), those who already cost this job an attempt last.
      const history = j.events;
      const chosen = candidates
        .map((c) => ({ c, p: penalty(history, c), r: Math.random() }))
        .sort((a, b) => a.p - b.p || a.r - b.r)
        .slice(0, this.threshold)
        .map((x) => open.get(x.c)!.shift()!)
        .sort((a, b) => (a.identifier < b.identifier ? -1 : 1)); // RFC 9591 §4.3: ordered by identifier
      const pkg: SigningPackage = {
        attempt: j.attempt,
        signers: chosen.map((o) => o.custodian),
        commitments: chosen.map((o) => ({ identifier: o.identifier, hiding: o.hiding, binding: o.binding })),
        formedAt: new Date(now).toISOString(),
        keyEpoch,
      };
      await this.store.setOfferState(
        chosen.map((o) => o.commitmentKey),
        "in-package",
        { jobId: j.id, attempt: j.attempt },
      );
      await this.store.updateSigningJob(j.id, {
        signingPackage: pkg,
        events: addEvent(j.events, {
          kind: "package",
          detail: `attempt ${pkg.attempt}: signers ${pkg.signers.join(", ")}; commitments ${pkg.commitments.map((c) => c.hiding.slice(0, 16)).join(", ")}`,
        }),
      });
      this.#starved.delete(j.subjectRef);
      formed++;
    }
    if (formed > 0) {
      this.hooks.changed();
      this.store.afterCommit(() => crashPoint("after-package"));
    }
    return formed;
  }

  /** The signing tasks waiting for this custodian process: packages naming its commitments, unanswered. */
  async tasksFor(custodian: string, instance: string, limit: number): Promise<SigningTask[]> {
    const slots = await this.store.listOffersOf(custodian, ["in-package"], instance);
    const out: SigningTask[] = [];
    for (const s of slots) {
      if (out.length >= limit) break;
      const j = s.jobId ? await this.store.getSigningJob(s.jobId) : undefined;
      const pkg = j?.signingPackage;
      if (!j || !pkg || j.status !== "signing" || j.attempt !== s.attempt) continue;
      out.push({
        id: j.id,
        kind: j.kind as SigningTask["kind"],
        subjectRef: j.subjectRef,
        attempt: j.attempt,
        tbs: Buffer.from(j.tbs).toString("hex"),
        params: j.params,
        signingPackage: pkg,
      });
    }
    return out;
  }

  /** Keys of this process's offers that are still open. */
  async openOfferKeys(custodian: string, instance: string): Promise<string[]> {
    return (await this.store.listOffersOf(custodian, ["offered"], instance)).map((o) => o.commitmentKey);
  }

  /** A package whose signers have not all answered in time is dropped; a new attempt begins. */
  async expireStale(at?: number): Promise<void> {
    await this.store.transaction(async () => {
      // The time is read once the write lock is held: waiting for it must not make packages look
      // younger than they are.
      const now = at ?? clock.now();
      for (const listed of await this.store.listJobsWithPackage()) {
        const formed = listed.signingPackage?.formedAt;
        if (!formed || now - Date.parse(formed) < this.opts.shareTimeoutMs) continue;
        const j = await this.store.getSigningJob(listed.id); // an earlier iteration may have re-formed it
        const pkg = j && j.status === "signing" ? j.signingPackage : null;
        if (!j || !pkg || now - Date.parse(pkg.formedAt) < this.opts.shareTimeoutMs) continue;
        const members = await this.store.listOffersInJob(j.id, j.attempt);
        const silent = members.filter((m) => m.state === "in-package");
        for (const m of silent)
          this.hooks.metrics.signingFailures.inc({ custodian: m.custodian, kind: "timeout" });
        let events = j.events;
        for (const m of silent)
          events = addEvent(events, {
            kind: "timeout",
            custodian: m.custodian,
            detail: `no share from ${m.custodian}`,
          });
        await this.nextAttempt(j, events, []);
        // A job that keeps timing out is shown to more custodians: more approvers, more signers to
        // choose from (nobody is excluded for silence).
        const timeouts = events.filter((e) => e.kind === "timeout").length;
        if (timeouts >= 2 && !this.#starved.has(j.subjectRef))
          this.#starved.set(j.subjectRef, { since: now - STARVED_MS, shownTo: new Map() });
        // A process silent past the share timeout is stuck or dead: no more packages for it until it
        // speaks again, and its other unanswered packages re-form now rather than each time out.
        for (const m of silent) {
          this.#touched.delete(`${m.custodian}/${m.instance}`);
          await this.store.dropProcess(m.instance);
          await this.dropInstances(
            m.custodian,
            (i) => i === m.instance,
            "was silent past the share timeout",
            {
              strike: false,
            },
          );
        }
      }
      await this.formPackages(now);
      // A job that just crossed the starvation threshold is shown to more custodians: wake them.
      const crossed = [...this.#starved.values()].some(
        ({ since }) => now - since >= STARVED_MS && now - since < STARVED_MS + this.#tickMs,
      );
      for (const [key, at] of this.#touched) if (now - at > TOUCH_MS) this.#touched.delete(key);
      await this.store.purgeProcesses(new Date(now - 2 * LIVE_MS).toISOString());
      if (crossed) this.hooks.changed();
      await this.store.purgeOffers(new Date(now - 10 * 60_000).toISOString(), new Date(now).toISOString());
    });
  }

  private async complete(j: SigningJobRecord, signature: Uint8Array | null, failure?: string): Promise<void> {
    const fn = this.#completions.get(j.kind);
    if (fn) await fn(j, signature, failure);
  }

  /** The group's public key package, parsed once per value (RFC 9591 §4.1 group info). */
  private async publicPackage(): Promise<FrostPublic> {
    const raw = await this.store.getMeta("ca.publicKeyPackage");
    if (!raw) throw new CoordinatorError("CONFLICT", "the CA has no key yet");
    if (this.#pub?.raw !== raw)
      this.#pub = { raw, pub: publicFromWire(PublicPackageWireSchema.parse(JSON.parse(raw))) };
    return this.#pub.pub;
  }
}

/**
 * Custodians that have now withdrawn from this job's packages MAX_STRIKES times (a live process
 * saying it will not answer): they are left out of it, so one custodian cannot keep a job re-forming
 * and push the honest signers towards their own cap on attempts. Silence is not a strike: a slow
 * coordinator or a network blip would make it one; a silent signer is only picked last (penalty).
 */
function struckOut(events: JobEvent[], who: string[]): string[] {
  return who.filter(
    (c) => events.filter((e) => e.kind === "withdrawn" && e.custodian === c).length >= MAX_STRIKES,
  );
}

/** How many attempts of this job a custodian has cost (withdrawn or silent): packages avoid them. */
function penalty(events: JobEvent[], custodian: string): number {
  return events.filter((e) => (e.kind === "withdrawn" || e.kind === "timeout") && e.custodian === custodian)
    .length;
}

function bad(h: EnvelopeHeader, why: string): CoordinatorError {
  return new CoordinatorError("BAD_REQUEST", `${h.type} from ${h.sender} ${why}`, { culprit: h.sender });
}

/** The events with one more at the end (a new array: the record read from the store is not changed). */
function addEvent(events: JobEvent[], e: Omit<JobEvent, "at">): JobEvent[] {
  return [...events, { at: clock.iso(), ...e }];
}
