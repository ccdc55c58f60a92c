// `tca custodian requests | show | approve | reject | sign`: a person reviewing and approving
// certificate requests from a terminal. Each command re-derives the TBS locally before it says
// anything about a request.
import { REQUEST_STATUSES } from "../../protocol/enums.ts";
import { Option, type Command } from "commander";
import { resolve } from "node:path";
import { homedir } from "node:os";
import { createInterface } from "node:readline/promises";
import { connectCustodian } from "../../custodian/connect.ts";
import { CustodianHome } from "../../custodian/home.ts";
import { resolvePassphrase } from "../../custodian/passphrase.ts";
import { CustodianSession, reviewRequest, type Review } from "../../custodian/session.ts";
import { CustodianError } from "../../custodian/errors.ts";
import { acmeOriginProblem, DEFAULT_ACME_VALIDATED_WITHIN_HOURS } from "../../custodian/policy.ts";
import type { RequestView } from "../../protocol/approval.ts";
import { interruptible, printResult, progress, runCommand, UsageError } from "../output.ts";
import { displaySerial } from "../../x509/serial.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { signedReader } from "../custodian-reader.ts";
import { z } from "zod";
import { RequestViewSchema } from "../../protocol/approval.ts";

interface Common {
  home: string;
  coordinator?: string[];
  config?: string;
  passphraseFile?: string;
  json?: boolean;
}

export const defaultHome = () => process.env.TCA_HOME ?? resolve(homedir(), ".tca/custodian");

/** `--home`, whose help names its default once, in words rather than as the resolved path. */
export const homeOption = (): Option =>
  new Option("--home <dir>", "custodian data directory").default(
    defaultHome(),
    "$TCA_HOME or ~/.tca/custodian",
  );

const STATUSES = [...REQUEST_STATUSES, "all"] as const;

/** Ctrl-C while staying online to sign: say what stopped and how to take part again; exit 130. */
function stopNote(ids: readonly string[], o: Common): string {
  const home = o.home === defaultHome() ? "" : ` --home ${o.home}`;
  return `stopped waiting to sign ${ids.join(", ")}; approvals already sent stay valid — take part in signing later with: tca custodian sign ${ids.join(" ")}${home}`;
}

/** A request that is no longer open cannot be decided on: refused (exit 3), saying why. */
function checkOpen(view: { id: string; status: string }, what: string): void {
  if (view.status !== "pending" && view.status !== "signing")
    throw new CustodianError("REFUSED", `cannot ${what} request ${view.id}: it is already ${view.status}`);
}

function common(cmd: Command): Command {
  return cmd
    .addOption(homeOption())
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or the ones from the ceremony)",
      collectUrls,
    )
    .option("--config <path>", "this custodian's ca-config (default: HOME/ca-config.yaml)")
    .option("--json", "print data as JSON");
}

function context(o: Common) {
  const home = new CustodianHome(resolve(o.home));
  home.identity();
  const config = home.config(o.config);
  const url = home.coordinatorUrl(coordinatorUrls(o.coordinator));
  return { home, config, url, client: connectCustodian({ urls: url, home }) };
}

/** context() with a client whose reads are signed (the keystore is unlocked for the identity key). */
async function readContext(o: Common) {
  const c = context(o);
  return { ...c, client: await signedReader(c.home, c.url, o) };
}

async function openSession(o: Common) {
  const { home, config, url } = context(o);
  const passphrase = await resolvePassphrase({ passphraseFile: o.passphraseFile });
  return CustodianSession.open({ home, passphrase, coordinatorUrl: url, config });
}

