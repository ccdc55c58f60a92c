// `tca custodian agent`: a custodian that runs unattended (docs/signing-pipeline.md). It keeps one
// exchange with the coordinator going: each round sends its approvals, shares and fresh commitment
// offers, and brings back the requests to review and the signing tasks that name it. It approves
// what its local policy allows, signs CRLs that pass its checks, and on SIGTERM hands back unused
// commitments and stops. One request's or one job's problem is logged with its id and never stops
// the loop.
import type { Logger } from "pino";
import { z } from "zod";
import { sealHeartbeat } from "../protocol/heartbeat.ts";
import type { ReviewItem, SigningTask } from "../protocol/signing-messages.ts";
import { failedResults } from "./exchange.ts";
import { evaluatePolicy, type Policy } from "./policy.ts";
import { checkRenewal } from "./renewal-check.ts";
import type { CustodianSession, Review } from "./session.ts";
import { currentCaCsr, decideCaCsr, reviewCaCsrIn } from "./ca-csr-check.ts";
import { ISSUER_CONSTRAINTS } from "./leaf-check.ts";

const HEARTBEAT_MS = 15_000;
/** How often the agent looks at the coordinator's CA certificate and CSR proposal (docs/intermediate.md). */
const CA_LOOK_MS = 5_000;
const MAX_CONSIDERED = 100_000;
/** How judge() (session.ts) begins the problem of a TBS that differs from the one derived here. */
const TBS_DIFFERS = "the coordinator's TBS differs";

export interface AgentCounters {
  approved: number;
  skipped: number;
  signed: number;
  refused: number;
  lost: number;
  itemErrors: number;
  loopErrors: number;
}

export class CustodianAgent {
  readonly #considered = new Set<string>();
  /** Requests whose TBS differed from ours, with the CA certificate they were judged under. */
  readonly #mismatched = new Map<string, Uint8Array>();
  #lastHeartbeat = 0;
  #lastCaLook = 0;
  #lastCaNote = "";
  readonly counters: AgentCounters = {
    approved: 0,
    skipped: 0,
    signed: 0,
    refused: 0,
    lost: 0,
    itemErrors: 0,
    loopErrors: 0,
  };

  constructor(
    private readonly session: CustodianSession,
    private readonly policy: Policy,
    private readonly log: Logger,
    private readonly opts: {
      waitSeconds?: number;
      /**
       * Whether another process stored a new keystore (a lifecycle ceremony's new share, an adopted
       * roster): the agent then stops so that its caller opens the keystore again (docs/key-lifecycle.md).
       */
      keystoreChanged?: () => boolean;
    } = {},
  ) {}

  /** Set when run() returned because the keystore changed, not because it was asked to stop. */
  reloadRequested = false;

