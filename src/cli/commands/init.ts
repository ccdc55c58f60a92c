// `tca init`: write a ca-config directory for a real CA (README, "Setting up a real CA"). On a
// terminal it asks (src/cli/init-prompts.ts); otherwise the flags say everything. The config itself
// is built, checked and written by src/config/init.ts; this file parses flags and prints.
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import {
  caSubject,
  INIT_DEFAULTS,
  InitSpecError,
  nextSteps,
  parseCustodianEntry,
  planInit,
  shownPath,
  splitList,
  writeInit,
  type InitSpec,
  type ProfileTemplate,
} from "../../config/init.ts";
import type { CustodianEntry } from "../../config/schema.ts";
import { nameToDer } from "../../x509/names.ts";
import { promptSpec } from "../init-prompts.ts";
import { printResult, progress, runCommand, UsageError } from "../output.ts";

interface InitOpts {
  dir?: string;
  caName?: string;
  caOrg?: string;
  caCountry?: string;
  rootValidityDays?: string;
  publicUrl?: string;
  custodians?: string;
  custodianEntry?: string[];
  threshold?: string;
  profiles?: string;
  domain?: string;
  requester?: string[];
  admin?: string[];
  tlsName?: string[];
  tokenDir?: string;
  force?: boolean;
  json?: boolean;
  input: boolean;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...splitList(v)];
const collectRaw = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A roster entry from a file (the output of `tca custodian init`, text or --json) or from the text itself. */
export function readCustodianEntry(arg: string): CustodianEntry {
  if (existsSync(arg) && statSync(arg).isFile()) return parseCustodianEntry(readFileSync(arg, "utf8"), arg);
  if (/signingKey/.test(arg)) return parseCustodianEntry(arg, "--custodian-entry");
  throw new InitSpecError(
    `--custodian-entry ${arg}: no such file (give a file holding the output of \`tca custodian init\`, or that output itself)`,
  );
}

function wholeNumber(flag: string, v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new InitSpecError(`${flag} "${v}": a whole number`);
  return Number(v);
}

/** What the flags say, as far as they say it. */
export function specFromFlags(o: InitOpts): Partial<InitSpec> {
  const entries = (o.custodianEntry ?? []).map(readCustodianEntry);
  const custodians = o.custodians !== undefined ? splitList(o.custodians) : undefined;
  return {
    dir: o.dir ?? INIT_DEFAULTS.dir,
    ...(o.caName === undefined ? {} : { caName: o.caName }),
    caOrg: o.caOrg,
    caCountry: o.caCountry,
    rootValidityDays:
      o.rootValidityDays === undefined
        ? INIT_DEFAULTS.rootValidityDays
        : wholeNumber("--root-validity-days", o.rootValidityDays),
    publicUrl: o.publicUrl,
    // Without --custodians, the entries given name the roster.
    ...(custodians !== undefined
      ? { custodians }
      : entries.length > 0
        ? { custodians: entries.map((e) => e.name) }
        : {}),
    entries,
    ...(o.threshold === undefined ? {} : { threshold: wholeNumber("--threshold", o.threshold) }),
    profiles: (o.profiles === undefined
      ? INIT_DEFAULTS.profiles
      : splitList(o.profiles)) as ProfileTemplate[],
    domain: o.domain,
    requesters: o.requester ?? [],
    admins: o.admin ?? [...INIT_DEFAULTS.admins],
    tlsNames: o.tlsName ?? [],
    tokenDir: o.tokenDir,
  };
}