export function describeReview(r: Review): string {
  const t = r.tbs;
  const q = r.request;
  const lines = [
    `request    ${q.id} (${q.status})`,
    `requester  ${q.requester}    profile ${q.profile}`,
    `subject    ${t.subject || "(empty)"}`,
    `names      ${t.sans.map((s) => `${s.type.toUpperCase()}:${s.value}`).join(", ") || "(none)"}`,
    `key        ${q.keyType}  sha256:${t.publicKey.sha256}`,
    `validity   ${t.notBefore} → ${t.notAfter} (${Math.round(t.validityHours)} h)`,
    `usage      ${[...t.keyUsage, ...t.extKeyUsage].join(", ")}${t.isCA ? `  CA (pathLen ${t.pathLen ?? "none"})` : ""}`,
    `serial     ${t.serialHex}`,
    // As the coordinator says: the agent policy checks the proof itself (custodian/renewal-check.ts).
    ...(q.renewalOf
      ? [`renews     ${q.renewalOf} (same names; the coordinator checked the holder's key)`]
      : []),
    ...originLines(r),
    `TBS hash   ${t.tbsSha256}`,
    `approvals  ${
      q.approvals
        .filter((a) => a.decision === "approve")
        .map((a) => a.custodian)
        .join(", ") || "none"
    } (${q.threshold - q.missing} of ${q.threshold})`,
  ];
  if (r.problem) lines.push(`PROBLEM    ${r.problem}`);
  return lines.join("\n");
}

/**
 * Where the request came from, as the coordinator says (an ACME order: which account, and how and
 * when each identifier was validated), and whether those identifiers are exactly the names in the
 * TBS this custodian derived — what an `acmeValidated` policy rule asks (custodian/policy.ts).
 */
