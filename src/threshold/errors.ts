export type ThresholdErrorCode =
  | "DKG_BAD_PACKAGE"
  | "DKG_BAD_SHARE"
  | "DKG_TRANSCRIPT_MISMATCH"
  | "DKG_UNKNOWN_PARTICIPANT"
  | "NONCE_UNKNOWN"
  | "SIGNING_PACKAGE_INVALID"
  | "SIGNATURE_SHARE_INVALID"
  | "AGGREGATE_INVALID";

/** A threshold protocol fault. `culprits` names the custodians whose messages caused it. */
export class ThresholdError extends Error {
  override readonly name = "ThresholdError";
  constructor(
    readonly code: ThresholdErrorCode,
    message: string,
    readonly culprits: string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
