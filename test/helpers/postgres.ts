// A real, throwaway PostgreSQL server for the test suite. The vitest globalSetup starts one cluster
// for the whole run (temporary data directory, free port on 127.0.0.1, trust authentication,
// durability switched off for speed) and hands its admin URL to the test files with
// `project.provide("pgAdminUrl", …)`; each test file then takes a database of its own with
// `testDatabaseUrl()`. The server binaries are Debian's `postgresql` package (`.ci/run` installs it
// on a fresh machine). In CI a missing server is an error, never a silent skip; on a developer's
// machine without PostgreSQL the PostgreSQL tests are skipped with a warning.
import { spawn, spawnSync, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import pg from "pg";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the suite's shared PostgreSQL server; null when it is not installed (never in CI). */
    pgAdminUrl: string | null;
  }
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (superuser, trust authentication). */
  url: string;
  /** Stops the server at once (`pg_ctl stop -m immediate`) and deletes its data directory. */
  stop(): Promise<void>;
  /** SIGKILLs the server and all its backends, as a crash would, keeping its data directory. */
  kill(): Promise<void>;
  /** Starts the server again on the same data (crash recovery) and port. */
  restart(): Promise<void>;
}

interface Binaries {
  initdb: string;
  pgCtl: string;
}

/** The Debian package that provides `initdb` and `pg_ctl` (`postgresql` depends on `postgresql-NN`). */
export const POSTGRES_PACKAGE = "postgresql";

const MISSING =
  `PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package ` +
  `"${POSTGRES_PACKAGE}" (apt-get install ${POSTGRES_PACKAGE}; .ci/run does this)`;

function binariesIn(dir: string): Binaries | null {
  const initdb = join(dir, "initdb");
  const pgCtl = join(dir, "pg_ctl");
  return existsSync(initdb) && existsSync(pgCtl) ? { initdb, pgCtl } : null;
}

/**
 * Finds `initdb` and `pg_ctl`: in `pg_config --bindir` when that has them (libpq-dev's pg_config
 * can exist without a server), else in the newest `/usr/lib/postgresql/<version>/bin`, else on PATH.
 */
export function findPostgresBinaries(): Binaries | null {
  const r = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (r.status === 0) {
    const found = binariesIn(r.stdout.trim());
    if (found) return found;
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return onPath();
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const found = binariesIn(join(root, v, "bin"));
    if (found) return found;
  }
  return onPath();
}

/** Other systems (Homebrew, other distributions): initdb and pg_ctl side by side on PATH. */
function onPath(): Binaries | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const found = binariesIn(dir);
    if (found) return found;
  }
  return null;
}

export function postgresAvailable(): boolean {
  return findPostgresBinaries() !== null;
}

