// `tca custodian ca-csr`: a person approves (or rejects) the certification request for the CA key
// (intermediate mode, docs/intermediate.md). It shows what this custodian derived itself from its own
// ca-config and the group key — the subject the external root will certify, the key, the extensions
// asked for — and says whether the coordinator proposes exactly those bytes; only then may it be
// approved. Approved, it stays online and signs the CSR with the other approvers.
import { resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { Option, type Command } from "commander";
import { CustodianHome } from "../../custodian/home.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import { CustodianSession } from "../../custodian/session.ts";
import { CustodianError } from "../../custodian/errors.ts";
import { currentCaCsr, decideCaCsr, reviewCaCsrIn, type CaCsrReview } from "../../custodian/ca-csr-check.ts";
import type { CaCsrView } from "../../protocol/ca-csr.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { interruptible, printResult, progress, runCommand, UsageError } from "../output.ts";

interface Opts {
  home: string;
  coordinator?: string[];
  config?: string;
  passphraseFile?: string;
  json?: boolean;
  yes?: boolean;
  reject?: string;
  timeout: string;
}

function describe(r: CaCsrReview): string {
  const v = r.view;
  return [
    `proposal   ${v.id} (${v.status}; ${v.approvals.length} of ${v.threshold} approvals${v.approvals.length ? `: ${v.approvals.join(", ")}` : ""})`,
    `subject    ${r.subject}   (from my ca-config: the name the external root certifies)`,
    `key        Ed25519 CA key  sha256:${r.keySha256}`,
    `asks for   ${r.extensions.join("; ")}`,
    r.problem ? `PROBLEM    ${r.problem}` : `bytes      identical to what I derived (SHA-256 ${v.tbsSha256})`,
  ].join("\n");
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function registerCustodianCaCsr(cust: Command, defaultHome: () => string): void {
  cust
    .command("ca-csr")
    .description(
      "intermediate mode: review the CA key's certification request, approve (or --reject) it, and sign it",
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
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--yes", "approve without asking (required when stdin is not a terminal)")
    .option("--reject <reason>", "reject it instead, saying why (one rejection ends the proposal)")
    .option("--timeout <seconds>", "stop waiting for the signing session after this long", "600")
    .option("--json", "print the proposal as JSON")
    .action((o: Opts) =>
      runCommand(async () => {
        if (!o.reject && !o.yes && !process.stdin.isTTY)
          throw new UsageError("stdin is not a terminal: pass --yes to approve without a prompt");
        const home = new CustodianHome(resolve(o.home));
        const config = home.config(o.config);
        const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile });
        const session = await CustodianSession.open({
          home,
          passphrase,
          coordinatorUrl: home.coordinatorUrl(coordinatorUrls(o.coordinator)),
          config,
        });
        try {
          const view = await currentCaCsr(session.client);
          if (!view)
            throw new CustodianError(
              "REFUSED",
              "there is no CSR proposal: an admin makes one with tca ceremony csr",
            );
          if (view.status !== "pending" && view.status !== "signing")
            throw new CustodianError("REFUSED", `CSR proposal ${view.id} is already ${view.status}`);
          const review = reviewCaCsrIn(session, view);
          progress(describe(review));
          if (o.reject) {
            const after = await decideCaCsr(session, review, "reject", { reason: o.reject });
            return printResult(!!o.json, after, `CSR ${after.id}: ${after.status} (${o.reject})`);
          }
          if (review.problem)
            throw new CustodianError("REFUSED", `will not approve the CA's CSR: ${review.problem}`);
          if (session.journal.decisionOn(view.id)) progress("I approved it before: taking part in signing");
          else {
            if (!o.yes && !(await confirm(`approve a CSR for "${review.subject}"?`)))
              throw new CustodianError("REFUSED", "the CA's CSR was not approved");
            await decideCaCsr(session, review, "approve");
            progress("approved; staying online to sign it with the other approvers");
          }
          const final = await interruptible(
            () => `stopped waiting to sign CSR ${view.id}; run tca custodian ca-csr again to take part`,
            () => signUntilDone(session, view.id, Number(o.timeout) * 1000),
          );
          printResult(
            !!o.json,
            final,
            `CSR ${final.id}: ${final.status}${final.failure ? ` (${final.failure})` : ""}`,
          );
          if (final.status !== "signed") process.exitCode = 3;
        } finally {
          session.close();
        }
      }),
    );
}

/** Offers commitments and signs the ca-csr task that names this custodian, until the CSR is done. */
async function signUntilDone(session: CustodianSession, id: string, timeoutMs: number): Promise<CaCsrView> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  try {
    for (;;) {
      const v = await currentCaCsr(session.client);
      if (!v || v.id !== id) throw new CustodianError("REFUSED", `CSR proposal ${id} was replaced`);
      const line = `${v.status}: ${v.approvals.length} of ${v.threshold} approvals`;
      if (line !== last) progress(line);
      last = line;
      if (v.status !== "pending" && v.status !== "signing") return v;
      if (Date.now() > deadline) throw new CustodianError("TIMEOUT", `gave up waiting for CSR ${id}`);
      const res = await session.link.round({ wait: 2, review: false });
      for (const out of await session.signTasks(res.tasks)) {
        if (out.task.kind !== "ca-csr") continue;
        if (out.kind === "refused") progress(`I refused to sign: ${out.reason}`);
        else if (out.kind === "signed") progress("signature share sent");
      }
    }
  } finally {
    await session.link.close();
  }
}
