// The custodian roster and its changes (docs/key-lifecycle.md "Roster changes").
//
// The roster is the part of ca-config that says who holds the CA key: the threshold and each
// custodian's name and identity keys. It changes only when t custodians of the roster in force
// sign the new one: every node checks those signatures itself before it uses a new roster, so
// neither an operator with write access to ca-config nor the coordinator can add a custodian alone.
// A signature is detached (not an envelope) so that anyone holding the old roster can check a
// change offline, years later, from the audit chain.
import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../common/canonical-json.ts";
import { signEd25519, verifyEd25519 } from "../common/ed25519.ts";
import type { CaConfig } from "../config/schema.ts";

const b64url32 = z
  .string()
  .regex(/^[A-Za-z0-9_-]{43}$/, "a base64url 32-byte key")
  .refine((s) => Buffer.from(s, "base64url").length === 32, "must encode 32 bytes");
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "64 lowercase hex digits");

export const RosterMemberSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    signingKey: b64url32,
    hpkeKey: b64url32,
  })
  .strict();
export type RosterMember = z.infer<typeof RosterMemberSchema>;

/** Who holds the CA key and how many of them must sign. Members are kept sorted by name. */
export const RosterSchema = z
  .object({
    threshold: z.number().int().min(2),
    custodians: z.array(RosterMemberSchema).min(2).max(64),
  })
  .strict()
  .refine((r) => r.threshold <= r.custodians.length, "threshold exceeds the number of custodians")
  .refine(
    (r) => new Set(r.custodians.map((c) => c.name)).size === r.custodians.length,
    "custodian names must be unique",
  );
export type Roster = z.infer<typeof RosterSchema>;

/** The roster a ca-config declares, members sorted by name. */
export function rosterOf(config: Pick<CaConfig, "threshold" | "custodians">): Roster {
  return {
    threshold: config.threshold,
    custodians: [...config.custodians]
      .map((c) => ({ name: c.name, signingKey: c.signingKey, hpkeKey: c.hpkeKey }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

/** SHA-256 over the canonical roster (members sorted by name), hex: what a roster change names. */
export function rosterDigest(roster: Roster): string {
  const sorted = [...roster.custodians].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return createHash("sha256")
    .update("tca/roster/v1\n")
    .update(canonicalJson({ threshold: roster.threshold, custodians: sorted }))
    .digest("hex");
}

/** Names → base64url signing keys, the map openEnvelope takes. */
export function rosterSigningKeys(roster: Roster): Map<string, string> {
  return new Map(roster.custodians.map((c) => [c.name, c.signingKey]));
}

/**
 * What a custodian signs to accept a new roster: the CA it is for, the roster in force (`from`),
 * the whole new roster (`to` is its digest, so a signature cannot be moved to another roster) and
 * the ceremony that made the key state in force (`basis`), so that a signature cannot be replayed
 * after the roster has changed and changed back. Deterministic: every custodian who agrees builds
 * the same statement, and the signatures add up.
 */
export const RosterChangeStatementSchema = z
  .object({
    caKeyId: hex64,
    from: hex64,
    to: hex64,
    roster: RosterSchema,
    basis: z.string().min(1).max(128),
  })
  .strict()
  .refine((s) => rosterDigest(s.roster) === s.to, "`to` is not the digest of `roster`");
export type RosterChangeStatement = z.infer<typeof RosterChangeStatementSchema>;

export const RosterSignatureSchema = z
  .object({
    signer: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    /** base64url Ed25519 signature over rosterChangeBytes(statement). */
    signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
  })
  .strict();
export type RosterSignature = z.infer<typeof RosterSignatureSchema>;

/** A roster change and the signatures collected for it so far. */
export const SignedRosterChangeSchema = z
  .object({
    statement: RosterChangeStatementSchema,
    signatures: z.array(RosterSignatureSchema).max(64),
  })
  .strict();
export type SignedRosterChange = z.infer<typeof SignedRosterChangeSchema>;

/** The signed bytes: a domain prefix, then the canonical JSON of the statement. */
export function rosterChangeBytes(statement: RosterChangeStatement): Uint8Array {
  return new TextEncoder().encode(`tca/roster-change/v1\n${canonicalJson(statement)}`);
}

/** A custodian's signature on a roster change. */
export function signRosterChange(
  signer: { name: string; signingSecret: Uint8Array },
  statement: RosterChangeStatement,
): RosterSignature {
  const sig = signEd25519(signer.signingSecret, rosterChangeBytes(statement));
  return { signer: signer.name, signature: Buffer.from(sig).toString("base64url") };
}

/** POST /api/v1/roster/signatures: one custodian's signature on a statement. */
export const RosterSignatureSubmitSchema = z
  .object({ statement: RosterChangeStatementSchema, signature: RosterSignatureSchema })
  .strict();
export type RosterSignatureSubmit = z.infer<typeof RosterSignatureSubmitSchema>;

export type RosterChangeCheck =
  { ok: true; signers: string[] } | { ok: false; reason: string; signers: string[] };

/**
 * Checks a roster change against the roster in force: it must start from that roster (`from`),
 * be for this CA, and carry valid signatures of at least `current.threshold` distinct members of
 * it. Signatures by non-members, bad signatures and repeats are not counted. `signers` lists the
 * members whose signatures verify.
 */
export function checkRosterChange(
  change: SignedRosterChange,
  current: Roster,
  caKeyId: string,
  /** The ceremony that made the key state in force, where the checker knows it (the coordinator). */
  basis?: string,
): RosterChangeCheck {
  const s = change.statement;
  const keys = rosterSigningKeys(current);
  const bytes = rosterChangeBytes(s);
  const signers = [
    ...new Set(
      change.signatures
        .filter((g) => {
          const key = keys.get(g.signer);
          return (
            key !== undefined &&
            verifyEd25519(
              new Uint8Array(Buffer.from(g.signature, "base64url")),
              bytes,
              new Uint8Array(Buffer.from(key, "base64url")),
            )
          );
        })
        .map((g) => g.signer),
    ),
  ].sort();
  if (s.caKeyId !== caKeyId) return { ok: false, reason: "the change is for another CA key", signers };
  if (basis !== undefined && s.basis !== basis)
    return { ok: false, reason: "the change was signed for an earlier key state", signers };
  if (s.from !== rosterDigest(current))
    return { ok: false, reason: "the change does not start from the roster in force", signers };
  if (rosterDigest(s.roster) !== s.to)
    return { ok: false, reason: "`to` is not the digest of the new roster", signers };
  if (signers.length < current.threshold)
    return {
      ok: false,
      reason: `${signers.length} of the ${current.threshold} custodian signatures it needs`,
      signers,
    };
  return { ok: true, signers };
}

/** What changes between two rosters, for people deciding whether to sign. */
export function rosterDiff(from: Roster, to: Roster): string[] {
  const lines: string[] = [];
  if (from.threshold !== to.threshold) lines.push(`threshold ${from.threshold} → ${to.threshold}`);
  const before = new Map(from.custodians.map((c) => [c.name, c]));
  const after = new Map(to.custodians.map((c) => [c.name, c]));
  for (const [name, c] of after) {
    const b = before.get(name);
    if (!b) lines.push(`add ${name} (signing key ${c.signingKey})`);
    else if (b.signingKey !== c.signingKey || b.hpkeKey !== c.hpkeKey)
      lines.push(`new identity keys for ${name} (signing key ${c.signingKey})`);
  }
  for (const name of before.keys()) if (!after.has(name)) lines.push(`remove ${name}`);
  lines.push(`custodians ${from.custodians.length} → ${to.custodians.length}`);
  return lines;
}
