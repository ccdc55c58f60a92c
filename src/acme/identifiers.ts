// newOrder identifiers (RFC 8555 §7.1.3, §7.4; RFC 8738 for IP addresses): normalised, checked for
// syntax, and checked against the account's requester grant exactly as tca checks a CSR's names
// (x509/policy.ts: grantCovers, and names another requester's exclusive grant reserves). Every
// refused identifier is named in a subproblem (RFC 8555 §6.7.1), so a client learns all of them at
// once; nothing is stored for a refused order.
import type { AcmeConfig, Profile, Requester } from "../config/schema.ts";
import { bytesToIp, ipToBytes } from "../x509/ip.ts";
import { dnsNameProblem } from "../x509/name-syntax.ts";
import { exclusiveOwnerOf, grantCovers } from "../x509/policy.ts";
import { AcmeProblem } from "./problems.ts";
import type { Identifier } from "./protocol.ts";

/** An identifier as a client sent it (IdentifierSchema: any type string, a value). */
export interface RawIdentifier {
  type: string;
  value: string;
}

/** The profile an order uses, and its ca-config definition. */
export interface OrderProfile {
  name: string;
  profile: Profile;
}

/** A DNS identifier's wildcard prefix (RFC 8555 §7.1.3: only as the whole leftmost label). */
export const WILDCARD_PREFIX = "*.";

/**
 * The profile for a newOrder: the one asked for (draft-ietf-acme-profiles `profile`), else the first
 * of acme.profiles the account's grant includes (clients that know nothing of profiles — certbot,
 * lego 4.9 — then get one they may use). It must be offered over ACME and granted to the requester.
 */
export function orderProfile(
  asked: string | undefined,
  acme: AcmeConfig,
  profiles: Readonly<Record<string, Profile>>,
  requester: Requester,
): OrderProfile {
  const name = asked ?? acme.profiles.find((p) => requester.profiles.includes(p));
  if (name === undefined)
    throw new AcmeProblem(
      "unauthorized",
      `this account's grant (requester ${requester.name}) includes none of the ACME profiles (${acme.profiles.join(", ")})`,
    );
  if (!acme.profiles.includes(name))
    throw new AcmeProblem(
      "malformed",
      `profile "${name}" is not offered over ACME; the directory's meta.profiles lists those that are (${acme.profiles.join(", ")})`,
    );
  if (!requester.profiles.includes(name))
    throw new AcmeProblem(
      "unauthorized",
      `this account's grant (requester ${requester.name}) does not include profile "${name}"`,
    );
  const profile = profiles[name];
  if (!profile) throw new AcmeProblem("serverInternal", `profile "${name}" is not defined in ca-config`);
  return { name, profile };
}

/**
 * A label getaddrinfo (inet_aton) reads as a number: decimal, octal (leading 0) or hex (0x…).
 * "0x7f000001", "0x7f.1" and "127.1" are 127.0.0.1 to it, so the name would be validated at an
 * address that was never an identifier (RFC 8738 §3: an address is an "ip" identifier).
 */
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/i;

/** Why a DNS name is an IPv4 address in disguise (1 to 4 numeric labels), or undefined. */
function numericNameProblem(name: string): string | undefined {
  const labels = name.split(".");
  if (labels.length <= 4 && labels.every((l) => NUMERIC_LABEL.test(l)))
    return "its labels are all numbers, which name lookups read as an IPv4 address; ask for an ip identifier";
  return undefined;
}

/**
 * Why an IP address is not one to validate or certify, or undefined: the unspecified address (it
 * connects to this host), "this network" 0.0.0.0/8 (RFC 1122 §3.2.1.3: a source, never a
 * destination), the limited broadcast address and multicast (224.0.0.0/4, ff00::/8), which name no
 * one host. Loopback (127.0.0.0/8, ::1) is allowed: a grant names what it allows (docs/acme.md).
 */
function unusableAddressProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) {
    if (bytes[0] === 0) return "an address of 0.0.0.0/8 (this host on this network, RFC 1122 §3.2.1.3)";
    if (bytes.every((x) => x === 255)) return "the limited broadcast address (RFC 919)";
    if (bytes[0]! >= 224 && bytes[0]! <= 239) return "a multicast address (224.0.0.0/4, RFC 5771)";
    return undefined;
  }
  if (bytes.every((x) => x === 0)) return "the unspecified address (RFC 4291 §2.5.2)";
  if (bytes[0] === 0xff) return "a multicast address (ff00::/8, RFC 4291 §2.7)";
  return undefined;
}

/**
 * One identifier normalised (DNS names lowercased; IP addresses in canonical text, RFC 5952 for
 * IPv6), or an AcmeProblem naming it. The value of a wildcard keeps its "*." (as in the order).
 */
