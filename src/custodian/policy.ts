// A custodian's local auto-approval policy (README, ca-config reference): what its agent may approve without
// a person. It lives in the custodian's home, not in ca-config, so each node decides for itself. Rules are
// small checks in a fixed order; a request is approved when every check of one rule passes.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Review, ReviewSubject } from "./session.ts";
import { grantCovers } from "../x509/policy.ts";
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
  })
  .strict();

export const PolicySchema = z
  .object({
    version: z.literal(1),
    autoApprove: z.array(RuleSchema).default([]),
    /** Sign CRLs that pass the custodian's CRL checks (docs/architecture.md §3.9) without a person. */
    signCrls: z.boolean().default(true),
    /**
     * Renewals (docs/revocation.md): `approveIfApprovedOriginal` approves a renewal of a certificate
     * this custodian approved itself, after checking the holder's proof on its own
     * (renewal-check.ts); `manual` (default) treats it like any request.
     */
    renewals: z.enum(["manual", "approveIfApprovedOriginal"]).default("manual"),
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
