// `tca custodian ceremony [ID]`: take part in a key lifecycle ceremony — refresh, reshare or repair
// (docs/key-lifecycle.md). The admin starts it with `tca ceremony refresh|reshare|repair`.
import { Option, type Command } from "commander";
import { resolve } from "node:path";
import { CustodianHome } from "../../custodian/home.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import { takePartInLifecycle } from "../../custodian/lifecycle/participate.ts";
import { printResult, progress, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";

const END: Record<string, string> = {
  "new-share": "my new share is active",
  "share-kept": "my share is unchanged",
  "share-deleted": "my share is deleted (I am not in the new roster)",
};

export function registerCustodianCeremony(cust: Command, defaultHome: () => string): void {
  cust
    .command("ceremony")
    .description("take part in a key lifecycle ceremony: refresh, reshare or repair (the CA key stays)")
    .argument("[id]", "lifecycle ceremony id", "current")
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
    .option(
      "--config <path>",
      "this custodian's ca-config; for a reshare or repair, the NEW one the custodians signed (default: HOME/ca-config.yaml)",
    )
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--timeout <seconds>", "give up after this long", "300")
    .option("--json", "print the outcome as JSON")
    .action(
      (
        id: string,
        o: {
          home: string;
          coordinator?: string[];
          config?: string;
          passphraseFile?: string;
          timeout: string;
          json?: boolean;
        },
      ) =>
        runCommand(async () => {
          const timeout = Number(o.timeout);
          if (!Number.isFinite(timeout) || timeout <= 0)
            throw new UsageError(`--timeout must be a positive number of seconds, not "${o.timeout}"`);
          const home = new CustodianHome(resolve(o.home));
          const name = home.identity().name;
          const config = home.config(o.config);
          const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile });
          const out = await takePartInLifecycle({
            home,
            passphrase,
            config,
            coordinatorUrl: home.coordinatorUrl(coordinatorUrls(o.coordinator)),
            ceremony: id,
            progress: (l) => progress(`[${name}] ${l}`),
            timeoutMs: timeout * 1000,
          });
          printResult(
            !!o.json,
            out,
            `${out.kind} ${out.ceremonyId} complete: epoch ${out.epoch}, ${out.threshold}-of-${out.custodians}; ${END[out.result]}`,
          );
        }),
    );
}
