// Publishing: a leaf signing job has ended. The certificate is released only once it has been
// assembled from the exact signed TBS bytes, parsed again, found to carry the request's serial and
// verified against the CA key (docs/architecture.md §3.8, verify-signed.ts); otherwise the request fails.
import { crashPoint } from "../crash-points.ts";
import type { SigningJobRecord } from "../store/types.ts";
import { verifySigned } from "../verify-signed.ts";
import type { RequestContext } from "./context.ts";
import { clock } from "../clock.ts";
import { appendAudit } from "../audit/log.ts";

export async function onLeafSigned(
  ctx: RequestContext,
  job: SigningJobRecord,
  signature: Uint8Array | null,
  failure?: string,
): Promise<void> {
  const r = await ctx.store.getRequest(job.subjectRef);
  if (!r) return;
  const fail = async (reason: string) => {
    await ctx.store.updateRequest(r.id, { status: "failed", outcome: { reason } });
    ctx.hooks.finished(r.id);
  };
  if (!signature) return fail(failure ?? "signing failed");
  const checked = verifySigned({
    kind: "certificate",
    tbs: r.tbs,
    signature,
    caPublicKey: await ctx.ca.publicKey(),
    serial: r.serial,
  });
  if (!checked.ok) return fail(checked.reason);
  crashPoint("before-publish");
  await ctx.store.updateRequest(r.id, { status: "issued", certificate: checked.der });
  await appendAudit(ctx.store, {
    kind: "issuance",
    subject: r.id,
    body: {
      requestId: r.id,
      jobId: job.id,
      serial: r.serial,
      certificate: Buffer.from(checked.der).toString("base64"),
    },
  });
  ctx.hooks.metrics.issued.inc({ profile: r.profile });
  ctx.hooks.metrics.issuanceSeconds.observe(
    { profile: r.profile },
    (clock.now() - Date.parse(r.createdAt)) / 1000,
  );
  ctx.hooks.finished(r.id);
}
