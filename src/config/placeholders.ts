// Roster entries left to fill in. `tca init` can write a ca-config before every custodian has run
// `tca custodian init`; such an entry carries this marker instead of its keys, and every loader of
// the file (`tca serve`, `tca custodian dkg`, …) refuses it with a message saying what to do,
// rather than the schema's "must be base64url" about a key nobody has yet.

/** What a placeholder key starts with. Not base64url (it has spaces), so it can never be a key. */
export const PLACEHOLDER_MARK = "FILL IN:";

/** The placeholder value of a custodian's key until its entry is pasted in. */
export function placeholderKey(custodian: string): string {
  return `${PLACEHOLDER_MARK} the entry printed by \`tca custodian init --name ${custodian}\``;
}

const isPlaceholder = (v: unknown): boolean => typeof v === "string" && v.startsWith(PLACEHOLDER_MARK);

/**
 * The custodians of a parsed (not yet validated) ca-config whose entry is still a placeholder, in
 * roster order.
 */
export function placeholderCustodians(raw: unknown): string[] {
  if (typeof raw !== "object" || raw === null) return [];
  const list = (raw as { custodians?: unknown }).custodians;
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const [i, e] of list.entries()) {
    if (typeof e !== "object" || e === null) continue;
    const entry = e as { name?: unknown; signingKey?: unknown; hpkeKey?: unknown };
    if (isPlaceholder(entry.signingKey) || isPlaceholder(entry.hpkeKey))
      out.push(typeof entry.name === "string" ? entry.name : `#${i + 1}`);
  }
  return out;
}

/** The one-line refusal for a ca-config with placeholders, or undefined when it has none. */
export function placeholderProblem(raw: unknown, source: string): string | undefined {
  const names = placeholderCustodians(raw);
  if (names.length === 0) return undefined;
  const who = names.join(", ");
  const one = names.length === 1;
  return (
    `${source}: ${one ? `the roster entry of ${who} is still a placeholder` : `the roster entries of ${who} are still placeholders`}: ` +
    `run \`tca custodian init\` on ${one ? "that custodian's" : "each one's"} machine and replace signingKey and ` +
    `hpkeKey with the printed entry (or run \`tca init --force\` again with --custodian-entry)`
  );
}
