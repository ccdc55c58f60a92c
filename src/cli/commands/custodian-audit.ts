// `tca custodian audit` (docs/audit.md): fetch the coordinator's audit chain with this custodian's
// signed reads, verify it against this custodian's own ca-config and pinned CA key, and compare it
// with the custodian's journal: anything the chain attributes to this custodian that the journal
// does not hold, and any checkpoint this custodian signed that the chain contradicts, is an error
// (exit 3); journal entries the chain lacks are notes. One line per finding, or --json.
import { Option, type Command } from "commander";
import { resolve } from "node:path";
import { CustodianHome } from "../../custodian/home.ts";
import { auditAgainstCoordinator } from "../../custodian/audit-check.ts";
import { signedReader } from "../custodian-reader.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { EXIT, runCommand } from "../output.ts";

interface AuditOpts {
  home: string;
  coordinator?: string[];
  config?: string;
  passphraseFile?: string;
  strict?: boolean;
  json?: boolean;
}

export function registerCustodianAudit(cust: Command, defaultHome: () => string): void {
  cust
    .command("audit")
    .description(
      "compare the coordinator's audit chain with this custodian's journal: report anything recorded in my name that I never journaled (exit 3)",
    )
    .addOption(
      new Option("--home <dir>", "custodian data directory").default(
        defaultHome(),
        "$TCA_HOME or ~/.tca/custodian",
      ),
    )
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or the ones from the ceremony)",
      collectUrls,
    )
    .option("--config <path>", "this custodian's copy of ca-config (default: HOME/ca-config.yaml)")
    .option(
      "--passphrase-file <file>",
      "keystore passphrase file, to sign the reads (else TCA_PASSPHRASE or a prompt)",
    )
    .option("--strict", "also fail (exit 3) on journal entries the chain does not hold")
    .option("--json", "print the verdict and the findings as JSON")
    .action((o: AuditOpts) =>
      runCommand(async () => {
        const home = new CustodianHome(resolve(o.home));
        const config = home.config(o.config);
        const client = await signedReader(home, home.coordinatorUrl(coordinatorUrls(o.coordinator)), o);
        const r = await auditAgainstCoordinator({
          client,
          home,
          config,
          ...(o.strict ? { strict: true } : {}),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else {
          const lines = [
            r.verdict.ok
              ? `chain OK: ${r.entries} entries, ${r.verdict.certificates} certificates, ${r.verdict.checkpoints} checkpoints`
              : `chain BROKEN at entry ${r.verdict.firstBroken!.seq}: ${r.verdict.firstBroken!.reason} (compared up to entry ${r.verdict.checked})`,
            ...r.findings.map((f) => `${f.severity === "error" ? "ERROR" : "note"}: ${f.message}`),
            `${r.consistent ? "consistent" : "NOT consistent"}: ${r.counts.decisions} decisions, ${r.counts.shares} signature shares ` +
              `in my name checked against ${r.counts.journalEntries} journal entries (${r.journal})`,
          ];
          process.stdout.write(`${lines.join("\n")}\n`);
        }
        if (!r.consistent) process.exitCode = EXIT.REFUSED;
      }),
    );
}
