// `tca custodian agent`: a custodian that runs unattended. It approves what its local policy allows,
// completes signing for what its operator approved from the CLI, signs CRLs that pass its checks,
// says it is alive, and on SIGTERM hands back unused commitments and stops.
import type { Logger } from "pino";
import { z } from "zod";
import { sealEnvelope } from "../protocol/envelope.ts";
import { sleep } from "./client.ts";
import { evaluatePolicy, type Policy } from "./policy.ts";
import { reviewRequest, type CustodianSession } from "./session.ts";

const HEARTBEAT_MS = 15_000;

export class CustodianAgent {
  readonly #considered = new Set<string>();
  #lastHeartbeat = 0;

  constructor(
    private readonly session: CustodianSession,
    private readonly policy: Policy,
    private readonly log: Logger,
    private readonly opts: { waitSeconds?: number } = {},
  ) {}

  /** Runs until `signal` aborts; then withdraws open commitments and returns. */
  async run(signal: AbortSignal): Promise<void> {
    const s = this.session;
    this.log.info(
      {
        custodian: s.signer.name,
        coordinator: s.client.baseUrl,
        rules: this.policy.autoApprove.map((r) => r.name),
      },
      "agent started",
    );
    let seq = 0;
    while (!signal.aborted) {
      try {
        await this.heartbeat();
        await this.tick();
        seq = await this.waitForChange(seq, signal);
      } catch (e) {
        if (signal.aborted) break;
        this.log.warn({ err: (e as Error).message }, "agent loop error; retrying");
        await sleep(1000);
      }
    }
    const withdrawn = await s.participant.withdrawAll();
    s.close();
    this.log.info({ withdrawn }, "agent stopped");
  }

  /** One pass: decide on new pending requests, then advance every signing job this custodian is in. */
  async tick(): Promise<void> {
    const s = this.session;
    for (const r of await s.listRequests("pending")) {
      if (this.#considered.has(r.id) || s.journal.decisionOn(r.id)) continue;
      this.#considered.add(r.id);
      const review = await reviewRequest(s.client, s.home, s.config, r.id);
      const decision = evaluatePolicy(this.policy, review);
      const ctx = {
        request: r.id,
        requester: r.requester,
        profile: r.profile,
        subject: review.tbs.subject,
        sans: review.tbs.sans.map((x) => x.value),
        tbsSha256: r.tbsSha256,
      };
      if (!decision.approve) {
        this.log.info({ ...ctx, decision: "skip", reason: decision.reason }, "request left for a person");
        continue;
      }
      await s.decide(review, "approve", { validForMs: this.policy.approvalValidityHours * 3_600_000 });
      this.log.info({ ...ctx, decision: "approve", reason: decision.reason }, "request approved by policy");
    }
    for (const job of await s.participant.jobs()) {
      if (job.kind === "crl" && !this.policy.signCrls) continue;
      const outcome = await s.participant.step(job);
      if (outcome === "signed")
        this.log.info(
          { job: job.id, kind: job.kind, subject: job.subjectRef, attempt: job.attempt },
          "signature share sent",
        );
      if (outcome === "refused")
        this.log.warn(
          { job: job.id, kind: job.kind, subject: job.subjectRef, reason: s.refusals().get(job.subjectRef) },
          "refused to sign",
        );
    }
  }

  private async waitForChange(after: number, signal: AbortSignal): Promise<number> {
    const wait = this.opts.waitSeconds ?? 10;
    const url = new URL(`/api/v1/changes?after=${after}&wait=${wait}`, this.session.client.baseUrl);
    try {
      const res = await fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout((wait + 10) * 1000)]),
      });
      const body = z.object({ seq: z.number() }).parse(await res.json());
      // A coordinator restart resets its counter: start over rather than wait for a number never reached.
      return body.seq < after ? 0 : body.seq;
    } catch (e) {
      if (signal.aborted) return after;
      throw e;
    }
  }

  private async heartbeat(): Promise<void> {
    if (Date.now() - this.#lastHeartbeat < HEARTBEAT_MS) return;
    const s = this.session;
    const env = sealEnvelope(s.signer, {
      type: "heartbeat",
      recipient: "coordinator",
      scope: "heartbeat",
      caKeyId: s.caKeyId,
      body: { role: "agent" },
    });
    await s.client.post("/api/v1/custodians/heartbeat", env, z.unknown());
    this.#lastHeartbeat = Date.now();
  }
}
