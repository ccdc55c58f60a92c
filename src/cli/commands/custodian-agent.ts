import { Option, type Command } from "commander";
import { resolve, join } from "node:path";
import pino from "pino";
import { CustodianHome } from "../../custodian/home.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import { CustodianSession } from "../../custodian/session.ts";
import { CustodianAgent } from "../../custodian/agent.ts";
import { keystoreSealedVersion } from "../../custodian/keystore.ts";
import { loadPolicy } from "../../custodian/policy.ts";
import { runCommand } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";

export function registerCustodianAgent(cust: Command, defaultHome: () => string): void {
  cust
    .command("agent")
    .description(
      "run unattended: auto-approve by local policy, sign what the operator approved, sign CRLs; JSON logs on stdout",
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
    .option("--config <path>", "this custodian's ca-config (default: HOME/ca-config.yaml)")
    .option("--policy <file>", "auto-approval policy (default: HOME/policy.yaml)")
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE)")
    .action(
      (o: {
        home: string;
        coordinator?: string[];
        config?: string;
        policy?: string;
        passphraseFile?: string;
      }) =>
        runCommand(async () => {
          const override = coordinatorUrls(o.coordinator);
          const home = new CustodianHome(resolve(o.home));
          const name = home.identity().name;
          const config = home.config(o.config);
          const policy = loadPolicy(o.policy ?? join(home.dir, "policy.yaml"));
          const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile, prompt: false });
          const log = pino({
            name: "tca-agent",
            base: { custodian: name },
            level: process.env.TCA_LOG_LEVEL ?? "info",
          });
          const stop = new AbortController();
          const onSignal = (sig: string) => {
            log.info({ signal: sig }, "stopping");
            stop.abort();
          };
          process.once("SIGTERM", () => onSignal("SIGTERM"));
          process.once("SIGINT", () => onSignal("SIGINT"));
          // Started by `tca dev`: stop with it, even when it was SIGKILLed and could not say so.
          const parent = Number(process.env.TCA_STOP_WITH_PARENT);
          if (parent > 0) {
            const watch = setInterval(() => {
              if (process.ppid !== parent) {
                clearInterval(watch);
                onSignal("parent exited");
              }
            }, 1_000);
            watch.unref();
            stop.signal.addEventListener("abort", () => clearInterval(watch));
          }
          // A lifecycle ceremony run beside the agent (tca custodian ceremony) stores a new share: the
          // agent notices the keystore changed, hands back its old commitments and opens it again.
          for (;;) {
            // Read before opening: a share stored while this agent opens its keystore means one more
            // reload, never a missed one.
            const version = keystoreSealedVersion(home.keystorePath);
            const session = await CustodianSession.open({
              home,
              passphrase,
              coordinatorUrl: home.coordinatorUrl(override),
              config,
              role: "agent",
              note: (line) => log.info(line),
            });
            const agent = new CustodianAgent(session, policy, log, {
              keystoreChanged: () => keystoreSealedVersion(home.keystorePath) !== version,
            });
            await agent.run(stop.signal);
            if (!agent.reloadRequested || stop.signal.aborted) break;
          }
        }),
    );
}
