// `tca certificates list|show|get|export`: the certificate inventory (docs/inventory.md) from the
// command line, over GET /api/v1/certificates[/{serial}]. Reads as a requester (its own
// certificates) or as an admin (all of them), like `step ca` and `vault list pki/certs`.
import { Option, type Command } from "commander";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { progress, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { RequesterClient, toRequesterError } from "../../requester/client.ts";
import { RequesterError } from "../../requester/errors.ts";
import {
  CERTIFICATE_SORTS,
  CERTIFICATE_STATUSES,
  CertificateDetailSchema,
  CertificateListSchema,
  sansCell,
  toCsv,
  type CertificateDetail,
  type CertificateList,
  type CertificateView,
} from "../../protocol/certificates.ts";
import { fromPem } from "../../x509/der.ts";

interface ConnectOpts {
  coordinator?: string[];
  tokenFile?: string;
  adminTokenFile?: string;
  caFile?: string;
}
interface FilterOpts extends ConnectOpts {
  search?: string;
  status?: string;
  profile?: string;
  requester?: string;
  expiresBefore?: string;
  expiresAfter?: string;
  expiringWithin?: string;
  sort?: string;
}
interface ListOpts extends FilterOpts {
  limit?: string;
  cursor?: string;
  all?: boolean;
  json?: boolean;
  csv?: boolean;
}

/** Largest page the coordinator serves; `--all` and `export` ask for it. */
const MAX_PAGE = 500;

function connection(c: Command): Command {
  return c
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or http://127.0.0.1:8443)",
      collectUrls,
    )
    .option("--token-file <file>", "requester token file: read its own certificates (default: $TCA_TOKEN)")
    .option(
      "--admin-token-file <file>",
      "admin token file: read every certificate (default: $TCA_ADMIN_TOKEN)",
    )
    .option(CA_FILE_FLAG, CA_FILE_HELP);
}

function filters(c: Command): Command {
  return c
    .option("--search <text>", "a substring of the subject CN or of any SAN (case-insensitive)")
    .addOption(new Option("--status <status>", "valid, expired or revoked").choices(CERTIFICATE_STATUSES))
    .option("--profile <name>", "issued under this profile")
    .option("--requester <name>", "requested by this requester (admins; a requester sees only its own)")
    .option("--expires-before <time>", "notAfter before this RFC 3339 time or date (2027-01-31)")
    .option("--expires-after <time>", "notAfter after this RFC 3339 time or date")
    .option("--expiring-within <duration>", "valid now and expiring within this long: 30d, 12h, 2w, 90m")
    .addOption(
      new Option(
        "--sort <order>",
        "issued or notAfter; a leading - for descending (default -issued)",
      ).choices(CERTIFICATE_SORTS),
    );
}

