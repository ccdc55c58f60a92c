// Envelopes the coordinator stored itself after checking their signature (docs/architecture.md §3.3). Reading
// one back needs no second signature check: the store is the coordinator's own record, and whatever is
// built from it (an aggregate signature, a certificate) is verified again before release.
import { EnvelopeHeaderSchema, SignedEnvelopeSchema, type EnvelopeHeader } from "../protocol/envelope.ts";
import { CoordinatorError } from "./errors.ts";
import type { Store } from "./store/types.ts";
import { clock } from "./clock.ts";

/**
 * Keeps a checked envelope verbatim (the audit record) and refuses its replay: a message id, and a
 * (scope, type, sender, attempt) slot, are taken once.
 */
export async function storeEnvelope(
  store: Store,
  h: EnvelopeHeader,
  json: string,
  attempt: number,
  scope = h.scope,
): Promise<void> {
  const ok = await store.insertMessage({
    id: h.id,
    scope,
    type: h.type,
    sender: h.sender,
    recipient: h.recipient,
    attempt,
    envelope: json,
    receivedAt: clock.iso(),
  });
  if (!ok)
    throw new CoordinatorError(
      "CONFLICT",
      `${h.sender} already sent ${h.type} for this ${scope === h.scope ? "attempt" : "process"} (or this is a replay)`,
    );
}

export function storedHeader(envelopeJson: string) {
  const env = SignedEnvelopeSchema.parse(JSON.parse(envelopeJson));
  return EnvelopeHeaderSchema.parse(JSON.parse(Buffer.from(env.payload, "base64url").toString("utf8")));
}

export function storedBody(envelopeJson: string): unknown {
  return storedHeader(envelopeJson).body;
}
