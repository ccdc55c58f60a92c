// `tca custodian journal verify | recover` (docs/journal.md): check the custodian's journal against
// the head anchored in its keystore, and bring a custodian whose journal was truncated, deleted,
// rolled back or torn back to work, saying what was lost.
import { Option, type Command } from "commander";
import { resolve } from "node:path";
import { z } from "zod";
import { CustodianHome, type CoordinatorRecords } from "../../custodian/home.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import { signedReader } from "../custodian-reader.ts";
import { caCertificateOf } from "../../custodian/session.ts";
import { fetchPublishedCrl } from "../../custodian/crl-check.ts";
import { RequestViewSchema, type RequestView } from "../../protocol/approval.ts";
import { readCaCert } from "../../x509/ca-cert.ts";
import { CustodianError } from "../../custodian/errors.ts";
import { decisionsMissingFrom } from "../../custodian/journal.ts";
import { printResult, progress, runCommand } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";

export function registerCustodianJournal(cust: Command, defaultHome: () => string): void {
  const journal = cust
    .command("journal")
    .description("check or recover this custodian's signed journal (anchored in its keystore)");

  journal
    .command("verify")
    .description("check the journal's chain, signatures and keystore anchor (exit 0 intact, 3 refused)")
    .addOption(
      new Option("--home <dir>", "custodian data directory").default(
        defaultHome(),
        "$TCA_HOME or ~/.tca/custodian",
      ),
    )
    .option(
      "--check-coordinator",
      "also compare with the coordinator's record of this custodian's decisions (finds a journal and keystore restored together from a backup)",
    )
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or the ones from the ceremony)",
      collectUrls,
    )
    .option(
      "--passphrase-file <file>",
      "with --check-coordinator: keystore passphrase file, to sign the reads (else TCA_PASSPHRASE or a prompt)",
    )
    .option("--json", "print the result as JSON")
    .action(
      (o: {
        home: string;
        json?: boolean;
        checkCoordinator?: boolean;
        coordinator?: string[];
        passphraseFile?: string;
      }) =>
        runCommand(async () => {
          const home = new CustodianHome(resolve(o.home));
          const j = home.journal();
          if (o.checkCoordinator) {
            const client = await signedReader(home, home.coordinatorUrl(coordinatorUrls(o.coordinator)), o);
            const { requests } = await client.get(
              "/api/v1/requests",
              z.object({ requests: z.array(RequestViewSchema) }),
            );
            const missing = decisionsMissingFrom(j, home.identity().name, requests);
            if (missing.length > 0)
              throw new CustodianError(
                "REFUSED",
                `the coordinator records ${missing.length} decision(s) by ${home.identity().name} that journal ` +
                  `${home.journalPath} does not hold (first: ${missing[0]!.decision} of request ${missing[0]!.requestId} ` +
                  `at ${missing[0]!.at}): the journal and its anchor were rolled back together; ` +
                  "run `tca custodian journal recover --accept-loss` (docs/journal.md)",
              );
          }
          const anchor = j.anchor();
          if (!anchor)
            throw new CustodianError(
              "REFUSED",
              `${home.keystorePath} holds no journal anchor: unlock this custodian once (any signing command) to anchor ` +
                `a keystore from before anchoring, or run \`tca custodian journal recover\``,
            );
          const entries = j.entries();
          const signed = entries.filter((e) => e.kind === "signature").length;
          const recovery = entries.find((e) => e.kind === "recovery");
          const crl = j.lastCrl();
          const result = {
            journal: home.journalPath,
            entries: entries.length,
            firstSeq: j.firstSeq,
            nextSeq: j.nextSeq,
            anchor: { seq: anchor.seq, counter: anchor.counter, at: anchor.at },
            unanchored: j.nextSeq - anchor.seq,
            signatures: signed,
            lastCrl: crl ? crl.number.toString() : null,
            recovery: recovery
              ? { seq: recovery.seq, lost: recovery.lost ?? 0, note: recovery.note ?? "" }
              : null,
          };
          printResult(
            !!o.json,
            result,
            [
              `journal ${home.journalPath}: ${entries.length} entries (seq ${j.firstSeq}..${j.nextSeq - 1}), chain and signatures intact`,
              `anchored in ${home.keystorePath}: ${anchor.seq} entries, anchor #${anchor.counter} at ${anchor.at}` +
                (result.unanchored > 0
                  ? ` (${result.unanchored} later entries not anchored yet: they never left)`
                  : ""),
              `signature shares: ${signed}; last CRL signed: ${result.lastCrl ?? "none"}`,
              ...(recovery
                ? [
                    `recovered at seq ${recovery.seq}: ${recovery.lost ?? 0} entries lost (${recovery.note ?? ""})`,
                  ]
                : []),
            ].join("\n"),
          );
        }),
    );

  journal
    .command("recover")
    .description(
      "bring back a custodian whose journal is damaged: drop a torn last line that never left, or (--accept-loss) " +
        "start a new segment recording the loss, rebuilt from the coordinator's issued serials and signed CRL",
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
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--drop-torn-tail", "remove an interrupted last line that is past the anchored head")
    .option(
      "--accept-loss",
      "a person accepts that entries are lost: start a new journal segment that records it (the old file is kept aside)",
    )
    .option("--offline", "with --accept-loss: do not ask the coordinator for issued serials and the CRL")
    .option("--json", "print the result as JSON")
    .action(
      (o: {
        home: string;
        coordinator?: string[];
        passphraseFile?: string;
        dropTornTail?: boolean;
        acceptLoss?: boolean;
        offline?: boolean;
        json?: boolean;
      }) =>
        runCommand(async () => {
          const home = new CustodianHome(resolve(o.home));
          home.identity();
          const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile });
          let records: (CoordinatorRecords & { all(): Promise<RequestView[]> }) | undefined;
          if (o.acceptLoss && !o.offline) {
            const url = home.coordinatorUrl(coordinatorUrls(o.coordinator));
            const client = await signedReader(home, url, { passphrase });
            const caKey = readCaCert(caCertificateOf(home)).publicKeyRaw;
            records = {
              all: async () =>
                (await client.get("/api/v1/requests", z.object({ requests: z.array(RequestViewSchema) })))
                  .requests,
              issued: async () =>
                (
                  await client.get(
                    "/api/v1/requests?status=issued",
                    z.object({ requests: z.array(RequestViewSchema) }),
                  )
                ).requests,
              crl: () => fetchPublishedCrl(client.http, caKey),
            };
          }
          if (o.acceptLoss)
            progress(
              "WARNING: --accept-loss starts a new journal. Entries the old one lost cannot be checked any more: " +
                "this custodian will refuse only the serials and CRL numbers it can rebuild from the coordinator's records.",
            );
          // A journal rolled back together with its anchor looks intact here: ask the coordinator.
          let rolledBack: { message: string; lost: number } | undefined;
          if (records) {
            const intact = (() => {
              try {
                return home.journal();
              } catch {
                return undefined;
              }
            })();
            if (intact) {
              const missing = decisionsMissingFrom(intact, home.identity().name, await records.all());
              if (missing.length > 0)
                rolledBack = {
                  message: `the coordinator records ${missing.length} decision(s) the journal does not hold (rolled back with its anchor)`,
                  lost: missing.length,
                };
            }
          }
          const r = await home.recoverJournal(passphrase, {
            ...(rolledBack ? { rolledBack } : {}),
            ...(o.dropTornTail ? { dropTornTail: true } : {}),
            ...(o.acceptLoss ? { acceptLoss: true } : {}),
            ...(records ? { records } : {}),
          });
          const text =
            r.action === "intact"
              ? `journal ${r.journal} is intact (${r.entries} entries); anchored at ${r.anchoredSeq}`
              : r.action === "dropped-torn-tail"
                ? `dropped the interrupted last line of ${r.journal} (kept in ${r.movedTo}); ${r.entries} entries, anchored at ${r.anchoredSeq}`
                : `recovered ${r.journal} at seq ${r.anchoredSeq - r.entries}: ${r.lost} entries lost, ` +
                  `${r.carriedOver} carried over, ${r.fromCoordinator} rebuilt from coordinator records; ` +
                  `anchored at ${r.anchoredSeq}` +
                  (r.movedTo ? `; the damaged file is kept as ${r.movedTo}` : "");
          printResult(!!o.json, r, text);
        }),
    );
}
