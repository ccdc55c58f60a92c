// `tca audit export|verify` (docs/audit.md): write the coordinator's audit chain as JSON lines, over
// GET /api/v1/audit with an admin token, and check such a file offline against a ca-config — the
// chain's links and hashes, every custodian signature against the roster, every certificate
// against t approvals of exactly its TBS — naming the first entry that does not check.
import type { Command } from "commander";
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { EXIT, progress, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { RequesterClient, toRequesterError } from "../../requester/client.ts";
import { RequesterError } from "../../requester/errors.ts";
import { loadCaConfig } from "../../config/load.ts";
import { AUDIT_PAGE_MAX, AuditPageSchema, parseAuditLines, verifyAuditChain } from "../../protocol/audit.ts";
import { readCaCert } from "../../x509/ca-cert.ts";
import { fromPem } from "../../x509/der.ts";

interface ExportOpts {
  coordinator?: string[];
  adminTokenFile?: string;
  caFile?: string;
  out?: string;
  force?: boolean;
}
interface VerifyOpts {
  config: string;
  caCert?: string;
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const group = program
    .command("audit")
    .description("the hash-chained audit log: export it, verify it offline against ca-config");

  group
    .command("export")
    .description("write the audit chain as JSON lines (one entry a line), from the first entry to the head")
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or http://127.0.0.1:8443)",
      collectUrls,
    )
    .option("--admin-token-file <file>", "admin token file (default: $TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP)
    .option("--out <file>", "write here instead of stdout")
    .option("--force", "overwrite --out if it exists")
    .action((o: ExportOpts) => run(() => exportChain(o)));

  group
    .command("verify")
    .description(
      "check an exported chain offline: links, hashes, custodian signatures, t approvals per certificate (exit 3 if broken)",
    )
    .argument("<file>", "the JSON lines `tca audit export` wrote")
    .requiredOption("--config <path>", "the CA's ca-config (its roster and threshold)")
    .option(
      "--ca-cert <file>",
      "the CA certificate (PEM or DER), for a chain that starts after the key ceremony",
    )
    .option("--json", "print the verdict as JSON")
    .addHelpText(
      "after",
      `
Examples:
  tca audit export --admin-token-file .tca-dev/admin.token --out audit.jsonl
  tca audit verify audit.jsonl --config .tca-dev/ca-config.yaml`,
    )
    .action((file: string, o: VerifyOpts) => runCommand(() => verify(file, o)));
}

/** runCommand, with the requester side's exit codes (1 refused or failed, 4 unreachable). */
function run(body: () => Promise<void>): Promise<void> {
  return runCommand(async () => {
    try {
      await body();
    } catch (e) {
      const err = toRequesterError(e);
      if (!(err instanceof RequesterError)) throw err;
      process.stderr.write(`tca: error: ${err.message}\n`);
      process.exitCode = err.exitCode;
    }
  });
}

function adminToken(o: ExportOpts): string {
  if (o.adminTokenFile === undefined) {
    const t = process.env.TCA_ADMIN_TOKEN?.trim();
    if (!t) throw new UsageError("an admin token is needed: --admin-token-file FILE or $TCA_ADMIN_TOKEN");
    return t;
  }
  let t: string;
  try {
    t = readFileSync(o.adminTokenFile, "utf8").trim();
  } catch (e) {
    throw new UsageError(
      `--admin-token-file: cannot read ${o.adminTokenFile} (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  if (!t) throw new UsageError(`--admin-token-file: ${o.adminTokenFile} is empty`);
  return t;
}

async function exportChain(o: ExportOpts): Promise<void> {
  if (o.out !== undefined && existsSync(o.out) && !o.force)
    throw new UsageError(`--out: ${o.out} exists; pass --force to overwrite it`);
  const token = adminToken(o);
  const urls = coordinatorUrls(o.coordinator, "http://127.0.0.1:8443")!;
  const tls = caFileTls(o.caFile);
  const http = new RequesterClient(urls, token, 30_000, tls ? { tls } : {}).http;
  // Page by page straight to the output, so memory holds one page, not the chain. A file is written
  // beside --out and renamed when complete: an export cut short leaves no file that looks whole.
  const tmp = o.out === undefined ? undefined : `${o.out}.partial`;
  const fd = tmp === undefined ? undefined : openSync(tmp, "w", 0o644);
  const write = async (text: string): Promise<void> => {
    if (fd !== undefined) writeSync(fd, text);
    else if (!process.stdout.write(text))
      await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
  };
  let count = 0;
  let last = 0;
  try {
    // Up to the head the first page names: entries appended meanwhile belong to the next export.
    let head: number | undefined;
    for (;;) {
      const page = await http.json(
        "GET",
        `/api/v1/audit?after=${last}&limit=${AUDIT_PAGE_MAX}`,
        AuditPageSchema,
        { token },
      );
      head ??= page.head?.seq ?? 0;
      const wanted = page.entries.filter((e) => e.seq <= head!);
      if (wanted.length > 0) await write(wanted.map((e) => `${JSON.stringify(e)}\n`).join(""));
      count += wanted.length;
      last = wanted.at(-1)?.seq ?? last;
      if (wanted.length === 0 || last >= head) break;
    }
  } catch (e) {
    if (fd !== undefined) {
      closeSync(fd);
      rmSync(tmp!, { force: true });
    }
    throw e;
  }
  if (fd !== undefined) {
    closeSync(fd);
    renameSync(tmp!, o.out!);
    progress(`wrote ${count} audit entries to ${o.out}`);
  }
}

async function verify(file: string, o: VerifyOpts): Promise<void> {
  const config = loadCaConfig(o.config);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let caPublicKey: Uint8Array | undefined;
  if (o.caCert !== undefined) {
    let raw: Buffer;
    try {
      raw = readFileSync(o.caCert);
    } catch (e) {
      throw new UsageError(
        `--ca-cert: cannot read ${o.caCert} (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      );
    }
    const der = raw.toString("latin1").includes("-----BEGIN")
      ? fromPem(raw.toString("utf8"), ["CERTIFICATE"], "CERT_MALFORMED")
      : new Uint8Array(raw);
    caPublicKey = readCaCert(der).publicKeyRaw;
  }
  const verdict = verifyAuditChain(parseAuditLines(text), {
    config: config.config,
    ...(caPublicKey ? { caPublicKey } : {}),
  });
  if (o.json) process.stdout.write(`${JSON.stringify(verdict, null, 2)}\n`);
  else if (verdict.ok)
    process.stdout.write(
      `OK: ${verdict.checked} entries, ${verdict.certificates} certificates, ${verdict.checkpoints} checkpoints\n`,
    );
  else process.stdout.write(`BROKEN at entry ${verdict.firstBroken!.seq}: ${verdict.firstBroken!.reason}\n`);
  if (!o.json) for (const n of verdict.notes ?? []) process.stdout.write(`note: ${n}\n`);
  if (!verdict.ok) process.exitCode = EXIT.REFUSED;
}
