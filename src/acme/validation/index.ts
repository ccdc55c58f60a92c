// Challenge validation (RFC 8555 §8): one attempt at http-01, dns-01 or tls-alpn-01 for one
// identifier. A failed validation is a result, never a throw.
import type { AcmeValidationOptions, ChallengeToValidate, ValidationResult } from "../context.ts";
import { AcmeProblem } from "../problems.ts";

/** Validates one challenge; resolves to `{ ok: false, problem }` for any failure (RFC 8555 §8.2). */
export async function validateChallenge(
  c: ChallengeToValidate,
  o: AcmeValidationOptions,
): Promise<ValidationResult> {
  void o;
  return {
    ok: false,
    problem: new AcmeProblem("serverInternal", `${c.type} validation is not implemented yet`, {
      identifier: c.identifier,
    }),
  };
}
