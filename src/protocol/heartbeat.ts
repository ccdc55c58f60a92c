// Heartbeats: a custodian process's signed "I am online" (POST /api/v1/custodians/heartbeat). The
// envelope binds it to the CA key id (header `caKeyId`) and carries a counter (header `seq`,
// strictly increasing per process: see envelope.ts); the body names the process. The coordinator
// keeps the last counter per (custodian, instance) and refuses a counter that is not greater, so
// a captured heartbeat cannot make a dead custodian look alive (docs/architecture.md §3.3 replay protection).
import { z } from "zod";
import { sealEnvelope, type SignedEnvelope, type Signer } from "./envelope.ts";

/** A heartbeat is accepted only within this much of the coordinator's clock. */
export const HEARTBEAT_FRESH_MS = 5 * 60_000;

export const HeartbeatBodySchema = z
  .object({
    role: z.enum(["agent", "cli"]),
    /** The sending process's instance id (random per process, as in its signing offers). */
    instance: z.string().regex(/^[0-9a-f]{32}$/),
  })
  .strict();
export type HeartbeatBody = z.infer<typeof HeartbeatBodySchema>;

export function sealHeartbeat(signer: Signer, caKeyId: string | null, body: HeartbeatBody): SignedEnvelope {
  return sealEnvelope(signer, {
    type: "heartbeat",
    recipient: "coordinator",
    scope: "heartbeat",
    caKeyId,
    body: HeartbeatBodySchema.parse(body),
  });
}
