// Name lookups for challenge validation, and what every validation step shares: one deadline for
// the whole attempt and the failure a step throws (validateChallenge turns it into a problem).
//
// With a configured resolver ("HOST:PORT", docs/acme.md "Validation") every lookup of a validation
// goes to that one DNS server: A and AAAA for http-01 and tls-alpn-01, TXT for dns-01. Without it,
// addresses come from the system's getaddrinfo (dns.lookup), so /etc/hosts applies as users expect,
// and TXT records from the system's DNS servers (/etc/resolv.conf).
import { lookup as systemLookup, Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import type { AcmeErrorType, Identifier } from "../protocol.ts";

/** A failed validation step: an RFC 8555 §6.7 error type and a detail a user can act on. */
export class ValidationFailure extends Error {
  constructor(
    readonly type: AcmeErrorType,
    detail: string,
  ) {
    super(detail);
  }
}

/** The time one validation attempt may take, shared by its lookups, connections and reads. */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly end: number;
  constructor(readonly ms: number) {
    this.end = Date.now() + ms;
    this.signal = AbortSignal.timeout(ms);
  }
  remaining(): number {
    return Math.max(0, this.end - Date.now());
  }
  get expired(): boolean {
    return this.signal.aborted || this.remaining() === 0;
  }
}

/** What came back, quoted and cut to about 100 characters: details never echo large answers. */
export function quoted(s: string, max = 100): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** "address:port", or "[v6]:port". */
export function hostPort(address: string, port: number): string {
  return `${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}

/** Settles with `p`, or rejects with `onTimeout()` when the deadline passes first. */
export function beforeDeadline<T>(p: Promise<T>, deadline: Deadline, onTimeout: () => Error): Promise<T> {
  if (deadline.expired) return Promise.reject(onTimeout());
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onTimeout());
    deadline.signal.addEventListener("abort", abort, { once: true });
    p.then(resolve, reject).finally(() => deadline.signal.removeEventListener("abort", abort));
  });
}

function whereAsked(o: { resolver?: string | undefined }): string {
  return o.resolver ? `the DNS server ${o.resolver}` : "the system resolver";
}

/** One dns.Resolver for one validation: the configured server, or the system's. */
function resolverFor(o: { resolver?: string | undefined }, deadline: Deadline): Resolver {
  // Two tries (a lost UDP packet is retried) within what is left of the attempt; c-ares doubles
  // the timeout on the second try, hence a third each.
  const r = new Resolver({ timeout: Math.max(1, Math.floor(deadline.remaining() / 3)), tries: 2 });
  if (o.resolver) {
    try {
      r.setServers([o.resolver]);
    } catch {
      throw new ValidationFailure(
        "serverInternal",
        `the validation resolver ${quoted(o.resolver)} is not HOST:PORT or [IPv6]:PORT`,
      );
    }
  }
  return r;
}

const NO_RECORDS = new Set(["ENODATA", "ENOTFOUND", "ENONAME"]);

function lookupFailure(
  name: string,
  what: string,
  e: unknown,
  o: { resolver?: string | undefined },
): ValidationFailure {
  const code = (e as { code?: unknown } | null)?.code;
  const where = whereAsked(o);
  switch (code) {
    case "ENOTFOUND":
    case "ENONAME":
      return new ValidationFailure(
        "dns",
        `${where} says ${name} does not exist (NXDOMAIN) looking up ${what}`,
      );
    case "ENODATA":
      return new ValidationFailure("dns", `${where} has no ${what} record for ${name}`);
    case "ESERVFAIL":
      return new ValidationFailure("dns", `${where} failed (SERVFAIL) looking up ${what} for ${name}`);
    case "EREFUSED":
      return new ValidationFailure("dns", `${where} refused the ${what} query for ${name}`);
    case "ETIMEOUT":
    case "ECANCELLED":
      return new ValidationFailure("dns", `${where} did not answer the ${what} query for ${name} in time`);
    case "EAI_AGAIN":
      return new ValidationFailure("dns", `${where} could not look up ${name} now (temporary failure)`);
    case "ECONNREFUSED":
      return new ValidationFailure("dns", `${where} could not be reached looking up ${what} for ${name}`);
    default:
      return new ValidationFailure(
        "dns",
        `looking up ${what} for ${name} at ${where} failed: ${typeof code === "string" ? code : String(e)}`,
      );
  }
}

/**
 * The addresses to validate an identifier at, in the order to try them. An IP identifier is used as
 * it is (RFC 8738 §3). A DNS name: the first IPv4 address, then the first IPv6 address, of those
 * found — one of each family, as Boulder does, so an attempt makes at most two connections.
 *
 * IPv4 first (Boulder prefers IPv6): tca validates names inside private networks, where hosts
 * often have an AAAA record (or `localhost`'s ::1) that nothing serves on, while the IPv4 address is
 * the one the service listens on. Either order falls back the same way (`overAddresses`).
 */
export async function validationAddresses(
  identifier: Identifier,
  o: { resolver?: string | undefined },
  deadline: Deadline,
): Promise<string[]> {
  if (identifier.type === "ip") {
    if (isIP(identifier.value) === 0)
      throw new ValidationFailure("malformed", `${quoted(identifier.value)} is not an IP address`);
    return [identifier.value];
  }
  const name = identifier.value;
  const timedOut = (): ValidationFailure =>
    new ValidationFailure("dns", `${whereAsked(o)} did not answer for ${name} within ${deadline.ms} ms`);
  let v4: string[] = [];
  let v6: string[] = [];
  if (o.resolver) {
    const r = resolverFor(o, deadline);
    try {
      const [a, aaaa] = await beforeDeadline(
        Promise.allSettled([r.resolve4(name), r.resolve6(name)]),
        deadline,
        timedOut,
      );
      if (a.status === "fulfilled") v4 = a.value;
      if (aaaa.status === "fulfilled") v6 = aaaa.value;
      if (v4.length === 0 && v6.length === 0) {
        // The more telling error: a failure of the server over "no such records".
        const errors = [a, aaaa].flatMap((x) => (x.status === "rejected" ? [x.reason as unknown] : []));
        const telling =
          errors.find((e) => !NO_RECORDS.has(String((e as { code?: unknown })?.code))) ?? errors[0];
        if (telling === undefined || String((telling as { code?: unknown })?.code) === "ENODATA")
          throw new ValidationFailure("dns", `${whereAsked(o)} has no A or AAAA record for ${name}`);
        throw lookupFailure(name, "A/AAAA", telling, o);
      }
    } finally {
      r.cancel();
    }
  } else {
    try {
      const found = await beforeDeadline(systemLookup(name, { all: true }), deadline, timedOut);
      v4 = found.filter((x) => x.family === 4).map((x) => x.address);
      v6 = found.filter((x) => x.family === 6).map((x) => x.address);
    } catch (e) {
      if (e instanceof ValidationFailure) throw e;
      // getaddrinfo says ENOTFOUND both for a name that does not exist and for one without addresses.
      if ((e as { code?: unknown } | null)?.code === "ENOTFOUND")
        throw new ValidationFailure("dns", `${whereAsked(o)} found no address for ${name}`);
      throw lookupFailure(name, "an address", e, o);
    }
    if (v4.length === 0 && v6.length === 0)
      throw new ValidationFailure("dns", `${whereAsked(o)} has no address for ${name}`);
  }
  return [...v4.slice(0, 1), ...v6.slice(0, 1)].filter((x) => isIP(x) !== 0);
}

/**
 * Runs `attempt` at each address in turn until one succeeds. Only a failure to connect moves on to
 * the next address (RFC 8555 §8.3 does not say; Boulder does the same): a server that answered is
 * the one the name points at, and its wrong answer is the result. Throws the last answer's failure,
 * or all connection failures together.
 */
export async function overAddresses(
  addresses: string[],
  deadline: Deadline,
  attempt: (address: string) => Promise<void>,
): Promise<void> {
  const failures: ValidationFailure[] = [];
  for (const address of addresses) {
    try {
      await attempt(address);
      return;
    } catch (e) {
      if (!(e instanceof ValidationFailure) || e.type !== "connection") throw e;
      failures.push(e);
      if (deadline.expired) break;
    }
  }
  if (failures.length === 0) throw new ValidationFailure("dns", "no address to connect to");
  if (failures.length === 1) throw failures[0]!;
  throw new ValidationFailure("connection", failures.map((f) => f.message).join("; "));
}

/**
 * The TXT records at `name`, each one's strings joined (RFC 8555 §8.4 compares whole records).
 * No record, or no such name: a `dns` failure.
 */
export async function txtRecords(
  name: string,
  o: { resolver?: string | undefined },
  deadline: Deadline,
): Promise<string[]> {
  const r = resolverFor(o, deadline);
  try {
    const records = await beforeDeadline(
      r.resolveTxt(name),
      deadline,
      () =>
        new ValidationFailure(
          "dns",
          `${whereAsked(o)} did not answer the TXT query for ${name} within ${deadline.ms} ms`,
        ),
    );
    if (records.length === 0)
      throw new ValidationFailure("dns", `${whereAsked(o)} has no TXT record for ${name}`);
    return records.map((chunks) => chunks.join(""));
  } catch (e) {
    throw e instanceof ValidationFailure ? e : lookupFailure(name, "TXT", e, o);
  } finally {
    r.cancel();
  }
}
