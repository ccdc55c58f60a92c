import type { Command } from "commander";
import { loadCaConfig } from "../../config/load.ts";
import { startCoordinator, type TlsSetting } from "../../coordinator/server.ts";
import { defaultTlsDir, defaultTlsNames } from "../../coordinator/self-tls.ts";
import { defaultOcspDir } from "../../coordinator/ocsp/signer-cert.ts";
import { isPostgresUrl, redactLocation } from "../../coordinator/store/open.ts";
import { DEFAULT_HTTP_LIMITS, parseBucket, type HttpLimits } from "../../coordinator/http/limits.ts";
import { progress, runCommand, UsageError } from "../output.ts";
import { createAcme } from "../../acme/router.ts";
import { createConsole } from "../../console/router.ts";
import type { CoordinatorServices } from "../../coordinator/services.ts";
import { ROUTES } from "../../acme/paths.ts";
import { DEFAULT_VALIDATION, type AcmeValidationOptions } from "../../acme/context.ts";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the coordinator: HTTP API and database (holds no key material)")
    .option("--config <path>", "ca-config file", "ca-config/ca.yaml")
    .option("--db <path>", "SQLite database file (the embedded default: one coordinator)", "tca.db")
    .option(
      "--database-url <url>",
      "PostgreSQL URL, e.g. postgres://tca@db/tca (default: $DATABASE_URL); replicas on one database act as one CA",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0 = any free port)", "8443")
    .option(
      "--share-timeout <seconds>",
      "re-form a signing session when a signer stays silent this long",
      "15",
    )
    .option(
      "--max-connections <n>",
      "open connections at most; more are closed at once",
      String(DEFAULT_HTTP_LIMITS.maxConnections),
    )
    .option(
      "--rate-limit-ip <rate[:burst]>",
      "requests per second per client IP (loopback and the custodians' signed routes have higher caps)",
      bucketText(DEFAULT_HTTP_LIMITS.perIp),
    )
    .option(
      "--rate-limit-token <rate[:burst]>",
      "requests per second per bearer token (requesters, admins)",
      bucketText(DEFAULT_HTTP_LIMITS.perToken),
    )
    .option(
      "--tls-cert <file>",
      "serve TLS only, with this PEM certificate chain (leaf first); re-read on SIGHUP",
    )
    .option("--tls-key <file>", "the PEM private key of --tls-cert; re-read on SIGHUP")
    .option(
      "--tls <mode>",
      '"auto": the CA issues this coordinator its own certificate once the root exists (docs/tls.md)',
    )
    .option(
      "--tls-name <name>",
      "with --tls auto: a DNS name or IP address for the certificate (repeatable; default localhost, 127.0.0.1, ::1 and --host)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--tls-dir <dir>",
      "with --tls auto: where the key and certificate are kept (default: beside the SQLite file, e.g. tca-tls/; each replica needs its own)",
    )
    .option("--tls-profile <profile>", "with --tls auto: the profile to request", "server")
    .option(
      "--ocsp-dir <dir>",
      "where the OCSP responder's key and certificate are kept (default: beside the SQLite file, e.g. tca-ocsp/; each replica needs its own)",
    )
    .option(
      "--no-ocsp",
      "do not run the OCSP responder (/ocsp then answers unauthorized); by default it runs when ca-config has the requester ocsp (docs/ocsp.md)",
    )
    .option(
      "--acme-http-port <port>",
      "ACME http-01: the port validation fetches from (when ca-config has an acme section)",
      "80",
    )
    .option("--acme-tls-port <port>", "ACME tls-alpn-01: the port validation connects to", "443")
    .option(
      "--acme-resolver <host:port>",
      "ACME: the DNS server for every lookup validation makes (TXT, A, AAAA); default: the system resolver",
    )
    .action(
      (o: {
        tlsCert?: string;
        tlsKey?: string;
        tls?: string;
        tlsName?: string[];
        tlsDir?: string;
        tlsProfile: string;
        ocsp: boolean;
        ocspDir?: string;
        config: string;
        db: string;
        databaseUrl?: string;
        host: string;
        port: string;
        shareTimeout: string;
        maxConnections: string;
        rateLimitIp: string;
        rateLimitToken: string;
        acmeHttpPort: string;
        acmeTlsPort: string;
        acmeResolver?: string;
      }) =>
        runCommand(async () => {
          const config = loadCaConfig(o.config);
          const limits = limitOptions(o);
          const database = databaseOption(o.databaseUrl ?? process.env.DATABASE_URL, o.db);
          const tls = tlsOption(o, database);
          const acme = acmeOption(o);
          if (!o.ocsp && o.ocspDir !== undefined)
            throw new UsageError("--ocsp-dir and --no-ocsp exclude each other");
          const c = await startCoordinator({
            config,
            database,
            host: o.host,
            port: Number(o.port),
            shareTimeoutMs: Number(o.shareTimeout) * 1000,
            limits,
            ...(tls ? { tls } : {}),
            ...(o.ocsp ? { ocsp: { dir: o.ocspDir ?? defaultOcspDir(database) } } : {}),
            extensions: [
              (s) => createConsole(s), // the read-only web console at /ui/ (docs/console.md)
              ...(config.config.acme
                ? [(s: CoordinatorServices) => createAcme(s, { validation: acme })]
                : []),
            ],
          });
          progress(`tca coordinator listening on ${c.url}`);
          if (config.config.acme) progress(`ACME directory: ${c.url}${ROUTES.directory}`);
          if (c.ocsp.state !== "off")
            progress(
              `OCSP responder: ${c.url}/ocsp (answers once its delegated certificate is issued; docs/ocsp.md)`,
            );
          if (c.tls.mode === "auto") {
            progress(
              "TLS auto: plain HTTP until this coordinator's certificate is issued by the CA (docs/tls.md)",
            );
            void c.tls.whenActive().then((url) => progress(`tca coordinator serving ${url}`));
          }
          if (c.tls.mode === "static") process.on("SIGHUP", () => c.tls.reload());
          const stop = () => void c.close().then(() => process.exit(0));
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        }),
    );
}

