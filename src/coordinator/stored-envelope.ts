// Envelopes the coordinator stored itself after checking their signature (DESIGN §3.3). Reading one
// back needs no second signature check: the store is the coordinator's own record, and whatever is
// built from it (an aggregate signature, a certificate) is verified again before release.
import { EnvelopeHeaderSchema, SignedEnvelopeSchema } from "../protocol/envelope.ts";

export function storedHeader(envelopeJson: string) {
  const env = SignedEnvelopeSchema.parse(JSON.parse(envelopeJson));
  return EnvelopeHeaderSchema.parse(JSON.parse(Buffer.from(env.payload, "base64url").toString("utf8")));
}

export function storedBody(envelopeJson: string): unknown {
  return storedHeader(envelopeJson).body;
}
