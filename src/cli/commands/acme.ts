// `tca acme eab-key create|list|delete`: the external account binding keys (RFC 8555 §7.3.4) an
// admin hands out so an ACME client's account acts under a ca-config requester's grant
// (docs/acme.md, "Accounts"). The HMAC key is printed once, by create; the coordinator forgets it
// when it binds an account.
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { printResult, runCommand, UsageError } from "../output.ts";
import { collectUrls, COORDINATOR_FLAG, coordinatorUrls } from "../coordinators.ts";
import { CA_FILE_FLAG, CA_FILE_HELP, caFileTls } from "../ca-file.ts";
import { RequesterClient, toRequesterError } from "../../requester/client.ts";
import { RequesterError } from "../../requester/errors.ts";
import { EAB_KEYS_PATH, EabKeyCreatedSchema, EabKeyListSchema } from "../../protocol/acme-eab.ts";

interface ConnectOpts {
  coordinator?: string[];
  adminTokenFile?: string;
  caFile?: string;
  json?: boolean;
}

export function registerAcme(program: Command): void {
  const group = program
    .command("acme")
    .description("ACME (RFC 8555) administration: external account binding keys for certbot, lego, …");
  const eab = group
    .command("eab-key")
    .description("external account binding keys: each binds one ACME account to a requester's grant (admin)");

  connection(eab.command("create"))
    .description("make a key for a requester; prints its id and HMAC key (once) and the client flags")
    .requiredOption("--requester <name>", "the ca-config requester whose grant the ACME account gets")
    .option("--json", "print {keyId, hmacKey, requester, createdAt, directory} as JSON")
    .addHelpText(
      "after",
      `
The HMAC key is shown only here: the coordinator keeps it until an account binds it, then forgets it.

Example:
  tca acme eab-key create --requester web --admin-token-file .tca-dev/admin.token`,
    )
    .action((o: ConnectOpts & { requester: string }) => run(() => create(o)));

  connection(eab.command("list"))
    .description("list keys (never their HMAC): requester, whether bound, and to which account")
    .option("--json", "print {keys: [...]} as JSON")
    .action((o: ConnectOpts) => run(() => list(o)));

  connection(eab.command("delete"))
    .description("delete a key that has not bound an account yet")
    .argument("<keyId>", "the key id create printed")
    .action((keyId: string, o: ConnectOpts) => run(() => remove(keyId, o)));
}

function connection(c: Command): Command {
  return c
    .option(
      COORDINATOR_FLAG,
      "coordinator URL, or several replicas comma-separated or repeated (default: $TCA_COORDINATOR or http://127.0.0.1:8443)",
      collectUrls,
    )
    .option("--admin-token-file <file>", "file holding an admin token (default: $TCA_ADMIN_TOKEN)")
    .option(CA_FILE_FLAG, CA_FILE_HELP);
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

function adminToken(o: ConnectOpts): string {
  if (o.adminTokenFile !== undefined) {
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
  const t = process.env.TCA_ADMIN_TOKEN?.trim();
  if (!t) throw new UsageError("an admin token is needed: --admin-token-file FILE or $TCA_ADMIN_TOKEN");
  return t;
}

function client(o: ConnectOpts): { c: RequesterClient; token: string } {
  const urls = coordinatorUrls(o.coordinator, "http://127.0.0.1:8443")!;
  const tls = caFileTls(o.caFile);
  const token = adminToken(o);
  return { c: new RequesterClient(urls, token, 30_000, tls ? { tls } : {}), token };
}

async function create(o: ConnectOpts & { requester: string }): Promise<void> {
  const { c, token } = client(o);
  const k = await c.http.json("POST", EAB_KEYS_PATH, EabKeyCreatedSchema, {
    body: { requester: o.requester },
    token,
    // Each POST makes a key: never sent twice.
    idempotent: false,
  });
  const directory = `${c.baseUrl.replace(/\/$/, "")}/acme/directory`;
  printResult(
    !!o.json,
    { ...k, directory },
    [
      `key id     ${k.keyId}`,
      `hmac key   ${k.hmacKey}`,
      `requester  ${k.requester}`,
      `directory  ${directory}`,
      "",
      "The HMAC key is shown only now; it binds one ACME account, to this requester's grant.",
      `lego:    lego --server ${directory} --eab --kid ${k.keyId} --hmac ${k.hmacKey} --email EMAIL --domains NAME --http run`,
      `certbot: certbot certonly --server ${directory} --eab-kid ${k.keyId} --eab-hmac-key ${k.hmacKey} --standalone -d NAME`,
    ].join("\n"),
  );
}

async function list(o: ConnectOpts): Promise<void> {
  const { c, token } = client(o);
  const r = await c.http.json("GET", EAB_KEYS_PATH, EabKeyListSchema, { token });
  const rows = r.keys.map(
    (k) =>
      `${k.keyId}  ${k.requester.padEnd(16)}  ${k.createdAt}  ${k.bound ? `bound to account ${k.accountId} at ${k.boundAt}` : "unbound"}`,
  );
  printResult(!!o.json, r, rows.length ? rows.join("\n") : "no external account binding keys");
}

async function remove(keyId: string, o: ConnectOpts): Promise<void> {
  if (!/^[A-Za-z0-9_-]{22}$/.test(keyId))
    throw new UsageError(`"${keyId}" is not a key id (22 base64url characters)`);
  const { c, token } = client(o);
  // Deleting twice is harmless (the second is "not found"), so another replica may be tried.
  await c.http.request("DELETE", `${EAB_KEYS_PATH}/${keyId}`, { token, idempotent: true });
  printResult(false, null, `deleted ${keyId}`);
}
