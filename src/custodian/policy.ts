// A custodian's local auto-approval policy (README, ca-config reference): what its agent may approve without
// a person. It lives in the custodian's home, not in ca-config, so each node decides for itself. Rules are
// small checks in a fixed order; a request is approved when every check of one rule passes.
//
// A rule with `acmeValidated: true` also asks that the request came from an ACME order (RFC 8555 §7.4)
// whose validated identifiers are exactly the names this custodian read from the TBS it derived
// itself — every dNSName and iPAddress SAN and the CN, nothing missing and nothing left over — each
// validated recently enough before the request was made. The origin is the coordinator's statement
// (src/protocol/origin.ts): the custodian checks it matches the certificate, and trusts the validation
// itself as far as it trusts the coordinator (docs/security-model.md). The rule's `names`,
// `profiles`, `requesters` and `maxValidityHours` still apply: "any ACME-validated name under
// svc.internal" is `{profiles: [acme], names: ["*.svc.internal"], acmeValidated: true, …}`.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Review, ReviewSubject } from "./session.ts";
import { grantCovers } from "../x509/policy.ts";
import { ipToBytes } from "../x509/ip.ts";
import { asciiLowerCase } from "../x509/name-syntax.ts";
import type { San } from "../x509/sans.ts";
import type { ValidatedIdentifier } from "../protocol/origin.ts";
import { ConfigError } from "../config/errors.ts";
import type { RenewalVerdict } from "./renewal-check.ts";

const RuleSchema = z
  .object({
    name: z.string().min(1).max(64),
    profiles: z.array(z.string()).min(1),
    /** Requester names; omitted = any requester ca-config grants the profile. */
    requesters: z.array(z.string()).optional(),
    /** Every SAN value and the subject CN must match one of these ("*", "*.svc.internal", exact). */
    names: z.array(z.string()).min(1),
    maxValidityHours: z.number().int().positive(),
    keyTypes: z.array(z.string()).optional(),
    /**
     * Only requests from an ACME order whose validated identifiers are exactly the certificate's
     * names (every DNS and IP SAN and the CN), each validated within `acmeValidatedWithinHours`.
     */
    acmeValidated: z.boolean().optional(),
    /** How old a validation may be when the request is made (RFC 8555 leaves reuse to the CA). */
    acmeValidatedWithinHours: z
      .number()
      .int()
      .positive()
      .max(24 * 397)
      .optional(),
  })
  .strict()
  .refine((r) => r.acmeValidatedWithinHours === undefined || r.acmeValidated === true, {
    message: "acmeValidatedWithinHours needs acmeValidated: true",
    path: ["acmeValidatedWithinHours"],
  });

/** How old an ACME validation may be, by default: 30 days (as Let's Encrypt reuses authorizations). */
export const DEFAULT_ACME_VALIDATED_WITHIN_HOURS = 720;
/**
 * How far a validation may seem to follow the request: both times are the coordinator's, but its
 * replicas' clocks may differ a little (the validation and the finalize may run on different ones).
 */
const ACME_CLOCK_SKEW_MS = 5 * 60_000;

export const PolicySchema = z
  .object({
    version: z.literal(1),
    autoApprove: z.array(RuleSchema).default([]),
    /** Sign CRLs that pass the custodian's CRL checks (docs/architecture.md §3.9) without a person. */
    signCrls: z.boolean().default(true),
    /**
     * Sign checkpoints of the audit chain's head (docs/audit.md) that pass the custodian's checks
     * (its CA, a sequence number above the last one it signed) without a person.
     */
    signCheckpoints: z.boolean().default(true),
    /**
     * Renewals (docs/revocation.md): `approveIfApprovedOriginal` approves a renewal of a certificate
     * this custodian approved itself, after checking the holder's proof on its own
     * (renewal-check.ts); `manual` (default) treats it like any request.
     */
    renewals: z.enum(["manual", "approveIfApprovedOriginal"]).default("manual"),
    /**
     * Approve the certification request for the CA key itself (intermediate mode,
     * docs/intermediate.md) without a person, once this custodian has derived it from its own
     * ca-config and group key. Off by default: putting the CA under another root is a person's call.
     */
    signCaCsr: z.boolean().default(false),
    approvalValidityHours: z
      .number()
      .int()
      .positive()
      .max(24 * 30)
      .default(24),
  })
  .strict();
export type Policy = z.infer<typeof PolicySchema>;
export type PolicyRule = z.infer<typeof RuleSchema>;

