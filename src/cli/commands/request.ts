// `tca request NAME`: get a certificate the way `step ca certificate` does — make a key and CSR
// (or take a CSR), submit it, wait for the custodians, write NAME.crt, NAME.chain.pem and NAME.key.
import { Option, type Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { EXIT, printResult, progress, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { RequesterError } from "../../requester/errors.ts";
import { OutputFileError } from "../../requester/files.ts";
import { KEY_TYPES, sansFor, type KeyType } from "../../requester/keys.ts";
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
  try {
    const outcome = await requestCertificate(options(name, { ...o, san: o.san ?? [] }), {
      onSubmitted: (id, key) => {
        if (!o.wait) return;
        progress(`request ${id} submitted (profile ${o.profile})${key ? `; key written to ${key}` : ""}`);
      },
      onProgress: progress,
    });
    report(outcome, o, json);
  } catch (e) {
    if (e instanceof OutputFileError) throw new UsageError(e.message);
    if (!(e instanceof RequesterError)) throw e;
    process.stderr.write(`tca: error: ${e.message}\n`);
    process.exitCode = e.exitCode;
  }
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
  let t: string | undefined;
  if (file !== undefined) {
    try {
      t = readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new UsageError(`--token-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    if (!t) throw new UsageError(`--token-file: ${file} is empty`);
  } else {
    t = process.env.TCA_TOKEN?.trim();
  }
  if (!t) throw new UsageError("a requester token is needed: --token-file FILE or $TCA_TOKEN");
  return t;
}

function report(r: RequestOutcome, o: RequestOpts, json: boolean): void {
  const data = {
    id: r.id,
    status: r.status,
    serial: r.serial,
    certificate: r.certificate,
    chain: r.chain,
    key: r.key,
    notAfter: r.notAfter,
    ...(r.rejection ? { rejection: r.rejection } : {}),
    ...(r.failure ? { failure: r.failure } : {}),
  };
  if (!o.wait) {
    printResult(json, data, r.id);
    if (!json)
      progress(
        `submitted; follow it with GET /api/v1/requests/${r.id}, fetch it from /api/v1/requests/${r.id}/certificate${r.key ? `; key in ${r.key}` : ""}`,
      );
    return;
  }
  if (r.status === "issued") {
    const lines = [
      `request      ${r.id}`,
      `serial       ${r.serial}`,
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
