// `tca renew --cert FILE --key FILE`: renew a certificate with its own key as the credential (no
// token), keeping its names; `--rekey` makes a new key; `--daemon` renews at a fraction of each
// lifetime and runs a command or signals a process after each renewal (docs/revocation.md).
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { constants } from "node:os";
import { EXIT, printResult, progress, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { RequesterError } from "../../requester/errors.ts";
import {
  checkDistinctFiles,
  readCertAndKey,
  renewDaemon,
  RenewInputError,
  renewOnce,
  type DaemonOptions,
  type RenewOptions,
} from "../../requester/renew.ts";

interface RenewOpts {
  cert: string;
  key: string;
  rekey?: boolean;
  outDir?: string;
  daemon?: boolean;
  renewAt: string;
  exec?: string;
  signal?: string;
  coordinator?: string[];
  caFile?: string;
  timeout: string;
  json?: boolean;
}

export function registerRenew(program: Command): void {
  program
    .command("renew")
    .description(
      "renew a certificate with its own key as the credential (same names; --rekey for a new key); --daemon keeps renewing",
    )
    .requiredOption("--cert <file>", "the current certificate (PEM)")
    .requiredOption("--key <file>", "its private key (PEM or DER)")
    .option("--rekey", "make a new key of the same type (written with mode 0600)")
    .option(
      "--out-dir <dir>",
      "write the certificate, chain and key here (same file names) instead of over the inputs",
    )
    .option("--daemon", "keep running: renew at --renew-at of each lifetime, retry with backoff on failure")
    .option(
      "--renew-at <fraction>",
      "with --daemon: renew once this fraction of the lifetime has passed",
      "0.667",
    )
    .option(
      "--exec <command>",
      "with --daemon: run this (sh -c) after each renewal; $TCA_CERT, $TCA_CHAIN, $TCA_KEY, $TCA_SERIAL are set",
    )
    .option(
      "--signal <pid:sig>",
      "with --daemon: send a signal to a process after each renewal, e.g. 1234:HUP",
    )
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or http://127.0.0.1:8443)",
      collectUrls,
    )
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option(
      "--timeout <seconds>",
      "give up waiting for the renewal after this long (0 = never; --daemon always waits)",
      "600",
    )
    .option("--json", "print the result as JSON (once, without --daemon)")
    .addHelpText(
      "after",
      `
No token: the renewal is signed with the current certificate's key over a one-time challenge. The
new certificate keeps the subject, the names, the profile, the requester and the lifetime; it goes
through the custodians' approval like any request. The old certificate stays valid until it expires
or is revoked. A certificate has one renewal at a time: while one is pending (or once one is
issued), renewing it again is refused. Files are replaced atomically (temp file, fsync, rename),
keeping the mode of the file they replace (never looser); --cert and --key must be separate files.
--daemon follows a submitted renewal until it is decided, remembering it in .NAME.renewal.json
(mode 0600) beside the certificate, so that a restarted daemon does not submit another.

Exit codes: 0 renewed (--daemon: stopped by SIGINT/SIGTERM); 1 failed; 2 usage; 3 refused (revoked,
expired, wrong key, other names, renewed already, rejected by the custodians); 4 unreachable.

Examples:
  tca renew --cert svc.crt --key svc.key
  tca renew --cert svc.crt --key svc.key --rekey --daemon --exec 'systemctl reload nginx'`,
    )
    .action((o: RenewOpts) => runCommand(() => runRenew(o)));
}

function signalOption(v: string | undefined): DaemonOptions["signalProcess"] {
  if (v === undefined) return undefined;
  const m = /^(\d+):(?:SIG)?([A-Z0-9]+)$/i.exec(v);
  const signal = m ? (`SIG${m[2]!.toUpperCase()}` as NodeJS.Signals) : undefined;
  if (!m || !signal || !(signal in constants.signals))
    throw new UsageError(`--signal must be PID:SIGNAL, e.g. 1234:HUP (got "${v}")`);
  const pid = Number(m[1]);
  // 0 would signal this process group, 1 is init: never what a reload hook means.
  if (!Number.isSafeInteger(pid) || pid <= 1)
    throw new UsageError(`--signal: ${pid} is not a process to signal; give the PID of the server to reload`);
  return { pid, signal };
}

