// Decisions: a custodian's signed approval or rejection of one request's exact TBS (docs/architecture.md
// §3.3). t unexpired approvals start a signing job among the approvers; one rejection is final and
// cancels any job (a CA fails closed). An envelope resent after a lost answer is recorded once.
import { openEnvelope, type EnvelopeHeader } from "../../protocol/envelope.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { ApprovalStatementSchema, type LeafParams } from "../../protocol/approval.ts";
import { BUILDER_VERSION } from "../../x509/leaf.ts";
import { crashPoint } from "../crash-points.ts";
import { CoordinatorError } from "../errors.ts";
import { requireRequest, type RequestContext } from "./context.ts";
import { clock } from "../clock.ts";
import { appendAudit } from "../audit/log.ts";

/** Opens one approval envelope for request `id` and records it, in one transaction. */
export async function decide(ctx: RequestContext, id: string, envelope: unknown): Promise<void> {
  await ctx.store.transaction(async () => {
    let h: EnvelopeHeader;
    try {
      h = openEnvelope(envelope, ctx.roster, {
        type: "approval",
        scope: id,
        recipient: "coordinator",
        caKeyId: await ctx.ca.keyId(),
      });
    } catch (e) {
      if (e instanceof ProtocolError)
        throw new CoordinatorError("BAD_REQUEST", e.message, { culprit: e.culprit });
      throw e;
    }
    await decideOpened(ctx, h, JSON.stringify(envelope));
  });
}

/**
 * An approval whose envelope signature and context were checked by the caller, inside transaction()
 * (the batch exchange, or decide() above).
 */
export async function decideOpened(
  ctx: RequestContext,
  h: EnvelopeHeader,
  envelopeJson: string,
): Promise<void> {
  const id = h.scope;
  if (h.type !== "approval" || h.recipient !== "coordinator")
    throw new CoordinatorError(
      "BAD_REQUEST",
      `${h.type} from ${h.sender} is not an approval for the coordinator`,
    );
  const r = await requireRequest(ctx, id);
  // The very same envelope again (a client that lost the answer and resent it, perhaps to another
  // replica): already recorded, so the answer is the same as the first time, and nothing changes.
  const earlier = (await ctx.store.listApprovals(id)).find((x) => x.custodian === h.sender);
  if (earlier && earlier.envelope === envelopeJson) return;
  const st = ApprovalStatementSchema.safeParse(h.body);
  if (!st.success) throw new CoordinatorError("BAD_REQUEST", `approval from ${h.sender} is malformed`);
  const a = st.data;
  if (a.requestId !== id || a.tbsSha256 !== r.tbsSha256)
    throw new CoordinatorError(
      "CONFLICT",
      `approval from ${h.sender} is about another TBS than request ${id}'s`,
    );
  if (a.caKeyId !== h.caKeyId)
    throw new CoordinatorError(
      "BAD_REQUEST",
      `approval from ${h.sender} names another CA key than its envelope`,
    );
  if (a.builderVersion !== BUILDER_VERSION)
    throw new CoordinatorError(
      "CONFLICT",
      `${h.sender} derives certificates with ${a.builderVersion}, the coordinator with ${BUILDER_VERSION}: upgrade one of them`,
    );
  if (a.configDigest !== ctx.config.digest)
    throw new CoordinatorError(
      "CONFLICT",
      `${h.sender}'s ca-config differs from the coordinator's (digest ${a.configDigest.slice(0, 12)}…)`,
    );
  if (Date.parse(a.expiresAt) <= clock.now())
    throw new CoordinatorError("BAD_REQUEST", `approval from ${h.sender} has already expired`);
  if (r.status !== "pending" && r.status !== "signing")
    throw new CoordinatorError("CONFLICT", `request ${id} is already ${r.status}`);
  const inserted = await ctx.store.insertApproval({
    requestId: id,
    custodian: h.sender,
    decision: a.decision,
    reason: a.reason ?? null,
    expiresAt: a.expiresAt,
    envelope: envelopeJson,
    createdAt: clock.iso(),
  });
  if (!inserted) throw new CoordinatorError("CONFLICT", `${h.sender} has already decided on request ${id}`);
  // The signed envelope itself is the proof (docs/audit.md): kept as received.
  await appendAudit(ctx.store, {
    kind: a.decision === "approve" ? "approval" : "rejection",
    subject: id,
    body: { requestId: id, custodian: h.sender, envelope: JSON.parse(envelopeJson) as unknown },
  });
  ctx.hooks.heard(h.sender, "approval");
  ctx.hooks.moved(id); // a requester long-polling this request sees the count move
  ctx.store.afterCommit(() => crashPoint("after-approval"));
  ctx.hooks.metrics.approvals.inc({ custodian: h.sender, decision: a.decision });
  ctx.hooks.changed();
  if (a.decision === "reject") {
    // One custodian's rejection is final: a CA fails closed.
    if (r.signingJob) await ctx.signing.cancel(r.signingJob, `rejected by ${h.sender}`);
    await ctx.store.updateRequest(id, {
      status: "rejected",
      outcome: { by: h.sender, reason: a.reason ?? "no reason given" },
    });
    ctx.hooks.finished(id);
    return;
  }
  // Only custodians of the roster in force hold shares that sign (docs/key-lifecycle.md): an
  // approval recorded from one a reshare removed does not count towards t, nor make it a signer.
  const members = (await ctx.rosterInForce?.()) ?? null;
  const inForce = (name: string) => members === null || members.has(name);
  const approvers = (await ctx.store.listApprovals(id))
    .filter((x) => x.decision === "approve" && Date.parse(x.expiresAt) > clock.now())
    .map((x) => x.custodian)
    .filter(inForce);
  if (r.signingJob) {
    if (inForce(h.sender)) await ctx.signing.addEligible(r.signingJob, h.sender);
  } else if (approvers.length >= ctx.config.config.threshold) {
    const params: LeafParams = {
      requestId: id,
      requester: r.requester,
      profile: r.profile,
      csr: Buffer.from(r.csr).toString("base64"),
      serial: r.serial,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
    };
    const job = await ctx.signing.createJob({
      kind: "leaf",
      subjectRef: id,
      tbs: r.tbs,
      params: { ...params },
      eligible: approvers,
    });
    await ctx.store.updateRequest(id, { status: "signing", signingJob: job });
  }
}
