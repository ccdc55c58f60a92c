// RFC 8555 §6.7 errors: problem documents (RFC 7807) with ACME's error types. Thrown anywhere under
// src/acme/ and rendered by the router's error handler, always with a fresh Replay-Nonce (§6.5).
import type { AcmeErrorType, AcmeProblemDocument, Identifier } from "./protocol.ts";

const DEFAULT_STATUS: Partial<Record<AcmeErrorType, number>> = {
  accountDoesNotExist: 400,
  badNonce: 400,
  externalAccountRequired: 400,
  orderNotReady: 403,
  rateLimited: 429,
  serverInternal: 500,
  unauthorized: 403,
  alreadyReplaced: 409,
};

export class AcmeProblem extends Error {
  readonly type: AcmeErrorType;
  readonly status: number;
  readonly identifier?: Identifier;
  readonly subproblems?: AcmeProblem[];
  /** Seconds, for a Retry-After header (rateLimited). */
  readonly retryAfter?: number;

  constructor(
    type: AcmeErrorType,
    detail: string,
    o: { status?: number; identifier?: Identifier; subproblems?: AcmeProblem[]; retryAfter?: number } = {},
  ) {
    super(detail);
    this.type = type;
    this.status = o.status ?? DEFAULT_STATUS[type] ?? 400;
    if (o.identifier) this.identifier = o.identifier;
    if (o.subproblems) this.subproblems = o.subproblems;
    if (o.retryAfter !== undefined) this.retryAfter = o.retryAfter;
  }

  document(): AcmeProblemDocument {
    return {
      type: `urn:ietf:params:acme:error:${this.type}`,
      detail: this.message,
      status: this.status,
      ...(this.identifier ? { identifier: this.identifier } : {}),
      ...(this.subproblems
        ? {
            subproblems: this.subproblems.map((p) => ({
              type: `urn:ietf:params:acme:error:${p.type}`,
              detail: p.message,
              ...(p.identifier ? { identifier: p.identifier } : {}),
            })),
          }
        : {}),
    };
  }
}

/** A problem document as stored (an order's or a challenge's error) read back. */
export function problemOf(type: AcmeErrorType, detail: string, identifier?: Identifier): AcmeProblemDocument {
  return new AcmeProblem(type, detail, identifier ? { identifier } : {}).document();
}
