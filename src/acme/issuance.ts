// PLACEHOLDER until finalize lands: the state of a finalized order, read from its tca request.
import type { AcmeContext } from "./context.ts";
import type { AcmeProblemDocument } from "./protocol.ts";

export interface IssuanceState {
  status: "processing" | "valid" | "invalid";
  error?: AcmeProblemDocument;
  /** Seconds a client should wait before asking again (processing). */
  retryAfter?: number;
}

export async function issuanceState(_ctx: AcmeContext, _requestId: string): Promise<IssuanceState> {
  throw new Error("not yet");
}
