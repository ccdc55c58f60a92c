// Errors of the requester side, each carrying the exit code a script can branch on (see
// src/cli/output.ts EXIT): 1 failed (including the server's 4xx answers), 2 usage (e.g. a token
// that would cross the network in clear), 3 refused (rejected or failed requests), 4 coordinator
// unreachable.
export type RequesterErrorKind = "SERVER" | "UNREACHABLE" | "REFUSED" | "TIMEOUT" | "MISMATCH" | "USAGE";

const EXIT_FOR: Record<RequesterErrorKind, number> = {
  SERVER: 1,
  UNREACHABLE: 4,
  REFUSED: 3,
  TIMEOUT: 1,
  MISMATCH: 1,
  USAGE: 2,
};

export class RequesterError extends Error {
  readonly exitCode: number;
  constructor(
    readonly kind: RequesterErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.exitCode = EXIT_FOR[kind];
  }
}
