export type ProtocolErrorCode =
  | "ENVELOPE_MALFORMED"
  | "ENVELOPE_BAD_SIGNATURE"
  | "ENVELOPE_UNKNOWN_SENDER"
  | "ENVELOPE_WRONG_CONTEXT"
  | "ENVELOPE_REPLAYED";

export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    /** The roster name the fault is attributed to, when there is one. */
    readonly culprit?: string,
  ) {
    super(message);
  }
}