export function normaliseIdentifier(raw: RawIdentifier): Identifier | AcmeProblem {
  const identifier = { type: raw.type, value: raw.value } as Identifier;
  const refuse = (detail: string) =>
    new AcmeProblem("rejectedIdentifier", `${raw.type} identifier "${raw.value}": ${detail}`, { identifier });
  if (raw.type === "dns") {
    // Internationalized names travel as A-labels (RFC 5890 §2.3.2.1); tca converts nothing itself.
    if (!/^[\x21-\x7e]+$/.test(raw.value))
      return refuse("not printable ASCII; send an internationalized name as its A-label (xn--…)");
    const value = raw.value.toLowerCase();
    // A trailing dot is refused, not stripped: the CSR at finalize must carry exactly these names.
    const why = dnsNameProblem(value) ?? numericNameProblem(value);
    if (why) return refuse(`not a DNS name tca issues for: ${why}`);
    return { type: "dns", value };
  }
  if (raw.type === "ip") {
    const bytes = ipToBytes(raw.value);
    if (!bytes) return refuse("not an IPv4 or IPv6 address (RFC 8738 §3)");
    const mapped =
      bytes.length === 16 &&
      bytes.subarray(0, 10).every((x) => x === 0) &&
      bytes[10] === 0xff &&
      bytes[11] === 0xff;
    if (mapped) return refuse("an IPv4-mapped IPv6 address; ask for the IPv4 address itself");
    const unusable = unusableAddressProblem(bytes);
    if (unusable) return refuse(`${unusable}: not an address a certificate names`);
    return { type: "ip", value: bytesToIp(bytes)! };
  }
  return new AcmeProblem(
    "unsupportedIdentifier",
    `identifier type "${raw.type}" is not supported; tca validates "dns" and "ip" identifiers`,
    { identifier },
  );
}

/**
 * Why the grant refuses a normalised identifier, or undefined. A wildcard is compared by its own text
 * ("*.a.b"), as the same name in a CSR would be.
 */
function grantProblem(
  id: Identifier,
  requester: Requester,
  requesters: readonly Requester[],
  profile: OrderProfile,
): AcmeProblem | undefined {
  if (!profile.profile.sans[id.type])
    return new AcmeProblem(
      "rejectedIdentifier",
      `${id.type} identifier "${id.value}": profile "${profile.name}" issues no ${id.type === "dns" ? "DNS" : "IP"} names`,
      { identifier: id },
    );
  // Single-label names ("localhost") pass the syntax check and are judged here like any other:
  // issued only when the grant covers them.
  if (!requester.allowedNames.some((pat) => grantCovers(id.type, id.value, pat)))
    return new AcmeProblem(
      "rejectedIdentifier",
      `${id.type} identifier "${id.value}" is not one this account may ask for (its grant, requester ${requester.name}, allows: ${requester.allowedNames.join(", ") || "none"})`,
      { identifier: id },
    );
  const owner = exclusiveOwnerOf(id.type, id.value, requester.name, requesters);
  if (owner)
    return new AcmeProblem(
      "rejectedIdentifier",
      `${id.type} identifier "${id.value}" is reserved for requester ${owner} (its grant is exclusive in ca-config)`,
      { identifier: id },
    );
  return undefined;
}

/**
 * The identifiers of a newOrder, normalised and without duplicates, in the order sent; or throws:
 * one problem when a single identifier is refused, else a rejectedIdentifier (unsupportedIdentifier
 * when every refusal is one) with a subproblem per identifier (RFC 8555 §6.7.1).
 */
export function checkOrderIdentifiers(
  raw: readonly RawIdentifier[],
  o: {
    maxIdentifiers: number;
    requester: Requester;
    requesters: readonly Requester[];
    profile: OrderProfile;
  },
): Identifier[] {
  const out: Identifier[] = [];
  const seen = new Set<string>();
  const problems: AcmeProblem[] = [];
  for (const r of raw) {
    const id = normaliseIdentifier(r);
    if (id instanceof AcmeProblem) {
      problems.push(id);
      continue;
    }
    const key = `${id.type}:${id.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const p = grantProblem(id, o.requester, o.requesters, o.profile);
    if (p) problems.push(p);
    else out.push(id);
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1)
    throw new AcmeProblem(
      problems.every((p) => p.type === "unsupportedIdentifier")
        ? "unsupportedIdentifier"
        : "rejectedIdentifier",
      `${problems.length} of the order's identifiers are refused; see subproblems`,
      { subproblems: problems },
    );
  const max = Math.min(o.maxIdentifiers, o.profile.profile.sans.max);
  if (out.length > max)
    throw new AcmeProblem(
      "rejectedIdentifier",
      `the order has ${out.length} identifiers; at most ${max} are allowed in one order (profile "${o.profile.name}")`,
    );
  return out;
}

/** An authorization's identifier (RFC 8555 §7.1.4): a wildcard's base name, and whether it was one. */
export function authorizationIdentifier(id: Identifier): { identifier: Identifier; wildcard: boolean } {
  if (id.type === "dns" && id.value.startsWith(WILDCARD_PREFIX))
    return { identifier: { type: "dns", value: id.value.slice(WILDCARD_PREFIX.length) }, wildcard: true };
  return { identifier: id, wildcard: false };
}