function options(o: RenewOpts): DaemonOptions {
  for (const [flag, f] of [
    ["--cert", o.cert],
    ["--key", o.key],
  ] as const)
    if (!existsSync(f)) throw new UsageError(`${flag}: ${f} does not exist`);
  if (o.outDir !== undefined && !(existsSync(o.outDir) && statSync(o.outDir).isDirectory()))
    throw new UsageError(`--out-dir: ${o.outDir} is not a directory`);
  const renewAt = Number(o.renewAt);
  if (!Number.isFinite(renewAt) || renewAt <= 0 || renewAt >= 1)
    throw new UsageError("--renew-at must be a fraction of the lifetime between 0 and 1, e.g. 0.667");
  if (!o.daemon && (o.exec !== undefined || o.signal !== undefined))
    throw new UsageError(
      "--exec and --signal run after each renewal of --daemon; without it, run the command yourself",
    );
  const timeout = Number(o.timeout);
  if (!Number.isFinite(timeout) || timeout < 0)
    throw new UsageError("--timeout must be a number of seconds, 0 or more");
  try {
    checkDistinctFiles({
      certFile: o.cert,
      keyFile: o.key,
      ...(o.outDir !== undefined ? { outDir: o.outDir } : {}),
    });
    readCertAndKey(o.cert, o.key);
  } catch (e) {
    if (e instanceof RenewInputError) throw new UsageError(e.message);
    throw e;
  }
  const ca = caFileTls(o.caFile)?.ca;
  const signalProcess = signalOption(o.signal);
  const base: RenewOptions = {
    certFile: o.cert,
    keyFile: o.key,
    rekey: !!o.rekey,
    ...(o.outDir !== undefined ? { outDir: o.outDir } : {}),
    coordinator: coordinatorUrls(o.coordinator, "http://127.0.0.1:8443")!.join(","),
    ...(ca ? { ca } : {}),
    timeoutMs: timeout * 1000,
  };
  return {
    ...base,
    renewAt,
    ...(o.exec !== undefined ? { exec: o.exec } : {}),
    ...(signalProcess ? { signalProcess } : {}),
  };
}

async function runRenew(o: RenewOpts): Promise<void> {
  const opts = options(o);
  try {
    if (o.daemon) return await daemon(opts);
    const r = await renewOnce(opts, { onProgress: progress });
    printResult(
      !!o.json,
      r,
      [
        `renewed      ${r.renewalOf} → ${r.serial}`,
        `request      ${r.id}`,
        `valid until  ${r.notAfter}`,
        `certificate  ${r.certificate}`,
        `chain        ${r.chain}`,
        `key          ${r.key}${r.rekeyed ? " (new)" : ""}`,
      ].join("\n"),
    );
  } catch (e) {
    if (e instanceof RenewInputError) throw new UsageError(e.message);
    if (!(e instanceof RequesterError)) throw e;
    process.stderr.write(`tca: error: ${e.message}\n`);
    process.exitCode = e.exitCode;
  }
}

async function daemon(opts: DaemonOptions): Promise<void> {
  const stop = new AbortController();
  let by: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    by = sig;
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const log = (line: string) => process.stderr.write(`tca renew: ${new Date().toISOString()} ${line}\n`);
  log(`renewing ${opts.certFile} at ${opts.renewAt} of each lifetime (pid ${process.pid})`);
  try {
    const r = await renewDaemon({ ...opts, signal: stop.signal }, log);
    if (r.stopped === "refused") {
      process.exitCode = EXIT.REFUSED;
      return;
    }
    log(
      `stopped by ${by ?? "signal"}: the renewal daemon for ${opts.certFile} after ${r.renewals} renewal(s); no renewal was left half-written`,
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
