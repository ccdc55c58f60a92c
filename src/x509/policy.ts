// Request policy: what a profile and a requester grant allows. Each check is small, runs in a
// fixed order and throws an X509Error that names the offending key, name or time.
import type { Profile } from "../config/schema.ts";
import type { ParsedCsr } from "./csr.ts";
import { X509Error } from "./errors.ts";
import { commonNames, hasMultiValuedRdn, hasSubjectEmail, nameBoundProblem } from "./names.ts";
import { dnsNameProblem, emailProblem, ipProblem, matchesPattern, uriProblem } from "./name-syntax.ts";
import type { San, SanType } from "./sans.ts";
import { truncateToSeconds } from "./time.ts";
import { ipToBytes } from "./ip.ts";

export interface RequesterNames {
  allowedNames: string[];
}

type CsrFacts = Pick<ParsedCsr, "keyType" | "keyBits" | "sans" | "subjectDer">;
type Check = (csr: CsrFacts, profile: Profile, requester?: RequesterNames) => void;

const SAN_LABEL: Record<SanType, string> = { dns: "DNS", ip: "IP", email: "email", uri: "URI" };
const SYNTAX: Record<SanType, (v: string) => string | undefined> = {
  dns: (v) => dnsNameProblem(v),
  ip: ipProblem,
  email: emailProblem,
  uri: uriProblem,
};

const fail = (code: ConstructorParameters<typeof X509Error>[0], msg: string, field: string): never => {
  throw new X509Error(code, msg, field);
};

export const REQUEST_CHECKS: ReadonlyArray<readonly [string, Check]> = [
  [
    "keyType",
    (c, p) => {
      if (!p.keyTypes.includes(c.keyType))
        fail(
          "KEY_TYPE_NOT_ALLOWED",
          `The key type ${c.keyType} is not allowed by this profile; allowed: ${p.keyTypes.join(", ")}.`,
          "keyType",
        );
    },
  ],
  [
    "rsaBits",
    (c, p) => {
      if (c.keyType === "rsa" && (c.keyBits < p.rsaMinBits || c.keyBits > p.rsaMaxBits)) {
        fail(
          "KEY_SIZE_NOT_ALLOWED",
          `The RSA key has ${c.keyBits} bits; this profile allows ${p.rsaMinBits} to ${p.rsaMaxBits}.`,
          "keyBits",
        );
      }
    },
  ],
  [
    "sanTypes",
    (c, p) => {
      const bad = c.sans.find((s) => !p.sans[s.type]);
      if (bad)
        fail(
          "SAN_TYPE_NOT_ALLOWED",
          `The ${SAN_LABEL[bad.type]} name "${bad.value}" is not allowed: this profile issues no ${SAN_LABEL[bad.type]} names.`,
          bad.value,
        );
    },
  ],
  [
    "sanCount",
    (c, p) => {
      if (c.sans.length > p.sans.max)
        fail(
          "TOO_MANY_NAMES",
          `The CSR asks for ${c.sans.length} names; this profile allows at most ${p.sans.max}.`,
          "subjectAltName",
        );
    },
  ],
  [
    "sanRequired",
    (c, p) => {
      if (p.sans.requireOne && c.sans.length === 0)
        fail(
          "SAN_REQUIRED",
          "This profile requires at least one subject alternative name, and the CSR has none.",
          "subjectAltName",
        );
    },
  ],
  [
    "sanSyntax",
    (c) => {
      for (const s of c.sans) {
        const why = SYNTAX[s.type](s.value);
        if (why)
          fail("NAME_INVALID", `The ${SAN_LABEL[s.type]} name "${s.value}" is not valid: ${why}.`, s.value);
      }
    },
  ],
  [
    // One CN at most, one attribute per RDN: stacks disagree on which of several CNs is "the" name
    // (Go reads the last, most others the first), so a second CN could slip past name policy.
    "subjectShape",
    (c) => {
      if (hasMultiValuedRdn(c.subjectDer))
        fail(
          "NAME_INVALID",
          "The subject has a multi-valued RDN (TYPE=a+TYPE=b); use one attribute per RDN.",
          "subject",
        );
      if (hasSubjectEmail(c.subjectDer))
        fail(
          "NAME_INVALID",
          "The subject has an emailAddress attribute; put email addresses in subjectAltName (RFC 5280 §4.1.2.6).",
          "subject",
        );
      if (commonNames(c.subjectDer).length > 1)
        fail(
          "NAME_INVALID",
          "The subject has more than one CN; put further names in subjectAltName.",
          "subject",
        );
    },
  ],
  [
    // RFC 5280 Appendix A.1 upper bounds (CN ≤ 64, O ≤ 64, L ≤ 128, C = 2, …): a longer value is
    // refused here (coordinator intake and each custodian) and again by the lint e_subject_bounds.
    "subjectBounds",
    (c) => {
      const why = nameBoundProblem(c.subjectDer);
      if (why) fail("NAME_INVALID", `The subject's ${why}.`, "subject");
    },
  ],
  [
    "requesterNames",
    (c, _p, r) => {
      if (!r) return;
      // Every name the certificate will carry: each SAN of every kind, and the CN.
      const names: San[] = [
        ...c.sans,
        ...commonNames(c.subjectDer).map((value) => ({ type: "dns" as const, value })),
      ];
      for (const { type, value: n } of names) {
        if (!r.allowedNames.some((pat) => grantCovers(type, n, pat))) {
          fail(
            "NAME_NOT_ALLOWED",
            `The name "${n}" is not one this requester may ask for (allowed: ${r.allowedNames.join(", ") || "none"}).`,
            n,
          );
        }
      }
    },
  ],
];

