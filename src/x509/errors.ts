// Errors raised by the X.509 layer. Each carries a stable `code` (what callers branch on, and
// what tests assert) and, where one applies, the `field` or name that caused it. Messages are
// sentences meant for the person who sent the request (docs/architecture.md §3.10).

export const X509_ERROR_CODES = [
  "CSR_MALFORMED",
  "CSR_TOO_LARGE",
  "CSR_BAD_SIGNATURE",
  "CSR_UNSUPPORTED_ALGORITHM",
  "KEY_TYPE_NOT_ALLOWED",
  "KEY_SIZE_NOT_ALLOWED",
  "NAME_INVALID",
  "NAME_NOT_ALLOWED",
  "SAN_TYPE_NOT_ALLOWED",
  "SAN_REQUIRED",
  "TOO_MANY_NAMES",
  "VALIDITY_NOT_ALLOWED",
  "SERIAL_INVALID",
  "KEY_INVALID",
  "CERT_MALFORMED",
  "TBS_MALFORMED",
  "TBS_MISMATCH",
  "LINT_FAILED",
  "CRL_INVALID",
  "CRL_MALFORMED",
] as const;

export type X509ErrorCode = (typeof X509_ERROR_CODES)[number];

export class X509Error extends Error {
  readonly code: X509ErrorCode;
  /** The field, name or lint rule at fault, when there is one. */
  readonly field?: string;

  constructor(code: X509ErrorCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "X509Error";
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

export function isX509Error(e: unknown, code?: X509ErrorCode): e is X509Error {
  return e instanceof X509Error && (code === undefined || e.code === code);
}
