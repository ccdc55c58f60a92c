export type CustodianErrorCode =
  | "HOME_NOT_INITIALISED"
  | "HOME_EXISTS"
  | "NO_KEY_SHARE"
  | "COORDINATOR_UNREACHABLE"
  | "COORDINATOR_ERROR"
  | "ANNOUNCEMENT_MISMATCH"
  | "CEREMONY_FAILED"
  | "CEREMONY_ABORTED"
  | "TIMEOUT"
  | "REFUSED";

export class CustodianError extends Error {
  override readonly name = "CustodianError";
  constructor(
    readonly code: CustodianErrorCode,
    message: string,
    readonly culprits: string[] = [],
  ) {
    super(message);
  }
}
