// Coordinator errors are data: a code, a sentence for the client, and the one mapping from code to
// HTTP status. Responses are RFC 9457 problem+json and never carry internal causes.
export const COORDINATOR_ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  TOO_MANY_REQUESTS: 429,
  INTERNAL: 500,
} as const;
export type CoordinatorErrorCode = keyof typeof COORDINATOR_ERROR_STATUS;

export class CoordinatorError extends Error {
  override readonly name = "CoordinatorError";
  constructor(
    readonly code: CoordinatorErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
  get status(): number {
    return COORDINATOR_ERROR_STATUS[this.code];
  }
}

export const problemTitle: Record<CoordinatorErrorCode, string> = {
  BAD_REQUEST: "Bad request",
  UNAUTHORIZED: "Authentication required",
  FORBIDDEN: "Not allowed",
  NOT_FOUND: "Not found",
  CONFLICT: "Conflict",
  PAYLOAD_TOO_LARGE: "Request body too large",
  UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
  UNPROCESSABLE: "Request refused",
  TOO_MANY_REQUESTS: "Too many requests",
  INTERNAL: "Internal error",
};