export function registerCertificates(program: Command): void {
  const group = program
    .command("certificates")
    .description("the inventory of issued certificates: list, search, show, fetch, export");

  filters(connection(group.command("list")))
    .description("list issued certificates (newest first), one page or --all")
    .option("--limit <n>", "certificates per page, 1-500", "100")
    .option("--cursor <cursor>", "start at this page (the `next` of an earlier --json answer)")
    .option("--all", "follow the pages to the end")
    .option("--json", "print the answer as JSON ({certificates, next})")
    .option("--csv", "print CSV (header row, RFC 4180)")
    .addHelpText(
      "after",
      `
Examples:
  tca certificates list --admin-token-file .tca-dev/admin.token --expiring-within 30d
  tca certificates list --token-file .tca-dev/requester.token --search svc.example --status valid --all`,
    )
    .action((o: ListOpts) => run(() => list(o)));

  connection(group.command("show"))
    .description("show one certificate: subject, names, validity, status, revocation")
    .argument("<serial>", "the serial, in any form (hex, 0x…, colons, any case)")
    .option("--json", "print the record as JSON (with the PEM chain)")
    .action((serial: string, o: ConnectOpts & { json?: boolean }) => run(() => show(serial, o)));

  connection(group.command("get"))
    .description("write a certificate: the PEM chain (leaf first), or the leaf as DER")
    .argument("<serial>", "the serial, in any form (hex, 0x…, colons, any case)")
    .option("--out <file>", "write here instead of stdout")
    .option("--der", "the leaf certificate alone, DER")
    .option("--force", "overwrite --out if it exists")
    .action((serial: string, o: ConnectOpts & { out?: string; der?: boolean; force?: boolean }) =>
      run(() => get(serial, o)),
    );

  filters(connection(group.command("export")))
    .description("every certificate matching the filters, all pages, as CSV or JSON")
    .option("--csv", "CSV with a header row (RFC 4180; formula-looking cells start with ')")
    .option("--json", "JSON: {certificates: [...]}")
    .option("--out <file>", "write here instead of stdout")
    .option("--force", "overwrite --out if it exists")
    .action((o: FilterOpts & { csv?: boolean; json?: boolean; out?: string; force?: boolean }) =>
      run(() => exportAll(o)),
    );
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

function readTokenFile(flag: string, file: string): string {
  let t: string;
  try {
    t = readFileSync(file, "utf8").trim();
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!t) throw new UsageError(`${flag}: ${file} is empty`);
  return t;
}

/** The token: --admin-token-file, else --token-file, else $TCA_TOKEN, else $TCA_ADMIN_TOKEN. */
function tokenFor(o: ConnectOpts): string {
  if (o.adminTokenFile !== undefined && o.tokenFile !== undefined)
    throw new UsageError("give --token-file or --admin-token-file, not both");
  if (o.adminTokenFile !== undefined) return readTokenFile("--admin-token-file", o.adminTokenFile);
  if (o.tokenFile !== undefined) return readTokenFile("--token-file", o.tokenFile);
  const t = process.env.TCA_TOKEN?.trim() || process.env.TCA_ADMIN_TOKEN?.trim();
  if (!t)
    throw new UsageError(
      "a token is needed: --token-file FILE (requester), --admin-token-file FILE, $TCA_TOKEN or $TCA_ADMIN_TOKEN",
    );
  return t;
}

function client(o: ConnectOpts): { http: RequesterClient["http"]; token: string } {
  const urls = coordinatorUrls(o.coordinator, "http://127.0.0.1:8443")!;
  const tls = caFileTls(o.caFile);
  const token = tokenFor(o);
  return { http: new RequesterClient(urls, token, 30_000, tls ? { tls } : {}).http, token };
}

/** "30d", "12h", "2w", "90m", "45s" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  if (!m) throw new UsageError(`--expiring-within: "${text}" is not a duration like 30d, 12h, 2w or 90m`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s"];
  return Number(m[1]) * unit;
}

function query(o: FilterOpts, extra: Record<string, string | undefined>): string {
  if (o.expiringWithin !== undefined && (o.expiresBefore !== undefined || o.expiresAfter !== undefined))
    throw new UsageError(
      "--expiring-within sets the expiry window itself: drop --expires-before/--expires-after",
    );
  if (o.expiringWithin !== undefined && o.status !== undefined && o.status !== "valid")
    throw new UsageError("--expiring-within lists valid certificates: drop --status or make it valid");
  const now = Date.now();
  const within = o.expiringWithin !== undefined ? parseDuration(o.expiringWithin) : undefined;
  const p = new URLSearchParams();
  const set = (k: string, v: string | undefined) => v !== undefined && p.set(k, v);
  set("q", o.search);
  set("status", within !== undefined ? "valid" : o.status);
  set("profile", o.profile);
  set("requester", o.requester);
  set("expiresBefore", within !== undefined ? new Date(now + within).toISOString() : o.expiresBefore);
  set("expiresAfter", within !== undefined ? new Date(now).toISOString() : o.expiresAfter);
  set("sort", o.sort);
  for (const [k, v] of Object.entries(extra)) set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

async function page(o: FilterOpts, extra: Record<string, string | undefined>): Promise<CertificateList> {
  const c = client(o);
  return c.http.json("GET", `/api/v1/certificates${query(o, extra)}`, CertificateListSchema, {
    token: c.token,
  });
}

/** Every page from `cursor` on (keyset pages: none repeats or skips one). */
async function allPages(o: FilterOpts, limit: number, cursor?: string): Promise<CertificateView[]> {
  const out: CertificateView[] = [];
  let next: string | null | undefined = cursor;
  do {
    const p = await page(o, { limit: String(limit), cursor: next ?? undefined });
    out.push(...p.certificates);
    next = p.next;
  } while (next !== null);
  return out;
}

async function list(o: ListOpts): Promise<void> {
  if (o.json && o.csv) throw new UsageError("give --json or --csv, not both");
  const limit = Number(o.limit ?? "100");
  if (!/^\d{1,3}$/.test(o.limit ?? "100") || limit < 1 || limit > MAX_PAGE)
    throw new UsageError(`--limit must be a whole number from 1 to ${MAX_PAGE}`);
  let certificates: CertificateView[];
  let next: string | null = null;
  if (o.all) {
    certificates = await allPages(o, MAX_PAGE, o.cursor);
  } else {
    const p = await page(o, { limit: String(limit), cursor: o.cursor });
    certificates = p.certificates;
    next = p.next;
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ certificates, next }, null, 2)}\n`);
  else if (o.csv) process.stdout.write(toCsv(certificates));
  else {
    process.stdout.write(table(certificates));
    if (next !== null) progress(`more certificates: --all, or --cursor ${next}`);
  }
}

/** The first CN of an RFC 4514 subject, else the first SAN, else the subject. */
function commonName(c: CertificateView): string {
  const m = /(?:^|,\s*|\+)CN=((?:\\.|[^,+\\])*)/.exec(c.subject);
  if (m) return m[1]!.replace(/\\(.)/g, "$1");
  return c.sans[0]?.value ?? c.subject;
}

/** A plain table, columns padded; control characters in names shown as "?". */
function table(rows: readonly CertificateView[]): string {
  const clean = (s: string) => s.replace(/\p{Cc}/gu, "?");
  const lines = [
    ["SERIAL", "CN", "STATUS", "NOT AFTER", "REQUESTER"],
    ...rows.map((c) => [
      c.serial,
      clean(commonName(c)),
      c.status,
      c.notAfter.slice(0, 19) + "Z",
      c.requester,
    ]),
  ];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return (
    lines
      .map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "))
      .join("\n") + "\n"
  );
}

async function fetchOne(serial: string, o: ConnectOpts): Promise<CertificateDetail> {
  const c = client(o);
  return c.http.json("GET", `/api/v1/certificates/${encodeURIComponent(serial)}`, CertificateDetailSchema, {
    token: c.token,
  });
}

async function show(serial: string, o: ConnectOpts & { json?: boolean }): Promise<void> {
  const d = await fetchOne(serial, o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ["serial", d.serial],
    ["subject", d.subject],
    ["names", sansCell(d.sans) || "(none)"],
    ["status", d.status],
    ...(d.revokedAt
      ? ([["revoked", `${d.revokedAt} (${d.reason ?? "unspecified"})`]] as [string, string][])
      : []),
    ["not before", d.notBefore],
    ["not after", d.notAfter],
    ["profile", d.profile],
    ["requester", d.requester],
    ["request", d.requestId],
    ["key type", d.keyType],
  ];
  process.stdout.write(
    rows.map(([k, v]) => `${k.padEnd(11)} ${v.replace(/\p{Cc}/gu, "?")}`).join("\n") + "\n",
  );
}

function writeOut(file: string | undefined, data: string | Uint8Array, force?: boolean): void {
  if (file === undefined) {
    process.stdout.write(data);
    return;
  }
  if (existsSync(file) && !force) throw new UsageError(`--out: ${file} exists; pass --force to overwrite it`);
  writeFileSync(file, data);
  progress(`wrote ${file}`);
}

async function get(
  serial: string,
  o: ConnectOpts & { out?: string; der?: boolean; force?: boolean },
): Promise<void> {
  const d = await fetchOne(serial, o);
  if (!o.der) return writeOut(o.out, d.pem, o.force);
  const leaf = d.pem.slice(
    0,
    d.pem.indexOf("-----END CERTIFICATE-----") + "-----END CERTIFICATE-----".length,
  );
  writeOut(o.out, fromPem(leaf, ["CERTIFICATE"], "CERT_MALFORMED"), o.force);
}

async function exportAll(o: FilterOpts & { csv?: boolean; json?: boolean; out?: string; force?: boolean }) {
  if (!!o.csv === !!o.json) throw new UsageError("give --csv or --json");
  if (o.out !== undefined && existsSync(o.out) && !o.force)
    throw new UsageError(`--out: ${o.out} exists; pass --force to overwrite it`);
  const all = await allPages(o, MAX_PAGE);
  writeOut(o.out, o.csv ? toCsv(all) : `${JSON.stringify({ certificates: all }, null, 2)}\n`, true);
  if (o.out !== undefined) progress(`${all.length} certificate${all.length === 1 ? "" : "s"}`);
}
