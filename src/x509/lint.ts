// Pre-sign lints in the spirit of Boulder/zlint (docs/architecture.md §3.2): a custodian runs them on the
// TBSCertificate it is about to sign, so a compromised coordinator cannot get a malformed
// certificate signed even if the builder had a bug. Each rule has a stable name; lintTbs throws
// LINT_FAILED with `field` = the first failing rule and a message listing every failure.
import { X509Error } from "./errors.ts";
import { readTbs, type ParsedTbs } from "./tbs-read.ts";
import { FIELD_RULES, type LintContext } from "./lint-fields.ts";
import { EXTENSION_RULES } from "./lint-extensions.ts";

export interface LintOptions extends LintContext {
  /** The CA certificate's subject, exact DER bytes. */
  caSubjectDer: Uint8Array;
  /** The CA's subject key identifier, hex; when given, AKI must equal it. */
  caSkiHex?: string;
}

export interface LintFinding {
  rule: string;
  message: string;
}

/** Rule names in the order they run (e_tbs_parse comes first and stops the rest). */
export const LINT_RULES: readonly string[] = [
  "e_tbs_parse",
  ...[...FIELD_RULES, ...EXTENSION_RULES].map(([n]) => n),
];

/** Every failing rule, in rule order; [] for a clean TBS. */
export function lintFindings(tbsDer: Uint8Array, opts: LintOptions): LintFinding[] {
  let t: ParsedTbs;
  try {
    t = readTbs(tbsDer);
  } catch (e) {
    return [{ rule: "e_tbs_parse", message: `the TBSCertificate cannot be parsed: ${(e as Error).message}` }];
  }
  const out: LintFinding[] = [];
  for (const [rule, check] of [...FIELD_RULES, ...EXTENSION_RULES]) {
    let msg: string | undefined;
    try {
      msg = check(t, opts);
    } catch (e) {
      msg = `an extension it reads is malformed: ${(e as Error).message}`;
    }
    if (msg !== undefined) out.push({ rule, message: msg });
  }
  return out;
}

/** Throws X509Error LINT_FAILED (field = first failing rule) unless every rule passes. */
export function lintTbs(tbsDer: Uint8Array, opts: LintOptions): void {
  const f = lintFindings(tbsDer, opts);
  if (f.length === 0) return;
  const list = f.map((x) => `${x.rule}: ${x.message}`).join("; ");
  throw new X509Error(
    "LINT_FAILED",
    `The certificate would break ${f.length === 1 ? "a rule" : `${f.length} rules`}: ${list}.`,
    f[0]!.rule,
  );
}
