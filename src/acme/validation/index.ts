// Challenge validation (RFC 8555 §8): one attempt at http-01, dns-01 or tls-alpn-01 for one
// identifier, bounded as a whole by the configured timeout (lookups, connections, reads). A failed
// validation is a result, never a throw: the caller stores the problem on the challenge (§7.1.5).
// Steps throw ValidationFailure (resolve.ts); here it becomes an AcmeProblem naming the identifier.
import type { AcmeValidationOptions, ChallengeToValidate, ValidationResult } from "../context.ts";
import { AcmeProblem } from "../problems.ts";
import { validateDns01 } from "./dns-01.ts";
import { validateHttp01 } from "./http-01.ts";
import { Deadline, ValidationFailure } from "./resolve.ts";
import { validateTlsAlpn01 } from "./tls-alpn-01.ts";

/** RFC 8555 §8.1: a token is base64url; it goes into a URL path here, so nothing else gets through. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/** Validates one challenge; resolves to `{ ok: false, problem }` for any failure (RFC 8555 §8.2). */
export async function validateChallenge(
  c: ChallengeToValidate,
  o: AcmeValidationOptions,
): Promise<ValidationResult> {
  const identifier = { type: c.identifier.type, value: c.identifier.value };
  const deadline = new Deadline(o.timeoutMs);
  try {
    if (!TOKEN.test(c.token))
      throw new ValidationFailure("malformed", "the challenge token is not base64url");
    switch (c.type) {
      case "http-01":
        await validateHttp01(c, o, deadline);
        break;
      case "dns-01":
        await validateDns01(c, o, deadline);
        break;
      case "tls-alpn-01":
        await validateTlsAlpn01(c, o, deadline);
        break;
      default:
        throw new ValidationFailure(
          "malformed",
          `unknown challenge type ${JSON.stringify(c.type satisfies never)}`,
        );
    }
    return { ok: true };
  } catch (e) {
    if (e instanceof ValidationFailure)
      return { ok: false, problem: new AcmeProblem(e.type, `${c.type}: ${e.message}`, { identifier }) };
    // A bug here must not pass a validation, nor take down the caller: the challenge fails.
    const why = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      problem: new AcmeProblem("serverInternal", `${c.type} validation failed unexpectedly: ${why}`, {
        identifier,
      }),
    };
  }
}
