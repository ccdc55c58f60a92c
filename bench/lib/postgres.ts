// A throwaway PostgreSQL server for the bench's PostgreSQL rows (docs/benchmarks.md, "(f)"): the
// test suite's own helper (test/helpers/postgres.ts: initdb into a temp directory, a free port on
// 127.0.0.1, trust authentication, fsync off) so the bench and the tests run the same server the
// same way, plus what the bench measures of it: the server's CPU and peak RSS, read from procfs
// (proc(5)) like the CA's processes (bench/lib/procs.ts).
import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { createDatabase, postgresAvailable, startPostgres } from "../../test/helpers/postgres.ts";
import { clockTicks, cmdline, processTree, statusKiB } from "./procs.ts";

export { createDatabase, postgresAvailable };

export interface BenchPostgres {
  /** Admin URL (`postgres://postgres@127.0.0.1:PORT/postgres`). */
  url: string;
  /** The postmaster's pid, when it could be found in /proc. */
  pid?: number;
  /** A fresh, empty database on this server (its URL). */
  database(): Promise<string>;
  /** CPU ticks of the whole server so far (see serverCpuTicks). */
  cpuTicks(): number | undefined;
  /** Peak RSS (VmHWM) of the postmaster and the largest of its children, MiB, read now. */
  peakRssMiB(): { postmaster?: number; largestChild?: number; processes: number };
  stop(): Promise<void>;
}

/**
 * The postmaster listening on `port`: a process named `postgres` whose arguments hold `-p PORT`
 * (pg_ctl starts it through the shell, so the options arrive as separate arguments). Backends
 * rewrite their command line ("postgres: user db host state") and never match.
 */
export function findPostmaster(port: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const args = cmdline(Number(entry));
    if (args.length < 3 || basename(args[0]!) !== "postgres") continue;
    const p = args.indexOf("-p");
    if (p >= 0 && args[p + 1] === String(port)) return Number(entry);
  }
  return undefined;
}

/** utime, stime, cutime, cstime of /proc/PID/stat (proc(5) fields 14–17), clock ticks. */
function times(pid: number): [number, number, number, number] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const v = [f[11], f[12], f[13], f[14]].map(Number);
    return v.every(Number.isFinite) ? (v as [number, number, number, number]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU ticks the server has used so far: utime + stime of the postmaster and every live child, plus
 * the postmaster's cutime + cstime (children it has reaped). A backend that exits between two
 * readings moves from the first sum to the second, so the difference of two readings is the
 * server's CPU over that interval even when the coordinators' pools open and close connections.
 */
export function serverCpuTicks(postmaster: number): number | undefined {
  const root = times(postmaster);
  if (!root) return undefined;
  let total = root[0] + root[1] + root[2] + root[3];
  for (const pid of processTree(postmaster)) {
    if (pid === postmaster) continue;
    const t = times(pid);
    if (t) total += t[0] + t[1];
  }
  return total;
}

export const ticksToMs = (ticks: number): number => (ticks * 1000) / clockTicks();

/** Starts the server (throws, naming the Debian package, when PostgreSQL is not installed). */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await startPostgres();
  const pid = findPostmaster(Number(new URL(server.url).port));
  return {
    url: server.url,
    pid,
    database: () => createDatabase(server.url),
    cpuTicks: () => (pid === undefined ? undefined : serverCpuTicks(pid)),
    peakRssMiB: () => {
      if (pid === undefined) return { processes: 0 };
      const tree = processTree(pid);
      const kib = (p: number) => statusKiB(p, "VmHWM");
      const children = tree.filter((p) => p !== pid).map(kib);
      const known = children.filter((v): v is number => v !== undefined);
      const root = kib(pid);
      return {
        postmaster: root === undefined ? undefined : Number((root / 1024).toFixed(1)),
        largestChild: known.length ? Number((Math.max(...known) / 1024).toFixed(1)) : undefined,
        processes: tree.length,
      };
    },
    stop: () => server.stop(),
  };
}