/** The flags-only spec: --ca-name, --custodians (or entries) and --threshold are required. */
export function completeSpec(p: Partial<InitSpec>): InitSpec {
  const missing = [
    p.caName === undefined ? "--ca-name" : undefined,
    p.custodians === undefined ? "--custodians (or --custodian-entry)" : undefined,
    p.threshold === undefined ? "--threshold" : undefined,
  ].filter((m) => m !== undefined);
  if (missing.length > 0)
    throw new InitSpecError(
      `${missing.join(", ")} required when tca init does not run on a terminal (on one it asks)`,
    );
  return p as InitSpec;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description(
      "write a ca-config for a real CA (asks on a terminal, flags otherwise): subject, custodians, threshold, profiles, tokens",
    )
    .option("--dir <dir>", "directory to write ca.yaml into", INIT_DEFAULTS.dir)
    .option("--ca-name <cn>", 'the root certificate\'s common name, e.g. "Example Root CA"')
    .option("--ca-org <o>", "the root's organization (O)")
    .option("--ca-country <cc>", "the root's country (C), two letters")
    .option(
      "--root-validity-days <days>",
      "validity of the root certificate",
      String(INIT_DEFAULTS.rootValidityDays),
    )
    .option("--public-url <url>", "base URL clients reach the coordinator at (CRL and CA links in leaves)")
    .option("--custodians <names>", "custodian names, comma-separated, e.g. alice,bob,carol")
    .option(
      "--custodian-entry <file>",
      "a file holding what `tca custodian init` printed (text or --json), or that text (repeatable); custodians without one get a placeholder",
      collectRaw,
    )
    .option("--threshold <t>", "how many custodians must sign (1 < t <= n)")
    .option("--profiles <list>", "profiles from the templates server, client, intermediate", "server,client")
    .option(
      "--domain <suffix>",
      "requesters may ask only for names under it; intermediates are constrained to it",
    )
    .option(
      "--requester <name>",
      "a requester granted the leaf profiles, with a new token (repeatable)",
      collect,
    )
    .option("--admin <name>", "an admin with a new token (repeatable; default: admin)", collect)
    .option(
      "--tls-name <name>",
      "a name of the coordinator's own certificate for `tca serve --tls auto` (repeatable): adds the coordinator requester",
      collectRaw,
    )
    .option("--token-dir <dir>", "write each token to DIR/ROLE-NAME.token (mode 0600) instead of printing it")
    .option("--force", "overwrite an existing ca.yaml and token files")
    .option("--no-input", "never prompt, even on a terminal")
    .option("--json", "print the result as JSON")
    .action((o: InitOpts) =>
      runCommand(async () => {
        try {
          await runInit(o);
        } catch (e) {
          if (e instanceof InitSpecError) throw new UsageError(e.message);
          throw e;
        }
      }),
    );
}

async function runInit(o: InitOpts): Promise<void> {
  const flags = specFromFlags(o);
  const terminal = process.stdin.isTTY === true && process.stderr.isTTY === true;
  const needsAnswers =
    flags.caName === undefined || flags.custodians === undefined || flags.threshold === undefined;
  const spec =
    o.input && terminal && needsAnswers
      ? await promptSpec(flags, { input: process.stdin, output: process.stderr }, readCustodianEntry)
      : completeSpec(flags);

  const plan = planInit(spec);
  // The subject is also checked by the X.509 encoder that will write it into the root.
  try {
    nameToDer(caSubject(spec.caName, spec.caOrg, spec.caCountry), "CA subject");
  } catch (e) {
    throw new InitSpecError((e as Error).message);
  }
  const result = writeInit(plan, { force: o.force === true });
  for (const w of plan.warnings) progress(`tca: warning: ${w}`);

  const steps = nextSteps(plan);
  const tokens = plan.tokens.map((t) => ({
    role: t.role,
    name: t.name,
    ...(t.file === undefined ? { token: t.token } : { file: t.file }),
  }));
  const config = shownPath(result.configPath);
  const text: string[] = [
    `wrote ${config}: ${spec.threshold} of ${spec.custodians.length} custodians (${spec.custodians.join(", ")}), profiles ${spec.profiles.join(", ")}`,
    result.digest !== undefined
      ? `config digest ${result.digest}`
      : `NOT READY: ${plan.placeholders.join(", ")} ${plan.placeholders.length === 1 ? "is a placeholder" : "are placeholders"}; tca serve refuses the file until their entries are filled in`,
  ];
  if (plan.tokens.length > 0) {
    text.push("");
    if (plan.tokens.some((t) => t.file === undefined)) {
      text.push("Tokens (shown this once; ca-config holds only their SHA-256; keep them secret):");
      for (const t of plan.tokens) if (t.file === undefined) text.push(`  ${t.role} ${t.name}: ${t.token}`);
    }
    const files = plan.tokens.filter((t) => t.file !== undefined);
    if (files.length > 0) {
      text.push("Tokens written (mode 0600; ca-config holds only their SHA-256):");
      for (const t of files) text.push(`  ${t.role} ${t.name}: ${shownPath(t.file!)}`);
    }
  }
  text.push("", "Next steps:");
  for (const [i, s] of steps.entries()) {
    text.push(`${i + 1}. ${s.what}:`);
    for (const c of s.commands) text.push(`     ${c}`);
  }
  printResult(
    o.json === true,
    {
      configPath: result.configPath,
      ready: result.digest !== undefined,
      ...(result.digest === undefined ? {} : { digest: result.digest }),
      placeholders: plan.placeholders,
      custodians: spec.custodians,
      threshold: spec.threshold,
      profiles: spec.profiles,
      tokens,
      warnings: plan.warnings,
      nextSteps: steps,
    },
    text.join("\n"),
  );
}
