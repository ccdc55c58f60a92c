import type { Command } from "commander";
import { loadCaConfig } from "../../config/load.ts";
import { startCoordinator } from "../../coordinator/server.ts";
import { isPostgresUrl, redactLocation } from "../../coordinator/store/open.ts";
import { DEFAULT_HTTP_LIMITS, parseBucket, type HttpLimits } from "../../coordinator/http/limits.ts";
import { progress, runCommand, UsageError } from "../output.ts";

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
    .action(
      (o: {
        config: string;
        db: string;
        databaseUrl?: string;
        host: string;
        port: string;
        shareTimeout: string;
        maxConnections: string;
        rateLimitIp: string;
        rateLimitToken: string;
      }) =>
        runCommand(async () => {
          const config = loadCaConfig(o.config);
          const limits = limitOptions(o);
          const c = await startCoordinator({
            config,
            database: databaseOption(o.databaseUrl ?? process.env.DATABASE_URL, o.db),
            host: o.host,
            port: Number(o.port),
            shareTimeoutMs: Number(o.shareTimeout) * 1000,
            limits,
          });
          progress(`tca coordinator listening on ${c.url}`);
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