/**
 * Refuses a request whose names (every SAN and the CN) another requester's `exclusive` grant covers
 * — in either direction, so `*.example.internal` is refused when `ca.example.internal` is reserved.
 * Run by the coordinator at intake and by every custodian before it approves (docs/tls.md).
 */
export function checkExclusiveNames(
  csr: Pick<ParsedCsr, "sans" | "subjectDer">,
  requester: string,
  requesters: readonly { name: string; allowedNames: readonly string[]; exclusive?: boolean }[],
): void {
  const names: San[] = [
    ...csr.sans,
    ...commonNames(csr.subjectDer).map((value) => ({ type: "dns" as const, value })),
  ];
  for (const { type, value } of names) {
    const owner = exclusiveOwnerOf(type, value, requester, requesters);
    if (owner)
      fail(
        "NAME_NOT_ALLOWED",
        `The name "${value}" is reserved for requester ${owner} (its grant is exclusive in ca-config).`,
        value,
      );
  }
}

/**
 * The other requester whose `exclusive` grant reserves this name (compared as `clashes` says), or
 * undefined. One name at a time, for callers that check names before there is a CSR (ACME newOrder).
 */
export function exclusiveOwnerOf(
  type: SanType,
  value: string,
  requester: string,
  requesters: readonly { name: string; allowedNames: readonly string[]; exclusive?: boolean }[],
): string | undefined {
  for (const owner of requesters) {
    if (!owner.exclusive || owner.name === requester) continue;
    if (owner.allowedNames.some((pat) => pat !== "*" && clashes(type, value, pat))) return owner.name;
  }
  return undefined;
}

/**
 * Whether `name` could be taken for what the reserved pattern names, as TLS clients compare them:
 * DNS names and CNs case-insensitively and without a trailing dot (Node's checkServerIdentity drops
 * it), a wildcard in either direction; IP addresses by their bytes, an IPv4-mapped IPv6 address as
 * the IPv4 address (Java and Go match them to each other).
 */
