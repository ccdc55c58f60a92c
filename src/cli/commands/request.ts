// `tca request NAME`: get a certificate the way `step ca certificate` does — make a key and CSR
// (or take a CSR), submit it, wait for the custodians, write NAME.crt, NAME.chain.pem and NAME.key.
import { Option, type Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { EXIT, oneLine, printResult, progress, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { readToken } from "../token.ts";
import { RequesterError } from "../../requester/errors.ts";
import { OutputFileError } from "../../requester/files.ts";
import { CsrError, KEY_TYPES, readCsr, sansFor, type KeyType } from "../../requester/keys.ts";
import { displaySerial } from "../../x509/serial.ts";
import { requestCertificate, type RequestOutcome } from "../../requester/request.ts";

interface RequestOpts {
  san?: string[];
  profile: string;
  keyType: KeyType;
  csr?: string;
  keyOut?: string;
  certOut?: string;
  chainOut?: string;
  force?: boolean;
  coordinator?: string[];
  tokenFile?: string;
  caFile?: string;
  validity?: string;
  wait: boolean;
  timeout: string;
  json?: boolean;
}

const collect = (v: string, acc: string[] = []) => [...acc, v];

export function registerRequest(program: Command): void {
  program
    .command("request")
    .description(
      "request a certificate: make a key and CSR (or submit --csr), wait for the custodians' approvals, write the certificate, chain and key",
    )
    .argument("<name>", "the subject's common name and first SAN (DNS name, IP address, email or URI)")
    .option(
      "--san <name>",
      "another subject alternative name (repeatable): DNS, IP, x@y email or scheme:// URI",
      collect,
    )
    .option("--profile <profile>", "certificate profile", "server")
    .addOption(new Option("--key-type <type>", "key type to generate").choices(KEY_TYPES).default("ec-p256"))
    .option("--csr <file>", "submit this CSR (PEM or DER) as is instead of generating a key")
    .option("--key-out <file>", "where to write the private key, PKCS#8 PEM, mode 0600 (default: NAME.key)")
    .option("--cert-out <file>", "where to write the certificate (default: NAME.crt)")
    .option("--chain-out <file>", "where to write the chain, leaf then root (default: NAME.chain.pem)")
    .option("--force", "overwrite existing output files")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or http://127.0.0.1:8443)",
      collectUrls,
    )
    .option("--token-file <file>", "file holding the requester token (default: the token in $TCA_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--validity <hours>", "certificate validity in hours (default: the profile's)")
    .option("--no-wait", "print the request id and exit without waiting for issuance")
    .option("--timeout <seconds>", "give up waiting after this long (0 = never)", "600")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Exit codes: 0 issued (or submitted, with --no-wait); 1 error, including the coordinator's
refusals (bad token, bad CSR) and timeouts; 2 usage; 3 request rejected or failed; 4 coordinator
unreachable.

Examples:
  tca request svc.example.internal --san 10.0.0.5 --token-file .tca-dev/requester.token
  openssl req -new -newkey ed25519 -nodes -keyout svc.key -out svc.csr -subj /CN=svc.example.internal
  tca request svc.example.internal --csr svc.csr --no-wait`,
    )
    .action((name: string, o: RequestOpts) => runCommand(() => runRequest(name, o)));
}

async function runRequest(name: string, o: RequestOpts): Promise<void> {
  const json = !!o.json;
  const opts = options(name, { ...o, san: o.san ?? [] });
  // Ctrl-C says what it stopped and how to pick the request up again, and exits 130.
  let submitted: string | undefined;
  let state = "pending";
  const onInt = () => {
    process.stderr.write(
      submitted
        ? `\ntca: stopped waiting for request ${submitted}; it is still ${state} — ${fetchHint(submitted, opts, o)}\n`
        : "\ntca: stopped before the request was submitted; nothing was sent\n",
    );
    process.exit(130);
  };
  process.once("SIGINT", onInt);
  try {
    const outcome = await requestCertificate(opts, {
      onSubmitted: (id, key) => {
        submitted = id;
        if (!o.wait) return;
        progress(`request ${id} submitted (profile ${o.profile})${key ? `; key written to ${key}` : ""}`);
      },
      onProgress: (line) => {
        state = /^\w+/.exec(line)?.[0] ?? state;
        progress(line);
      },
    });
    report(outcome, o, json, opts);
  } catch (e) {
    if (e instanceof OutputFileError) throw new UsageError(e.message);
    if (!(e instanceof RequesterError)) throw e;
    process.stderr.write(`tca: error: ${oneLine(e.message)}\n`);
    process.exitCode = e.exitCode;
  } finally {
    process.off("SIGINT", onInt);
  }
}

type Options = Parameters<typeof requestCertificate>[0];

/** The exact command that fetches the chain of request `id` once issued (one line). */
function fetchHint(id: string, opts: Options, o: RequestOpts): string {
  const base = opts.coordinator.split(",")[0]!.replace(/\/+$/, "");
  const token = o.tokenFile !== undefined ? `$(cat ${shellWord(o.tokenFile)})` : "$TCA_TOKEN";
  const ca = o.caFile ?? process.env.TCA_CA_FILE;
  return (
    `fetch the chain once issued with: curl -sf${ca ? ` --cacert ${shellWord(ca)}` : ""} ` +
    `-H "Authorization: Bearer ${token}" "${base}/api/v1/requests/${id}/certificate?wait=60" -o ${shellWord(opts.chainOut)}`
  );
}

/** A path as one shell word. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * With --csr, the name must be one the CSR asks for (its CN or one of its SANs): the files are
 * named after it, and a NAME.crt holding another subject would mislead whoever reads it.
 */
function checkCsr(name: string, file: string): void {
  let csr: ReturnType<typeof readCsr>;
  try {
    csr = readCsr(readFileSync(file));
  } catch (e) {
    if (e instanceof CsrError)
      throw new UsageError(
        `--csr ${file}: not a certificate request we can submit: ${oneLine(e.message)} (give a PKCS#10 CSR, PEM or DER, e.g. from openssl req -new)`,
      );
    throw new UsageError(`--csr: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const names = [...(csr.commonName ? [csr.commonName] : []), ...csr.sans.map((s) => s.value)];
  if (names.some((n) => n.toLowerCase() === name.toLowerCase())) return;
  const cn = csr.commonName ? `CN=${csr.commonName}` : "no CN";
  const sans = csr.sans.length
    ? csr.sans.map((s) => `${s.type.toUpperCase()}:${s.value}`).join(", ")
    : "no SANs";
  throw new UsageError(
    `"${name}" is not a name in ${file} (${cn}; ${sans}): give one of the CSR's names as NAME, or a CSR for ${name}`,
  );
}

function options(name: string, o: RequestOpts & { san: string[] }): Parameters<typeof requestCertificate>[0] {
  if (o.csr === undefined) {
    try {
      sansFor(name, o.san);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  } else {
    if (o.san.length > 0) throw new UsageError("--san has no effect with --csr: the CSR names the subject");
    if (o.keyOut !== undefined)
      throw new UsageError("--key-out has no effect with --csr: no key is generated");
    if (!existsSync(o.csr)) throw new UsageError(`--csr: ${o.csr} does not exist`);
    checkCsr(name, o.csr);
  }
  const timeout = Number(o.timeout);
  if (!Number.isFinite(timeout) || timeout < 0)
    throw new UsageError("--timeout must be a number of seconds, 0 or more");
  let validityHours: number | undefined;
  if (o.validity !== undefined) {
    validityHours = Number(o.validity);
    if (!Number.isInteger(validityHours) || validityHours <= 0)
      throw new UsageError("--validity must be a positive whole number of hours");
  }
  const coordinator = coordinatorUrls(o.coordinator, "http://127.0.0.1:8443")!.join(",");
  const ca = caFileTls(o.caFile)?.ca;
  return {
    name,
    sans: o.san,
    profile: o.profile,
    keyType: o.keyType,
    ...(o.csr !== undefined ? { csrFile: o.csr } : {}),
    keyOut: resolve(o.keyOut ?? `${name}.key`),
    certOut: resolve(o.certOut ?? `${name}.crt`),
    chainOut: resolve(o.chainOut ?? `${name}.chain.pem`),
    force: !!o.force,
    coordinator,
    token: token(o.tokenFile),
    ...(ca ? { ca } : {}),
    ...(validityHours !== undefined ? { validityHours } : {}),
    wait: o.wait,
    timeoutMs: timeout * 1000,
  };
}

function token(file: string | undefined): string {
  return readToken(file, "TCA_TOKEN", "a requester token");
}

function report(r: RequestOutcome, o: RequestOpts, json: boolean, opts: Options): void {
  const serial = r.serial === null ? null : displaySerial(r.serial);
  const data = {
    id: r.id,
    status: r.status,
    serial,
    certificate: r.certificate,
    chain: r.chain,
    key: r.key,
    notAfter: r.notAfter,
    ...(r.rejection ? { rejection: r.rejection } : {}),
    ...(r.failure ? { failure: r.failure } : {}),
  };
  if (!o.wait) {
    printResult(json, data, r.id);
    if (!json) progress(`submitted${r.key ? ` (key in ${r.key})` : ""}; ${fetchHint(r.id, opts, o)}`);
    return;
  }
  if (r.status === "issued") {
    const lines = [
      `request      ${r.id}`,
      `serial       ${serial}`,
      `certificate  ${r.certificate}`,
      `chain        ${r.chain}`,
      ...(r.key ? [`key          ${r.key}`] : []),
    ];
    printResult(json, data, lines.join("\n"));
    return;
  }
  if (json) printResult(true, data, "");
  const why =
    r.status === "rejected"
      ? r.rejection
        ? `rejected by ${r.rejection.by}: ${r.rejection.reason}`
        : "rejected"
      : `failed: ${r.failure ?? "signing failed"}`;
  process.stderr.write(`tca: error: request ${r.id} ${why}\n`);
  process.exitCode = EXIT.REFUSED;
}
