// The `tca` program, with each command group's module imported only when that group runs: `tca
// --version`, `tca --help` and a mistyped command load commander and nothing else (no HTTP server,
// database, X.509 or FROST code), and `tca request` never loads the coordinator. The other groups
// appear as stubs that carry only what `tca --help` lists; a test keeps that listing identical to the
// one the real modules produce.
import { readFileSync } from "node:fs";
import { Command, Help } from "commander";

type Register = (program: Command) => void;

interface CommandGroup {
  /** How `tca --help` names the group: its name, `[options]` if it has any, then its arguments. */
  readonly term: string;
  readonly description: string;
  readonly load: () => Promise<Register>;
}

export const COMMAND_GROUPS: Readonly<Record<string, CommandGroup>> = {
  serve: {
    term: "serve [options]",
    description: "run the coordinator: HTTP API and database (holds no key material)",
    load: async () => (await import("./commands/serve.ts")).registerServe,
  },
  custodian: {
    term: "custodian",
    description: "a custodian node: identity, key share, approvals and signing",
    load: async () => (await import("./commands/custodian.ts")).registerCustodian,
  },
  ceremony: {
    term: "ceremony",
    description: "key ceremonies: create the CA key, then refresh, reshare or repair its shares (admin)",
    load: async () => (await import("./commands/ceremony.ts")).registerCeremony,
  },
  dev: {
    term: "dev [options]",
    description:
      "run a complete local CA: coordinator on 127.0.0.1, N custodians, DKG and root (SQLite, or PostgreSQL with --database-url)",
    load: async () => (await import("./commands/dev.ts")).registerDev,
  },
  init: {
    term: "init [options]",
    description:
      "write a ca-config for a real CA (asks on a terminal, flags otherwise): subject, custodians, threshold, profiles, tokens",
    load: async () => (await import("./commands/init.ts")).registerInit,
  },
  request: {
    term: "request [options] <name>",
    description:
      "request a certificate: make a key and CSR (or submit --csr), wait for the custodians' approvals, write the certificate, chain and key",
    load: async () => (await import("./commands/request.ts")).registerRequest,
  },
  revoke: {
    term: "revoke [options] [serial]",
    description: "revoke a certificate (final); the custodians then sign a new CRL that lists it",
    load: async () => (await import("./commands/revoke.ts")).registerRevoke,
  },
  renew: {
    term: "renew [options]",
    description:
      "renew a certificate with its own key as the credential (same names; --rekey for a new key); --daemon keeps renewing",
    load: async () => (await import("./commands/renew.ts")).registerRenew,
  },
  certificates: {
    term: "certificates",
    description: "the inventory of issued certificates: list, search, show, fetch, export",
    load: async () => (await import("./commands/certificates.ts")).registerCertificates,
  },
  audit: {
    term: "audit",
    description: "the hash-chained audit log: export it, verify it offline against ca-config",
    load: async () => (await import("./commands/audit.ts")).registerAudit,
  },
  acme: {
    term: "acme",
    description: "ACME (RFC 8555) administration: external account binding keys for certbot, lego, …",
    load: async () => (await import("./commands/acme.ts")).registerAcme,
  },
};

/** The package version (package.json sits two levels up from both src/cli and dist/cli). */
function packageVersion(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  const version = (pkg as { version?: unknown }).version;
  return typeof version === "string" ? version : "unknown";
}

/**
 * The command group that `argv` (process.argv: node, script, args...) runs, if any. Commander's
 * only program-level options are --help and --version, which take no value, so the first argument
 * that is not an option names the group; `tca help GROUP` names it second.
 */
export function groupFor(argv: readonly string[]): string | undefined {
  const words = argv.slice(2).filter((a) => !a.startsWith("-"));
  const name = words[0] === "help" ? words[1] : words[0];
  return name !== undefined && Object.hasOwn(COMMAND_GROUPS, name) ? name : undefined;
}

/**
 * Builds the program for `argv`: the group it names is fully registered from its module, every
 * other group is a stub. With `full`, every group is loaded (tests compare the two).
 */
export async function buildProgram(argv: readonly string[], full = false): Promise<Command> {
  const stubs = new Map<Command, string>();
  const program = new Command()
    .name("tca")
    .description("tca: a threshold certificate authority (FROST Ed25519 over a DKG key)")
    .version(packageVersion())
    // A usage error is one line (what is wrong, and where to look) and exit code 2, in every
    // subcommand (they inherit this output configuration and the exit override).
    .configureOutput({
      outputError: (str, write) => write(`tca: ${str.replace(/\s+/g, " ").trim()} (see --help)\n`),
    })
    .configureHelp({ subcommandTerm: (cmd) => stubs.get(cmd) ?? new Help().subcommandTerm(cmd) })
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    });

  const wanted = groupFor(argv);
  // @peculiar/x509 (through tsyringe) needs reflect-metadata loaded before it.
  if (full || wanted !== undefined) await import("reflect-metadata");
  for (const [name, group] of Object.entries(COMMAND_GROUPS)) {
    if (full || name === wanted) {
      (await group.load())(program);
    } else {
      stubs.set(program.command(name).description(group.description), group.term);
    }
  }
  return program;
}