/** Who runs the server: `initdb` refuses root, so as root it is the `postgres` account. */
function serverAccount(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  const fields = line?.split(":");
  if (!fields || fields.length < 4) {
    throw new Error("running as root, but there is no 'postgres' account to run the PostgreSQL server");
  }
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/** The environment without PG* variables, so that a developer's PGDATA or PGPORT changes nothing. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { LC_ALL: "C" };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG") && k !== "LC_ALL") env[k] = v;
  return env;
}

function run(file: string, args: string[], opts: SpawnOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(" ")} failed (${signal ?? `status ${code}`}):\n${output}`));
    });
  });
}

/** Processes whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/**
 * Starts a throwaway PostgreSQL cluster: `initdb` into a temporary directory, then `pg_ctl start`
 * on a free port of 127.0.0.1 with fsync, synchronous commit and full-page writes off. Throws
 * (naming the package) when the binaries are missing.
 */
export async function startPostgres(o: { durable?: boolean } = {}): Promise<PostgresServer> {
  const bins = findPostgresBinaries();
  if (!bins) throw new Error(MISSING);
  const account = serverAccount();
  const base = mkdtempSync(join(tmpdir(), "tca-pg-"));
  const data = join(base, "data");
  const sockets = join(base, "sock");
  const log = join(base, "server.log");
  mkdirSync(sockets);
  if (account) for (const p of [base, sockets]) chownSync(p, account.uid, account.gid);
  const opts: SpawnOptions = { env: cleanEnv(), cwd: base, ...(account ?? {}) };

  let running = false;
  const stopSync = (): void => {
    if (running)
      spawnSync(bins.pgCtl, ["stop", "-D", data, "-m", "immediate", "-w"], { ...opts, stdio: "ignore" });
    running = false;
    rmSync(base, { recursive: true, force: true });
  };
  // A run that ends without calling stop() (a crash, Ctrl-C) still leaves no server behind.
  process.once("exit", stopSync);

  try {
    const initdbArgs = ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"];
    await run(bins.initdb, [...initdbArgs, "--no-sync", "--no-instructions"], opts);
    let port = 0;
    let serverOpts = "";
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      serverOpts = [
        "-F",
        "-c fsync=off",
        // A server the tests SIGKILL must keep what it acknowledged: commits wait for the WAL
        // write (still no fsync: the machine itself does not crash).
        `-c synchronous_commit=${o.durable ? "on" : "off"}`,
        "-c full_page_writes=off",
        "-c max_connections=200",
        "-c listen_addresses=127.0.0.1",
        `-p ${port}`,
        `-k ${sockets}`,
      ].join(" ");
      try {
        running = true;
        await run(bins.pgCtl, ["start", "-w", "-t", "60", "-D", data, "-l", log, "-o", serverOpts], opts);
        break;
      } catch (e) {
        running = false;
        // The port may have been taken between freePort() and the server binding it: try another.
        if (attempt >= 3) {
          const serverLog = existsSync(log) ? readFileSync(log, "utf8") : "";
          throw new Error(`${(e as Error).message}\nserver log:\n${serverLog}`);
        }
      }
    }
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    return {
      url,
      async kill(): Promise<void> {
        const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
        // The postmaster and its backends at once: nothing shuts down cleanly.
        const all = [pid, ...childrenOf(pid)];
        for (const p of all) signal(p, "SIGKILL");
        while (all.some(alive)) await new Promise((r) => setTimeout(r, 20));
        // A killed postmaster may stay a zombie (nobody reaps it in a container), which the next
        // start would take for a running server: its lock file goes, as after a reboot.
        rmSync(join(data, "postmaster.pid"), { force: true });
        for (const f of readdirSync(sockets)) rmSync(join(sockets, f), { force: true });
        running = false;
      },
      async restart(): Promise<void> {
        running = true;
        try {
          await run(bins.pgCtl, ["start", "-w", "-t", "60", "-D", data, "-l", log, "-o", serverOpts], opts);
        } catch (e) {
          throw new Error(`${(e as Error).message}\nserver log:\n${readFileSync(log, "utf8").slice(-3000)}`);
        }
      },
      async stop(): Promise<void> {
        process.removeListener("exit", stopSync);
        if (running) {
          running = false;
          await run(bins.pgCtl, ["stop", "-D", data, "-m", "immediate", "-w"], opts);
        }
        rmSync(base, { recursive: true, force: true });
      },
    };
  } catch (e) {
    process.removeListener("exit", stopSync);
    stopSync();
    throw e;
  }
}

/**
 * For the globalSetup: the suite's shared server, or null (with a warning) when PostgreSQL is not
 * installed outside CI. With `CI` set a missing server throws: PostgreSQL tests never skip in CI.
 */
export async function startSharedPostgres(): Promise<PostgresServer | null> {
  if (!postgresAvailable() && !process.env.CI) {
    console.warn(`warning: ${MISSING}. The PostgreSQL tests are skipped.`);
    return null;
  }
  return startPostgres();
}

/** Creates a fresh, uniquely named database on the server of `adminUrl` and returns its URL. */
export async function createDatabase(adminUrl: string): Promise<string> {
  const name = `tca_test_${randomBytes(8).toString("hex")}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function injectedAdminUrl(): Promise<string | null> {
  const { inject } = await import("vitest");
  return inject("pgAdminUrl");
}

/**
 * Whether the suite has a PostgreSQL server (for `describe.skipIf(!(await hasPostgres()))`). False
 * only outside CI, with a warning naming the skipped suite; in CI the globalSetup has already failed.
 */
export async function hasPostgres(suite: string): Promise<boolean> {
  if ((await injectedAdminUrl()) !== null) return true;
  if (process.env.CI) throw new Error(`${MISSING} (CI: "${suite}" must not be skipped)`);
  console.warn(`warning: PostgreSQL is not installed; skipping "${suite}"`);
  return false;
}

/** A fresh database on the suite's shared PostgreSQL server, for one test file or one test. */
export async function testDatabaseUrl(): Promise<string> {
  const admin = await injectedAdminUrl();
  if (admin === null) throw new Error(`${MISSING} (no shared server: call hasPostgres() first)`);
  return createDatabase(admin);
}
