// dns-01 (RFC 8555 §8.4): a TXT record at _acme-challenge.<name> whose value is
// base64url(SHA-256(key authorization)). For a wildcard the base name is given (the caller strips
// "*.", §7.1.3). Looked up at the configured resolver or the system's (resolve.ts).
//
// No TXT record at all (or no such name) is a `dns` failure: nothing answered for the name, which a
// user fixes in DNS (a record not yet published or propagated). TXT records that are there but none
// with the expected value is `incorrectResponse`: an answer came, and it was wrong.
import { createHash } from "node:crypto";
import type { AcmeValidationOptions, ChallengeToValidate } from "../context.ts";
import { Deadline, quoted, txtRecords, ValidationFailure } from "./resolve.ts";

/** The TXT value dns-01 expects for a key authorization (RFC 8555 §8.4). */
export function dns01TxtValue(keyAuthorization: string): string {
  return createHash("sha256").update(keyAuthorization, "utf8").digest("base64url");
}

export async function validateDns01(
  c: ChallengeToValidate,
  o: AcmeValidationOptions,
  deadline: Deadline,
): Promise<void> {
  // RFC 8738 §7: dns-01 is not defined for IP identifiers.
  if (c.identifier.type !== "dns")
    throw new ValidationFailure(
      "unsupportedIdentifier",
      `dns-01 cannot validate the IP address ${c.identifier.value} (RFC 8738 §7)`,
    );
  const name = `_acme-challenge.${c.identifier.value.replace(/\.$/, "")}`;
  const expected = dns01TxtValue(c.keyAuthorization);
  const records = await txtRecords(name, o, deadline);
  if (records.includes(expected)) return;
  const where = o.resolver ? `the DNS server ${o.resolver}` : "the system resolver";
  throw new ValidationFailure(
    "incorrectResponse",
    `${where} has ${records.length} TXT record${records.length === 1 ? "" : "s"} at ${name}, none of them ` +
      `${quoted(expected)}: found ${records
        .slice(0, 3)
        .map((r) => quoted(r, 60))
        .join(", ")}${records.length > 3 ? ", …" : ""}`,
  );
}