/** The store to open: a PostgreSQL URL if one is given, else the SQLite file. */
export function databaseOption(url: string | undefined, sqlitePath: string): string {
  if (url === undefined || url === "") return sqlitePath;
  if (!isPostgresUrl(url))
    throw new UsageError(
      `--database-url: expected a postgres:// or postgresql:// URL, got "${redactLocation(url)}" (for SQLite use --db PATH)`,
    );
  return url;
}

/** The TLS setting from `tca serve`'s flags: static files, auto, or none (plain HTTP). */
export function tlsOption(
  o: {
    tlsCert?: string;
    tlsKey?: string;
    tls?: string;
    tlsName?: string[];
    tlsDir?: string;
    tlsProfile?: string;
    host: string;
  },
  database: string,
): TlsSetting | undefined {
  const staticGiven = o.tlsCert !== undefined || o.tlsKey !== undefined;
  const autoOnly =
    o.tlsName !== undefined || o.tlsDir !== undefined || (o.tlsProfile ?? "server") !== "server";
  if (o.tls !== undefined && o.tls !== "auto")
    throw new UsageError(
      `--tls: the only mode is "auto" (for your own certificate use --tls-cert and --tls-key), got "${o.tls}"`,
    );
  if (o.tls === "auto" && staticGiven)
    throw new UsageError("--tls auto and --tls-cert/--tls-key exclude each other: choose one");
  if (staticGiven) {
    if (o.tlsCert === undefined || o.tlsKey === undefined)
      throw new UsageError("--tls-cert and --tls-key go together: give both");
    if (autoOnly) throw new UsageError("--tls-name, --tls-dir and --tls-profile need --tls auto");
    return { mode: "static", certFile: o.tlsCert, keyFile: o.tlsKey };
  }
  if (o.tls !== "auto") {
    if (autoOnly) throw new UsageError("--tls-name, --tls-dir and --tls-profile need --tls auto");
    return undefined;
  }
  for (const n of o.tlsName ?? [])
    if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(n))
      throw new UsageError(`--tls-name: "${n}" is not a DNS name or IP address`);
  return {
    mode: "auto",
    names: o.tlsName?.length ? [...new Set(o.tlsName)] : defaultTlsNames(o.host),
    dir: o.tlsDir ?? defaultTlsDir(database),
    profile: o.tlsProfile ?? "server",
  };
}

/** Where ACME validation connects, from the --acme-* flags (docs/acme.md, "Validation"). */
export function acmeOption(o: {
  acmeHttpPort?: string;
  acmeTlsPort?: string;
  acmeResolver?: string;
}): AcmeValidationOptions {
  const port = (v: string | undefined, flag: string, fallback: number): number => {
    if (v === undefined) return fallback;
    if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535)
      throw new UsageError(`${flag}: expected a port number 1-65535, got "${v}"`);
    return Number(v);
  };
  const out: AcmeValidationOptions = {
    ...DEFAULT_VALIDATION,
    httpPort: port(o.acmeHttpPort, "--acme-http-port", DEFAULT_VALIDATION.httpPort),
    tlsPort: port(o.acmeTlsPort, "--acme-tls-port", DEFAULT_VALIDATION.tlsPort),
  };
  if (o.acmeResolver !== undefined) {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+|[A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(o.acmeResolver);
    if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535)
      throw new UsageError(
        `--acme-resolver: expected HOST:PORT (an IPv6 address in brackets), got "${o.acmeResolver}"`,
      );
    out.resolver = o.acmeResolver;
  }
  return out;
}

const bucketText = (b: { ratePerSecond: number; burst: number }): string => `${b.ratePerSecond}:${b.burst}`;

/** The HTTP limits from `tca serve`'s flags (README: API). */
export function limitOptions(o: {
  maxConnections: string;
  rateLimitIp: string;
  rateLimitToken: string;
}): Partial<HttpLimits> {
  if (!/^[0-9]{1,7}$/.test(o.maxConnections) || Number(o.maxConnections) < 1)
    throw new UsageError(`--max-connections: expected a whole number ≥ 1, got "${o.maxConnections}"`);
  try {
    return {
      maxConnections: Number(o.maxConnections),
      perIp: parseBucket(o.rateLimitIp, "--rate-limit-ip"),
      perToken: parseBucket(o.rateLimitToken, "--rate-limit-token"),
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
