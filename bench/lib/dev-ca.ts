// A local CA for the bench, through the stable contract only (README "The two commands";
// docs/benchmarks.md): `tca dev --dir DIR --port 0 --custodians N --threshold T` as its own process
// group, its URL taken from what it prints, ready when GET /api/v1/health says the CA key exists.
// With `databaseUrl` it adds `--database-url URL --coordinators R`: R coordinator replicas in the
// dev process on one PostgreSQL database, their URLs one per line in DIR/coordinators.txt, and the
// CA is ready when every replica is.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { removeOnExit, spawnGroup, stopGroup } from "./procs.ts";
import { HttpClient } from "./http.ts";

export const TCA_BIN = fileURLToPath(new URL("../../bin/tca.js", import.meta.url));

export interface DevCa {
  n: number;
  t: number;
  dir: string;
  child: ChildProcess;
  pid: number;
  /** The first coordinator (the one on --port). */
  url?: string;
  /** Every coordinator replica, from DIR/coordinators.txt (just `url` without replicas). */
  urls: string[];
  token?: string;
  /** Seconds from spawn to a 200 health answer with the CA key present; undefined if never. */
  readySeconds?: number;
  /** Why it is not ready, when it is not. */
  problem?: string;
  /** The last output of the dev process, for diagnostics. */
  output(): string;
  /** Set once the dev process has exited ("tca dev exited (CODE or SIGNAL)"). */
  exited(): string | undefined;
  stop(): Promise<void>;
}

/** Each dev coordinator's admin token: /metrics is for admins (docs/security-model.md). */
const adminTokens = new Map<string, string>();
/** Headers that let the bench read a dev coordinator's /metrics. */
export function adminHeaders(url: string): Record<string, string> {
  const t = adminTokens.get(url);
  return t ? { authorization: `Bearer ${t}` } : {};
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True once health answers 200 (not "initializing", CA key present) and the root certificate is served. */
async function healthy(client: HttpClient, url: string): Promise<boolean> {
  try {
    const res = await client.request("GET", `${url}/api/v1/health`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return false;
    const body = JSON.parse(res.body) as { status?: string; caKey?: string };
    if (body.status === "initializing" || body.caKey === "none") return false;
    // Some versions answer 200 once the key exists but before the root certificate does; a CA
    // without its certificate refuses requests, so wait for GET /ca.pem too.
    const root = await client.request("GET", `${url}/ca.pem`, { signal: AbortSignal.timeout(5000) });
    return root.status === 200;
  } catch {
    return false;
  }
}

/** Every replica is ready (health and root certificate). */
async function allHealthy(client: HttpClient, urls: readonly string[]): Promise<boolean> {
  for (const u of urls) if (!(await healthy(client, u))) return false;
  return true;
}

/**
 * The replicas' URLs from DIR/coordinators.txt once it lists `expected` of them; a dev CA without
 * that file (one coordinator, an older tca) is just its one URL.
 */
function replicaUrls(dir: string, first: string | undefined, expected: number): string[] | undefined {
  const file = join(dir, "coordinators.txt");
  if (existsSync(file)) {
    const urls = readFileSync(file, "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    if (urls.length >= expected) return urls;
    return undefined;
  }
  return expected === 1 && first ? [first] : undefined;
}

/** Spawns a fresh dev CA and waits (at most `maxSeconds`) for it to be ready. Never throws on slowness. */
export async function startDevCa(o: {
  n: number;
  t: number;
  maxSeconds: number;
  keepDir?: boolean;
  /** PostgreSQL instead of DIR/coordinator.db. */
  databaseUrl?: string;
  /** Coordinator replicas (`--coordinators`); more than one needs `databaseUrl`. */
  coordinators?: number;
}): Promise<DevCa> {
  const dir = join(mkdtempSync(join(tmpdir(), "tca-bench-")), "ca");
  if (!o.keepDir) removeOnExit(join(dir, ".."));
  const started = performance.now();
  const child = spawnGroup(process.execPath, [
    TCA_BIN,
    "dev",
    "--dir",
    dir,
    "--port",
    "0",
    "--custodians",
    String(o.n),
    "--threshold",
    String(o.t),
    ...(o.databaseUrl ? ["--database-url", o.databaseUrl] : []),
    ...(o.coordinators !== undefined ? ["--coordinators", String(o.coordinators)] : []),
  ]);
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-32_768);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `tca dev exited (${signal ?? code})`));

  const ca: DevCa = {
    n: o.n,
    t: o.t,
    dir,
    child,
    pid: child.pid!,
    urls: [],
    output: () => out,
    exited: () => exited,
    stop: async () => {
      await stopGroup(child);
      if (!o.keepDir) rmSync(join(dir, ".."), { recursive: true, force: true });
    },
  };
  const client = new HttpClient(2);
  const deadline = started + o.maxSeconds * 1000;
  try {
    while (performance.now() < deadline && !exited) {
      ca.url ??=
        /https?:\/\/127\.0\.0\.1:\d+/.exec(out)?.[0] ??
        (existsSync(join(dir, "coordinator.url"))
          ? readFileSync(join(dir, "coordinator.url"), "utf8").trim() || undefined
          : undefined);
      const urls = replicaUrls(dir, ca.url, o.coordinators ?? 1);
      if (ca.url && urls && (await allHealthy(client, urls))) {
        ca.urls = urls;
        ca.readySeconds = Number(((performance.now() - started) / 1000).toFixed(2));
        ca.token = readFileSync(join(dir, "requester.token"), "utf8").trim();
        const admin = readFileSync(join(dir, "admin.token"), "utf8").trim();
        for (const u of urls) adminTokens.set(u, admin);
        return ca;
      }
      await sleep(100);
    }
    ca.problem = exited ?? `not ready after ${o.maxSeconds} s`;
    return ca;
  } finally {
    client.close();
  }
}