  /** Runs until `signal` aborts; then withdraws its commitments and returns. */
  async run(signal: AbortSignal): Promise<void> {
    const s = this.session;
    this.log.info(
      {
        custodian: s.signer.name,
        coordinator: s.client.baseUrl,
        instance: s.participant.instance,
        rules: this.policy.autoApprove.map((r) => r.name),
      },
      "agent started",
    );
    let backoff = 250;
    while (!signal.aborted) {
      if (this.opts.keystoreChanged?.()) {
        this.reloadRequested = true;
        this.log.info("the keystore changed (a new key share or roster): reloading it");
        break;
      }
      try {
        await this.heartbeat();
        await this.intermediate();
        await this.round(signal);
        backoff = 250;
      } catch (e) {
        if (signal.aborted) break;
        this.counters.loopErrors++;
        this.log.warn({ err: (e as Error).message }, "exchange failed; retrying");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
    await s.link.close();
    s.close();
    this.log.info({ ...this.counters }, "agent stopped");
  }

  /** One exchange: send what is queued, then sign the tasks and review the requests it brings. */
  async round(signal?: AbortSignal): Promise<void> {
    const s = this.session;
    const wait = s.link.queued > 0 ? 0 : (this.opts.waitSeconds ?? 10);
    const res = await s.link.round({ wait, review: true, ...(signal ? { signal } : {}) });
    for (const f of failedResults(res.results)) {
      this.counters.itemErrors++;
      this.log.warn(
        { id: f.id, type: f.type, status: f.status, detail: f.detail },
        "coordinator refused an item",
      );
    }
    // Signing first: those tasks hold other custodians' commitments and wait on this one.
    await this.sign(res.tasks);
    this.review(res.requests);
  }

  private async sign(tasks: SigningTask[]): Promise<void> {
    // A CRL or checkpoint task this agent's policy does not sign is refused, so the job goes on without it.
    const outcomes = await this.session.signTasks(tasks, (t) =>
      t.kind === "crl" && !this.policy.signCrls
        ? "this custodian's agent policy does not sign CRLs"
        : t.kind === "checkpoint" && !this.policy.signCheckpoints
          ? "this custodian's agent policy does not sign audit checkpoints"
          : undefined,
    );
    for (const o of outcomes) {
      const ctx = { job: o.task.id, kind: o.task.kind, subject: o.task.subjectRef, attempt: o.task.attempt };
      if (o.kind === "signed") {
        this.counters.signed++;
        // Leaf shares are the volume: logged at debug; CRL and root shares are events worth a line.
        if (o.task.kind === "leaf") this.log.debug(ctx, "signature share sent");
        else this.log.info(ctx, "signature share sent");
      } else if (o.kind === "refused") {
        this.counters.refused++;
        this.log.warn({ ...ctx, reason: o.reason }, "refused to sign");
      } else if (o.kind === "unrecorded") {
        this.counters.itemErrors++;
        this.log.error({ ...ctx, err: o.reason }, "cannot journal a signature share; not sending it");
      } else {
        this.counters.lost++;
        this.log.info(ctx, "package names a commitment this process no longer holds; handed back");
      }
    }
  }

  /** Decides on each new request once; approvals leave in the next round (journaled first). */
  private review(items: ReviewItem[]): void {
    const s = this.session;
    const approve: Review<ReviewItem>[] = [];
    for (const item of items) {
      if (this.#considered.has(item.id)) continue;
      // Derived other bytes under this CA certificate: looked at again only once another is adopted.
      if (this.#mismatched.get(item.id) === s.caCert) continue;
      this.remember(item.id);
      try {
        if (s.journal.decisionOn(item.id)) continue;
        const review = s.reviewItem(item);
        // The coordinator may have installed a CA certificate (docs/intermediate.md) this agent has
        // not adopted yet: its TBS then names another key identifier. Not a final skip: look at the
        // coordinator's CA certificate now, and review the request again once it changes here.
        if (review.problem?.startsWith(TBS_DIFFERS)) {
          this.#considered.delete(item.id);
          if (this.#mismatched.size >= MAX_CONSIDERED) this.#mismatched.clear();
          this.#mismatched.set(item.id, s.caCert);
          this.#lastCaLook = 0;
          this.counters.skipped++;
          this.log.info(
            { request: item.id, decision: "skip", reason: review.problem },
            "request skipped until this custodian's CA certificate changes",
          );
          continue;
        }
        const renewal =
          item.renewal && this.policy.renewals !== "manual"
            ? checkRenewal(item, s.caCert, s.journal)
            : undefined;
        const decision = evaluatePolicy(this.policy, review, renewal);
        const ctx = {
          request: item.id,
          requester: item.requester,
          profile: item.profile,
          subject: review.tbs.subject,
          sans: review.tbs.sans.map((x) => x.value),
          tbsSha256: item.tbsSha256,
          ...(item.renewal ? { renewalOf: item.renewal.of } : {}),
          // The coordinator says it came from an ACME order (docs/acme.md): which account and order.
          ...(item.origin
            ? { origin: item.origin.kind, acmeAccount: item.origin.account, acmeOrder: item.origin.order }
            : {}),
        };
        // A name outside the CA's name constraints (or a CA certificate its path length forbids) can
        // never be issued under this CA: rejected, with the reason, rather than left for a person.
        if (review.problem?.startsWith(ISSUER_CONSTRAINTS)) {
          s.link.send(...s.approvals([{ review, decision: "reject" }], { reason: review.problem }));
          this.log.warn({ ...ctx, decision: "reject", reason: review.problem }, "request rejected");
          continue;
        }
        if (!decision.approve) {
          this.counters.skipped++;
          this.log.info({ ...ctx, decision: "skip", reason: decision.reason }, "request left for a person");
          continue;
        }
        approve.push(review);
        this.log.info({ ...ctx, decision: "approve", reason: decision.reason }, "request approved by policy");
      } catch (e) {
        this.counters.itemErrors++;
        this.log.warn({ request: item.id, err: (e as Error).message }, "could not review request");
      }
    }
    if (approve.length === 0) return;
    const validForMs = this.policy.approvalValidityHours * 3_600_000;
    try {
      s.link.send(
        ...s.approvals(
          approve.map((review) => ({ review, decision: "approve" as const })),
          { validForMs },
        ),
      );
      this.counters.approved += approve.length;
    } catch {
      // One refusal (e.g. a serial already signed) spoils a batch: decide one by one instead.
      for (const review of approve) {
        try {
          s.link.send(...s.approvals([{ review, decision: "approve" }], { validForMs }));
          this.counters.approved++;
        } catch (err) {
          this.counters.itemErrors++;
          this.log.warn({ request: review.request.id, err: (err as Error).message }, "will not approve");
        }
      }
    }
  }

  private remember(id: string): void {
    if (this.#considered.size >= MAX_CONSIDERED)
      this.#considered.delete(this.#considered.values().next().value!);
    this.#considered.add(id);
  }

  /**
   * Intermediate mode (docs/intermediate.md): adopts the coordinator's CA certificate once it passes
   * this custodian's own checks, and approves the CA key's certification request if the policy says
   * `signCaCsr`. A problem is logged once and never stops the loop.
   */
  private async intermediate(): Promise<void> {
    if (Date.now() - this.#lastCaLook < CA_LOOK_MS) return;
    this.#lastCaLook = Date.now();
    const s = this.session;
    const note = (line: string, fields: Record<string, unknown>, warn = false) => {
      if (line === this.#lastCaNote) return;
      this.#lastCaNote = line;
      (warn ? this.log.warn : this.log.info).call(this.log, fields, line);
    };
    try {
      const a = await s.adoptCaCertificate();
      if (a.kind === "adopted") note("adopted the CA certificate", { subject: a.subject, root: a.root });
      else if (a.kind === "refused")
        note("will not adopt the coordinator's CA certificate", { reason: a.reason }, true);
      if (!this.policy.signCaCsr) return;
      const v = await currentCaCsr(s.client);
      if (!v || (v.status !== "pending" && v.status !== "signing") || s.journal.decisionOn(v.id)) return;
      const review = reviewCaCsrIn(s, v);
      if (review.problem)
        return note("will not approve the CA's CSR", { proposal: v.id, reason: review.problem }, true);
      await decideCaCsr(s, review, "approve", { validForMs: this.policy.approvalValidityHours * 3_600_000 });
      this.log.info(
        { proposal: v.id, subject: review.subject },
        "CA certification request approved by policy",
      );
    } catch (e) {
      note("could not look at the CA certificate or CSR", { err: (e as Error).message }, true);
    }
  }

  private async heartbeat(): Promise<void> {
    if (Date.now() - this.#lastHeartbeat < HEARTBEAT_MS) return;
    const s = this.session;
    const env = sealHeartbeat(s.signer, s.caKeyId, { role: "agent", instance: s.participant.instance });
    await s.client.post("/api/v1/custodians/heartbeat", env, z.unknown());
    this.#lastHeartbeat = Date.now();
  }
}
