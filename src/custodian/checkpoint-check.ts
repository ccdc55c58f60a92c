// What a custodian checks before it signs a checkpoint of the audit chain (docs/audit.md): the job's
// parameters rebuild exactly the message it is asked to sign (ASCII, never DER: it can never pass for
// a certificate or a CRL, src/protocol/audit-checkpoint.ts), the message names this custodian's own
// CA key, and its sequence number is above the last checkpoint this custodian signed — one head per
// number, as for CRL numbers (docs/architecture.md §3.9), so a coordinator cannot have two different
// histories vouched for at one place. The custodian cannot see the chain itself here: it vouches that
// the coordinator committed to this head at this place, which binds the coordinator from then on.
import { CheckpointParamsSchema, checkpointMessage } from "../protocol/audit-checkpoint.ts";
import type { SigningTask } from "../protocol/signing-messages.ts";
import type { Journal } from "./journal.ts";
import { sha256Hex } from "./leaf-check.ts";
import { refuse, type TbsDeriver } from "./signer.ts";

export function checkpointTbsDeriver(caKeyId: string, journal: Journal): TbsDeriver {
  return (job: SigningTask) => {
    const parsed = CheckpointParamsSchema.safeParse(job.params);
    if (!parsed.success) refuse("checkpoint job parameters are malformed");
    const p = parsed.data;
    if (p.caKeyId !== caKeyId)
      refuse(`the checkpoint names another CA key (${p.caKeyId}) than this custodian's`);
    const message = checkpointMessage(p);
    const conflict = journal.checkpointConflict(p.seq, sha256Hex(message), job.id);
    if (conflict) refuse(conflict);
    return message;
  };
}