export function loadPolicy(path: string): Policy {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError("CONFIG_MISSING", `cannot read policy ${path}: ${(e as Error).message}`);
  }
  const parsed = PolicySchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      "CONFIG_INVALID",
      `${path}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}

export type PolicyDecision = { approve: true; reason: string } | { approve: false; reason: string };

/** Why a rule does not match, or undefined if it does. */
function ruleMismatch(rule: PolicyRule, r: Review<ReviewSubject>): string | undefined {
  const q = r.request;
  if (!rule.profiles.includes(q.profile)) return `profile ${q.profile} not in [${rule.profiles.join(", ")}]`;
  if (rule.requesters && !rule.requesters.includes(q.requester))
    return `requester ${q.requester} not in [${rule.requesters.join(", ")}]`;
  // The key type as this custodian read it from the CSR, not as the coordinator labels it.
  const pk = r.tbs.publicKey;
  const keyType = pk.type === "rsa" ? `rsa-${pk.bits}` : pk.type;
  if (rule.keyTypes && !rule.keyTypes.includes(keyType))
    return `key type ${keyType} not in [${rule.keyTypes.join(", ")}]`;
  // Each name judged by its kind, exactly as requester grants are (x509/policy.ts grantCovers).
  const names = [...r.tbs.sans, ...r.commonNames.map((value) => ({ type: "dns" as const, value }))];
  const outside = names.find((n) => !rule.names.some((p) => grantCovers(n.type, n.value, p)));
  if (outside) return `name ${outside.value} matches none of [${rule.names.join(", ")}]`;
  if (r.tbs.validityHours > rule.maxValidityHours)
    return `validity ${Math.round(r.tbs.validityHours)} h exceeds ${rule.maxValidityHours} h`;
  if (rule.acmeValidated)
    return acmeOriginProblem(r, rule.acmeValidatedWithinHours ?? DEFAULT_ACME_VALIDATED_WITHIN_HOURS);
  return undefined;
}

/**
 * Why the request's ACME origin does not vouch for exactly the names in the TBS this custodian
 * derived, or undefined if it does. Each name must equal an identifier, never merely be covered by
 * one: DNS names compare case-insensitively (RFC 4343) and otherwise literally, so a wildcard SAN is
 * vouched for only by a wildcard identifier (RFC 8555 §7.1.3), never by its base name, and a plain
 * name never by a wildcard; IP addresses compare by their octets (RFC 8738 §3). The subject must be
 * empty or one CN of printable ASCII: no attribute ACME does not validate.
 */
export function acmeOriginProblem(
  r: Review<ReviewSubject>,
  withinHours: number = DEFAULT_ACME_VALIDATED_WITHIN_HOURS,
): string | undefined {
  const origin = r.request.origin;
  if (!origin || origin.kind !== "acme") return "the request did not come from an ACME order";
  // ACME validates identifiers only (RFC 8555 §7.1.4): the subject is empty or one CN, of
  // printable ASCII, nothing else — whatever the coordinator, which is not trusted here, accepted.
  // The TBS's subject text (RFC 4514, as x509/names.ts renders it) is exactly "CN=<value>" for one
  // such CN: any other attribute, a second RDN or a value needing escapes shows in it.
  const [cn, ...moreCns] = r.commonNames;
  if (cn === undefined ? r.tbs.subject !== "" : moreCns.length > 0 || r.tbs.subject !== `CN=${cn}`)
    return `the subject ${JSON.stringify(r.tbs.subject.slice(0, 200))} is not empty or exactly one CN: ACME validates no other attribute`;
  if (cn !== undefined && !/^[\x21-\x7e]+$/.test(cn))
    return `the subject CN ${JSON.stringify(cn.slice(0, 100))} is not printable ASCII`;
  // The certificate's names as this custodian read them: the CN is a DNS name, or an IP address
  // written as text.
  const names: San[] = [
    ...r.tbs.sans,
    ...r.commonNames.map((value) => ({ type: ipToBytes(value) ? ("ip" as const) : ("dns" as const), value })),
  ];
  const keyOf = (type: string, value: string): string | undefined => {
    // RFC 4343 §3: A-Z folded, nothing else (toLowerCase would fold U+212A KELVIN SIGN to "k").
    if (type === "dns") return `dns:${asciiLowerCase(value)}`;
    if (type === "ip") {
      const octets = ipToBytes(value);
      return octets ? `ip:${Buffer.from(octets).toString("hex")}` : undefined;
    }
    return undefined; // email and URI names: ACME validates neither
  };
  const validated = new Map<string, ValidatedIdentifier>();
  for (const id of origin.identifiers) {
    const key = keyOf(id.type, id.value);
    if (!key) return `ACME identifier ${id.value} is not a valid ${id.type === "ip" ? "IP address" : "name"}`;
    validated.set(key, id);
  }
  const created = Date.parse(r.request.createdAt);
  const covered = new Set<string>();
  for (const n of names) {
    const key = keyOf(n.type, n.value);
    const id = key === undefined ? undefined : validated.get(key);
    if (!key || !id) return `name ${n.value} was not validated by ACME order ${origin.order}`;
    covered.add(key);
    const at = Date.parse(id.validatedAt);
    if (!Number.isFinite(created) || !Number.isFinite(at) || at > created + ACME_CLOCK_SKEW_MS)
      return `name ${n.value}: its validation time ${id.validatedAt} does not precede the request (${r.request.createdAt})`;
    if (created - at > withinHours * 3_600_000)
      return `name ${n.value} was validated at ${id.validatedAt}, more than ${withinHours} h before the request`;
  }
  // An identifier the certificate does not carry: the order and the certificate disagree.
  const extra = [...validated.entries()].find(([key]) => !covered.has(key));
  if (extra) return `ACME identifier ${extra[1].value} is not among the certificate's names`;
  return undefined;
}

/**
 * The decision on one request. `renewal` is this custodian's own verdict on the request's renewal
 * proof (renewal-check.ts), when it is one and the policy approves renewals.
 */
export function evaluatePolicy(
  policy: Policy,
  review: Review<ReviewSubject>,
  renewal?: RenewalVerdict,
): PolicyDecision {
  if (review.problem) return { approve: false, reason: `not approvable: ${review.problem}` };
  const misses: string[] = [];
  for (const rule of policy.autoApprove) {
    const miss = ruleMismatch(rule, review);
    if (!miss) return { approve: true, reason: `matches rule "${rule.name}"` };
    misses.push(`rule "${rule.name}": ${miss}`);
  }
  if (policy.renewals === "approveIfApprovedOriginal" && renewal) {
    if (renewal.ok)
      return { approve: true, reason: `renewal of ${renewal.serial}, a certificate I approved` };
    misses.push(`renewal: ${renewal.reason}`);
  }
  return {
    approve: false,
    reason: misses.length
      ? `waiting for a person: ${misses.join("; ")}`
      : "waiting for a person: no auto-approve rules",
  };
}
