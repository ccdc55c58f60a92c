// Child processes of the bench and what they cost, read from Linux procfs (proc(5)):
// CPU time from /proc/PID/stat (utime + stime, in clock ticks), peak RSS from VmHWM in
// /proc/PID/status, the process tree from each stat's ppid. Every child is spawned in its own
// process group (detached) so that one kill(-pgid) stops it and everything it started.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { basename } from "node:path";

let ticksPerSecond: number | undefined;
/** sysconf(_SC_CLK_TCK); 100 on every Linux this runs on, asked once to be sure. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks. */
  cpuTicks: number;
}

/** Fields of /proc/PID/stat after the command name (which may contain spaces and parentheses). */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15 (proc(5)).
  const ppid = Number(f[1]);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (![ppid, utime, stime].every(Number.isFinite)) return undefined;
  return { pid, ppid, cpuTicks: utime + stime };
}

export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** `root` and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(s.pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const queue = readStat(root) ? [root] : [];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** A kB field of /proc/PID/status (VmHWM = peak resident set size, VmRSS = now), in KiB. */
export function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A stable name for a process of a `tca dev` tree: the root is the dev process (which runs the
 * coordinator); `tca custodian agent --home …/NAME` is "agent NAME"; other children are named by
 * their tca subcommand and home when they have one.
 */
export function labelOf(pid: number, root: number, rootLabel: string): string {
  if (pid === root) return rootLabel;
  const args = cmdline(pid);
  const home = args.indexOf("--home");
  const who = home >= 0 && args[home + 1] ? ` ${basename(args[home + 1]!)}` : "";
  if (args.includes("custodian")) {
    const verb = args[args.indexOf("custodian") + 1] ?? "custodian";
    return `${verb}${who}`;
  }
  if (args[0] && basename(args[0]) === "esbuild") return `esbuild (tsx) of ${rootLabel}`;
  const script = args.find((a) => /\.(m?[jt]s)$/.test(a));
  return `${script ? basename(script) : (args[0] ?? "process")} ${pid}`;
}

export interface ProcSnapshot {
  /** label → { pid, cpuTicks } */
  byLabel: Map<string, { pid: number; cpuTicks: number }>;
}

export function snapshot(root: number, rootLabel: string): ProcSnapshot {
  const byLabel = new Map<string, { pid: number; cpuTicks: number }>();
  for (const pid of processTree(root)) {
    const s = readStat(pid);
    if (s) byLabel.set(labelOf(pid, root, rootLabel), { pid, cpuTicks: s.cpuTicks });
  }
  return { byLabel };
}

/** CPU milliseconds each process used between two snapshots (a process new in `after` counts from 0). */
export function cpuMsBetween(before: ProcSnapshot, after: ProcSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  const msPerTick = 1000 / clockTicks();
  for (const [label, a] of after.byLabel) {
    const b = before.byLabel.get(label);
    const base = b && b.pid === a.pid ? b.cpuTicks : 0;
    out.set(label, (a.cpuTicks - base) * msPerTick);
  }
  return out;
}

/** Peak RSS (VmHWM) of every process of the tree, MiB, read now. */
export function peakRssMiB(root: number, rootLabel: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of processTree(root)) {
    const kib = statusKiB(pid, "VmHWM");
    if (kib !== undefined) out.set(labelOf(pid, root, rootLabel), kib / 1024);
  }
  return out;
}

// ---- process groups ------------------------------------------------------------------------

const groups = new Set<number>();
const tempDirs = new Set<string>();

/** Removes `dir` when the bench exits, however it exits (after its processes are killed). */
export function removeOnExit(dir: string): void {
  tempDirs.add(dir);
}
let cleanupInstalled = false;

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroupNow(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** On exit, Ctrl-C, SIGTERM or an uncaught error: SIGKILL every process group still running. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", () => {
    for (const g of groups) killGroupNow(g, "SIGKILL");
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping children\n`);
      for (const g of groups) killGroupNow(g, "SIGKILL");
      process.exit(130);
    });
}

/** Spawns `command args` as the leader of a new process group; stdout and stderr are piped. */
export function spawnGroup(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  installCleanup();
  const child = spawn(command, args, {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  if (child.pid !== undefined) groups.add(child.pid);
  return child;
}

/** SIGTERM to the whole group, SIGKILL after `graceMs` if anything of it is still alive. */
export async function stopGroup(child: ChildProcess, graceMs = 6000): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  killGroupNow(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive(pgid)) killGroupNow(pgid, "SIGKILL");
  groups.delete(pgid);
}