function clashes(type: SanType, name: string, pattern: string): boolean {
  if (type === "ip") {
    const a = canonicalIp(name);
    const b = canonicalIp(pattern);
    return a !== undefined && a === b;
  }
  if (type !== "dns") return grantCovers(type, name, pattern);
  const n = name.toLowerCase().replace(/\.$/, "");
  const p = pattern.toLowerCase().replace(/\.$/, "");
  return grantCovers("dns", n, p) || grantCovers("dns", p, n);
}

/** An IP address as hex of its bytes, IPv4-mapped IPv6 (::ffff:a.b.c.d) folded to IPv4. */
function canonicalIp(text: string): string | undefined {
  const b = ipToBytes(text);
  if (!b) return undefined;
  const mapped =
    b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return Buffer.from(mapped ? b.subarray(12) : b).toString("hex");
}

/**
 * Whether a grant pattern covers a name: DNS names and CNs by `matchesPattern` ("*", "*.suffix",
 * exact); IP addresses exactly; emails exactly or "*@domain"; URIs exactly or by a "prefix*".
 */
export function grantCovers(type: SanType, name: string, pattern: string): boolean {
  if (pattern === "*") return true;
  switch (type) {
    case "dns":
      return matchesPattern(name, pattern);
    case "ip":
      return name === pattern;
    case "email":
      return pattern.startsWith("*@")
        ? name.toLowerCase().endsWith(pattern.slice(1).toLowerCase())
        : name.toLowerCase() === pattern.toLowerCase();
    case "uri": {
      if (!pattern.endsWith("/*")) return name === pattern;
      // A prefix covers a path below it only: no dot segments, encoded dots or slashes, query or fragment.
      const rest = name.slice(pattern.length - 1);
      return name.startsWith(pattern.slice(0, -1)) && !/(^|\/)\.\.?(\/|$)|%2e|%2f|[?#]/i.test(rest);
    }
  }
}

/** Runs every request check in order; throws on the first failure. */
export function checkRequest(csr: CsrFacts, profile: Profile, requester?: RequesterNames): void {
  for (const [, check] of REQUEST_CHECKS) check(csr, profile, requester);
}

export interface ValidityInput {
  notBefore: Date;
  notAfter: Date;
  profile: Pick<Profile, "maxValidityHours">;
  caNotAfter: Date;
  /** When given, notBefore must be within maxClockSkewSeconds of it (docs/architecture.md §3.2). */
  now?: Date;
  maxClockSkewSeconds?: number;
}

/** Validity bounds (docs/architecture.md §3.2): ordered, within the profile cap, not past the CA. */
export function checkValidity(v: ValidityInput): void {
  // Judge the times the certificate will carry: whole seconds (see time.ts).
  const nb = truncateToSeconds(v.notBefore).getTime();
  const na = truncateToSeconds(v.notAfter).getTime();
  const iso = (d: Date) => d.toISOString();
  if (!(na > nb))
    fail(
      "VALIDITY_NOT_ALLOWED",
      `notAfter ${iso(v.notAfter)} is not after notBefore ${iso(v.notBefore)}.`,
      "notAfter",
    );
  const hours = (na - nb) / 3_600_000;
  if (hours > v.profile.maxValidityHours)
    fail(
      "VALIDITY_NOT_ALLOWED",
      `The validity of ${hours.toFixed(2)} hours exceeds this profile's ${v.profile.maxValidityHours} hours.`,
      "notAfter",
    );
  if (na > v.caNotAfter.getTime())
    fail(
      "VALIDITY_NOT_ALLOWED",
      `notAfter ${iso(v.notAfter)} is later than the CA certificate's notAfter ${iso(v.caNotAfter)}.`,
      "notAfter",
    );
  if (v.now) {
    const skew = Math.abs(nb - v.now.getTime()) / 1000;
    const max = v.maxClockSkewSeconds ?? 300;
    if (skew > max)
      fail(
        "VALIDITY_NOT_ALLOWED",
        `notBefore ${iso(v.notBefore)} is ${Math.round(skew)} s from this node's clock ${iso(v.now)}; at most ${max} s is allowed.`,
        "notBefore",
      );
  }
}