export function originLines(r: Review): string[] {
  const origin = r.request.origin;
  if (!origin) return [];
  const problem = acmeOriginProblem(r);
  return [
    `origin     ACME account ${origin.account}, order ${origin.order}`,
    ...origin.identifiers.map(
      (i) => `validated  ${i.type === "ip" ? "IP:" : ""}${i.value} by ${i.challenge} at ${i.validatedAt}`,
    ),
    problem
      ? `ACME       does not vouch for this certificate: ${problem}`
      : `ACME       the validated identifiers are exactly the certificate's names (within ${DEFAULT_ACME_VALIDATED_WITHIN_HOURS} h)`,
  ];
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export function registerCustodianRequests(cust: Command): void {
  common(cust.command("requests").description("list certificate requests (default: pending)"))
    .option("--status <status>", "pending, signing, issued, rejected, failed or all", "pending")
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .action((o: Common & { status: string }) =>
      runCommand(async () => {
        if (!(STATUSES as readonly string[]).includes(o.status))
          throw new UsageError(`--status: "${o.status}" is not one of ${STATUSES.join(", ")}`);
        const { client } = await readContext(o);
        const q = o.status === "all" ? "" : `?status=${encodeURIComponent(o.status)}`;
        const { requests } = await client.get(
          `/api/v1/requests${q}`,
          z.object({ requests: z.array(RequestViewSchema) }),
        );
        const text = requests.length
          ? requests
              .map(
                (r) =>
                  `${r.id}  ${r.status.padEnd(8)} ${r.profile.padEnd(12)} ${r.requester.padEnd(10)} ${r.subject || r.sans.map((s) => s.value).join(",")}  (${r.threshold - r.missing}/${r.threshold})${r.origin ? "  ACME" : ""}`,
              )
              .join("\n")
          : `no ${o.status === "all" ? "" : o.status + " "}requests`;
        printResult(!!o.json, requests, text);
      }),
    );

  common(
    cust
      .command("show")
      .description("re-derive a request's certificate locally and show what it would say")
      .argument("<id>", "request id"),
  )
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .action((id: string, o: Common) =>
      runCommand(async () => {
        const { home, config, client } = await readContext(o);
        const review = await reviewRequest(client, home, config, id);
        printResult(!!o.json, review, describeReview(review));
      }),
    );

  common(
    cust
      .command("approve")
      .description("approve requests (signed statement about their TBS hash), then stay online to sign")
      .argument("<ids...>", "request ids"),
  )
    .option("--yes", "approve without asking (required when stdin is not a terminal)")
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--no-wait", "post the approval and leave; take part in signing later with `tca custodian sign`")
    .option("--valid-for <hours>", "how long the approval stays valid", "24")
    .option("--timeout <seconds>", "stop waiting for the signing session after this long", "600")
    .action(
      (ids: string[], o: Common & { yes?: boolean; wait: boolean; validFor: string; timeout: string }) =>
        runCommand(async () => {
          if (!o.yes && !process.stdin.isTTY)
            throw new UsageError("stdin is not a terminal: pass --yes to approve without a prompt");
          const session = await openSession(o);
          try {
            for (const id of ids) {
              const review = await reviewRequest(session.client, session.home, session.config, id);
              progress(describeReview(review));
              checkOpen(review.request, "approve");
              if (review.problem)
                throw new CustodianError("REFUSED", `will not approve ${id}: ${review.problem}`);
              if (!o.yes && !(await confirm(`approve request ${id}?`)))
                throw new CustodianError("REFUSED", `request ${id} not approved`);
              const after = await session.decide(review, "approve", {
                validForMs: Number(o.validFor) * 3_600_000,
              });
              progress(
                `${id}: approved (${after.threshold - after.missing} of ${after.threshold} approvals)`,
              );
            }
            if (!o.wait) return printResult(!!o.json, { approved: ids }, `approved ${ids.join(", ")}`);
            const final = await interruptible(
              () => stopNote(ids, o),
              () => session.signUntilDone(ids, finalOnce, { timeoutMs: Number(o.timeout) * 1000 }),
            );
            report(final, !!o.json, session.refusals());
          } finally {
            session.close();
          }
        }),
    );

  common(
    cust
      .command("reject")
      .description("reject a request; one rejection stops it for good")
      .argument("<id>", "request id"),
  )
    .requiredOption("--reason <text>", "(required) why, in a sentence the requester will read")
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .action((id: string, o: Common & { reason: string }) =>
      runCommand(async () => {
        const session = await openSession(o);
        try {
          const review = await reviewRequest(session.client, session.home, session.config, id);
          checkOpen(review.request, "reject");
          const after = await session.decide(review, "reject", { reason: o.reason });
          printResult(!!o.json, after, `${id}: ${after.status} (${o.reason})`);
        } finally {
          session.close();
        }
      }),
    );

  common(
    cust
      .command("sign")
      .description("take part in signing requests this custodian approved")
      .argument("[ids...]", "request ids (default: all approved and not yet finished)"),
  )
    .option("--passphrase-file <file>", "keystore passphrase file (else TCA_PASSPHRASE or a prompt)")
    .option("--timeout <seconds>", "stop after this long", "600")
    .action((ids: string[], o: Common & { timeout: string }) =>
      runCommand(async () => {
        const session = await openSession(o);
        try {
          let targets = ids;
          if (targets.length === 0) {
            const open = new Set(
              [...(await session.listRequests("pending")), ...(await session.listRequests("signing"))].map(
                (r) => r.id,
              ),
            );
            targets = session.journal.approvedRequestIds().filter((id) => open.has(id));
          }
          if (targets.length === 0) return printResult(!!o.json, [], "nothing to sign");
          report(
            await interruptible(
              () => stopNote(targets, o),
              () => session.signUntilDone(targets, finalOnce, { timeoutMs: Number(o.timeout) * 1000 }),
            ),
            !!o.json,
            session.refusals(),
          );
        } finally {
          session.close();
        }
      }),
    );
}

/**
 * Progress while signing, without the final state of each request: report() prints that once, on
 * stdout (the interactive approve used to say "issued" twice).
 */
function finalOnce(line: string): void {
  if (!/^\S+: (issued|rejected|failed)\b/.test(line)) progress(line);
}

function report(views: RequestView[], json: boolean, refused: ReadonlyMap<string, string>): void {
  const line = (v: RequestView) =>
    refused.has(v.id)
      ? `${v.id}: refused to sign: ${refused.get(v.id)}`
      : v.status === "issued"
        ? `${v.id}: issued, serial ${displaySerial(v.serial)}`
        : v.status === "rejected"
          ? `${v.id}: rejected${v.rejection ? ` by ${v.rejection.by}: ${v.rejection.reason}` : ""}`
          : v.status === "failed"
            ? `${v.id}: failed: ${v.failure ?? "signing failed"}`
            : `${v.id}: ${v.status}`;
  printResult(
    json,
    views.map((v) => ({ ...v, serial: displaySerial(v.serial), refusedByMe: refused.get(v.id) ?? null })),
    views.map(line).join("\n"),
  );
  if (views.some((v) => v.status !== "issued" || refused.has(v.id))) process.exitCode = 3;
}
