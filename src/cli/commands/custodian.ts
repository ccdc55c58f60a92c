import type { Command } from "commander";
import { resolve } from "node:path";
import { CustodianHome } from "../../custodian/home.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import { identityFingerprint } from "../../protocol/identity.ts";
import { runCeremony } from "../../custodian/ceremony.ts";
import { printResult, progress, runCommand } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, requiredCoordinatorUrls } from "../coordinators.ts";
import { registerCustodianRequests, defaultHome } from "./custodian-requests.ts";
import { registerCustodianAgent } from "./custodian-agent.ts";
import { registerCustodianJournal } from "./custodian-journal.ts";
import { registerCustodianAudit } from "./custodian-audit.ts";
import { registerCustodianCaCsr } from "./custodian-ca-csr.ts";
import { registerCustodianCeremony } from "./custodian-ceremony.ts";

interface HomeOpts {
  home: string;
  passphraseFile?: string;
  json?: boolean;
}

export function registerCustodian(program: Command): void {
  const cust = program
    .command("custodian")
    .description("a custodian node: identity, key share, approvals and signing");

  cust
    .command("init")
    .description("create an identity (Ed25519 signing key + X25519 HPKE key) in an encrypted keystore")
    .requiredOption("--home <dir>", "custodian data directory")
    .requiredOption("--name <name>", "this custodian's roster name (lowercase, e.g. alice)")
    .option(
      "--passphrase-file <file>",
      "read the keystore passphrase from a file (else TCA_PASSPHRASE or a prompt)",
    )
    .option("--json", "print the identity as JSON")
    .action((o: HomeOpts & { name: string }) =>
      runCommand(async () => {
        const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile, confirm: true });
        const home = new CustodianHome(resolve(o.home));
        const id = await home.init(o.name, passphrase);
        const fingerprint = identityFingerprint(id);
        printResult(
          !!o.json,
          { ...id, fingerprint },
          [
            `custodian ${id.name} created in ${home.dir}`,
            `fingerprint: ${fingerprint}`,
            "",
            "Add this entry to the custodians list in ca-config/ca.yaml:",
            `  - name: ${id.name}`,
            `    signingKey: ${id.signingKey}`,
            `    hpkeKey: ${id.hpkeKey}`,
          ].join("\n"),
        );
      }),
    );

  registerCustodianRequests(cust);
  registerCustodianAgent(cust, defaultHome);
  registerCustodianJournal(cust, defaultHome);
  registerCustodianAudit(cust, defaultHome);
  registerCustodianCaCsr(cust, defaultHome); // intermediate mode (docs/intermediate.md)
  registerCustodianCeremony(cust, defaultHome); // refresh, reshare, repair (docs/key-lifecycle.md)

  cust
    .command("dkg")
    .description("take part in the key ceremony: DKG, then sign the root certificate")
    .requiredOption("--home <dir>", "custodian data directory")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR)",
      collectUrls,
    )
    .option("--config <path>", "this custodian's copy of ca-config (default: HOME/ca-config.yaml)")
    .option("--ceremony <id>", "ceremony id (default: the current one)")
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--timeout <seconds>", "give up after this long", "300")
    .option("--json", "print the outcome as JSON")
    .action((o: HomeOpts & { coordinator?: string[]; config?: string; ceremony?: string; timeout: string }) =>
      runCommand(async () => {
        const coordinators = requiredCoordinatorUrls(o.coordinator);
        const home = new CustodianHome(resolve(o.home));
        const config = home.config(o.config);
        const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile });
        const out = await runCeremony({
          home,
          passphrase,
          config,
          coordinatorUrl: coordinators.join(","),
          ceremony: o.ceremony,
          progress: (l) => progress(`[${home.identity().name}] ${l}`),
          timeoutMs: Number(o.timeout) * 1000,
        });
        printResult(!!o.json, out, `ceremony ${out.ceremonyId} complete; CA key id ${out.caKeyId}`);
      }),
    );
}
