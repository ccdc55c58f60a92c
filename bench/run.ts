// `npm run bench` (docs/benchmarks.md): what a certificate costs, end to end, through the stable HTTP
// contract only, so it keeps working while the signing pipeline changes underneath. Sections:
//   (a) end to end: k concurrent requesters against a local t-of-n CA (`tca dev`, agents as child
//       processes) — certificates/s, latency percentiles, CPU ms per certificate of each process,
//       HTTP requests per certificate (from the coordinator's http_requests_total);
//   (b) the single-key floor (bench/floor.ts) driven by the same load generator, and the ratio;
//   (c) per operation: x509 rows here, threshold rows from bench/threshold.ts when it exists;
//   (d) time to a ready CA for several n (t = ⌈2n/3⌉);
//   (e) peak RSS (VmHWM) of every process;
//   (f) the same CA on PostgreSQL (a throwaway server the bench starts): one coordinator, then two
//       replicas in the dev process with the load spread round-robin over them.
// Every phase is bounded in time; slowness is reported, never waited out. Prints markdown, writes
// JSON (bench/results/latest.json or --out). Options: see `--help` and docs/benchmarks.md.
import "reflect-metadata";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { loadCaConfig } from "../src/config/load.ts";
import { generateCsrs } from "./lib/csr.ts";
import { adminHeaders, startDevCa, type DevCa } from "./lib/dev-ca.ts";
import { HttpClient, parsePrometheus, type Sample } from "./lib/http.ts";
import { runLoad, type LoadResult } from "./lib/load.ts";
import { postgresAvailable, startBenchPostgres, ticksToMs, type BenchPostgres } from "./lib/postgres.ts";
import {
  cpuMsBetween,
  installCleanup,
  peakRssMiB,
  removeOnExit,
  snapshot,
  spawnGroup,
  stopGroup,
  statusKiB,
  type ProcSnapshot,
} from "./lib/procs.ts";
import { recordsTable, table, type Cell } from "./lib/report.ts";
import { x509Rows, type OpRow } from "./lib/x509-ops.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const COORDINATOR = "tca dev (coordinator)";
const FLOOR = "floor server";

// ---- options -------------------------------------------------------------------------------

const HELP = `npm run bench -- [options]
  --quick                 smoke run: --certs 6 --concurrency 1,4 --pg-concurrency 4
                          --max-seconds 30 --dkg 3
  --certs N               certificates per phase at concurrency >= 64 (default 2000); lower
                          levels use min(N, 100) at 1 and min(N, 1000) up to 16
  --concurrency LIST      concurrent requesters per phase (default 1,16,64,256)
  --custodians N          end-to-end CA size (default 5)
  --threshold T           end-to-end CA threshold (default 3)
  --max-seconds S         bound on each load phase (default 120)
  --ready-seconds S       bound on each CA's start-up until healthy (default 180)
  --dkg LIST              n values for time-to-ready (default 3,5,10; add 20 for the full set;
                          "none" skips)
  --pg-concurrency LIST   concurrency for the PostgreSQL rows (f) (default 16,64)
  --skip LIST             sections to skip: e2e, pg, floor, ops, dkg
  --only LIST             run only these sections (e.g. --only pg); not with --skip
  --out FILE              JSON output (default bench/results/latest.json)
  --keep                  keep the CAs' temp directories (their logs) for inspection
`;

const { values: argv } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    certs: { type: "string" },
    concurrency: { type: "string" },
    custodians: { type: "string", default: "5" },
    threshold: { type: "string", default: "3" },
    "max-seconds": { type: "string" },
    "ready-seconds": { type: "string" },
    dkg: { type: "string" },
    "pg-concurrency": { type: "string" },
    skip: { type: "string", default: "" },
    only: { type: "string" },
    out: { type: "string" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (argv.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function intList(s: string, what: string): number[] {
  const out = s.split(",").map((x) => Number(x.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`${what}: positive integers, comma-separated`);
  return out;
}
function positive(s: string | undefined, fallback: number, what: string): number {
  if (s === undefined) return fallback;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number`);
  return n;
}

const quick = argv.quick;
const opts = {
  quick,
  certs: positive(argv.certs, quick ? 6 : 2000, "--certs"),
  concurrency: intList(argv.concurrency ?? (quick ? "1,4" : "1,16,64,256"), "--concurrency"),
  custodians: positive(argv.custodians, 5, "--custodians"),
  threshold: positive(argv.threshold, 3, "--threshold"),
  maxSeconds: positive(argv["max-seconds"], quick ? 30 : 120, "--max-seconds"),
  readySeconds: positive(argv["ready-seconds"], 180, "--ready-seconds"),
  dkg:
    (argv.dkg ?? (quick ? "3" : "3,5,10")) === "none"
      ? []
      : intList(argv.dkg ?? (quick ? "3" : "3,5,10"), "--dkg"),
  pgConcurrency: intList(argv["pg-concurrency"] ?? (quick ? "4" : "16,64"), "--pg-concurrency"),
  skip: new Set(argv.skip.split(",").filter(Boolean)),
  out: resolve(argv.out ?? join(HERE, "results", "latest.json")),
  keep: argv.keep,
};
const SECTIONS = ["e2e", "pg", "floor", "ops", "dkg"];
for (const s of opts.skip)
  if (!SECTIONS.includes(s)) throw new Error(`--skip: unknown section ${s} (${SECTIONS.join(", ")})`);
if (argv.only !== undefined) {
  if (opts.skip.size) throw new Error("--only and --skip: give one of them");
  const only = argv.only.split(",").filter(Boolean);
  for (const s of only)
    if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s} (${SECTIONS.join(", ")})`);
  for (const s of SECTIONS) if (!only.includes(s)) opts.skip.add(s);
}

/** Certificates for a phase at concurrency c. */
const certsAt = (c: number) =>
  Math.round(c === 1 ? Math.min(opts.certs, 100) : c <= 16 ? Math.min(opts.certs, 1000) : opts.certs);

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const r1 = (v: number) => Number(v.toFixed(1));

// ---- helpers -------------------------------------------------------------------------------

async function scrape(client: HttpClient, url: string): Promise<Sample[] | undefined> {
  try {
    const res = await client.request("GET", `${url}/metrics`, {
      headers: adminHeaders(url),
      signal: AbortSignal.timeout(10_000),
    });
    return res.status === 200 ? parsePrometheus(res.body) : undefined;
  } catch {
    return undefined;
  }
}

const REQUESTER_ROUTES = new Set(["POST /api/v1/requests", "GET /api/v1/requests/:id/certificate"]);
const BENCH_ROUTES = new Set(["GET /metrics", "GET /api/v1/health"]);

interface HttpCounts {
  total: number;
  /** Requests by everyone but the load generator and the bench's own scrapes: custodians' traffic. */
  custodians: number;
  byRoute: Record<string, number>;
}

function httpDelta(before: Sample[] | undefined, after: Sample[] | undefined): HttpCounts | undefined {
  const sum = (s: Sample[]) => {
    const m = new Map<string, number>();
    for (const x of s)
      if (x.name === "http_requests_total") {
        const k = `${x.labels.method} ${x.labels.route}`;
        m.set(k, (m.get(k) ?? 0) + x.value);
      }
    return m;
  };
  if (!before || !after) return undefined;
  const a = sum(after);
  if (a.size === 0) return undefined; // this coordinator does not count HTTP requests
  const b = sum(before);
  const byRoute: Record<string, number> = {};
  let total = 0;
  let custodians = 0;
  for (const [k, v] of a) {
    const d = v - (b.get(k) ?? 0);
    if (d <= 0) continue;
    byRoute[k] = d;
    total += d;
    if (!REQUESTER_ROUTES.has(k) && !BENCH_ROUTES.has(k)) custodians += d;
  }
  return { total, custodians, byRoute };
}

function backlog(samples: Sample[] | undefined): number | undefined {
  if (!samples) return undefined;
  const open = samples.filter(
    (s) => s.name === "tca_requests" && (s.labels.status === "pending" || s.labels.status === "signing"),
  );
  return open.length ? open.reduce((n, s) => n + s.value, 0) : undefined;
}

/** Waits (bounded) until the CA has no pending or signing request left from an earlier phase. */
async function drain(client: HttpClient, url: string, maxSeconds: number): Promise<number | undefined> {
  const deadline = performance.now() + maxSeconds * 1000;
  let left = backlog(await scrape(client, url));
  while (left && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    left = backlog(await scrape(client, url));
  }
  return left;
}

interface PhaseResult extends LoadResult {
  /** CPU ms per issued certificate, by process. */
  cpuMsPerCert: Record<string, number>;
  cpuMsPerCertTotal?: number;
  /** CPU ms by process over the whole phase (also when nothing was issued). */
  cpuMs: Record<string, number>;
  http?: HttpCounts & { perCert?: number; custodiansPerCert?: number };
  /**
   * With several replicas: HTTP requests each one answered during the phase ("replica 1", …), all
   * and the custodians' (agents') part; `byRoute` per replica is in the JSON.
   */
  httpByReplica?: Record<string, HttpCounts>;
  /** The PostgreSQL server's CPU (all its processes), not in `cpuMsPerCertTotal`: rows (f) only. */
  postgresCpuMs?: number;
  postgresCpuMsPerCert?: number;
  /** The bench process's own CPU (load generator), not counted in the CA's numbers. */
  loadGeneratorCpuMsPerCert?: number;
  backlogBefore?: number;
  backlogAfter?: number;
}

/** Sums the HTTP counts of several replicas (each keeps its own http_requests_total). */
function mergeHttp(counts: (HttpCounts | undefined)[]): HttpCounts | undefined {
  const known = counts.filter((c): c is HttpCounts => c !== undefined);
  if (known.length === 0) return undefined;
  const byRoute: Record<string, number> = {};
  for (const c of known) for (const [k, v] of Object.entries(c.byRoute)) byRoute[k] = (byRoute[k] ?? 0) + v;
  return {
    total: known.reduce((a, c) => a + c.total, 0),
    custodians: known.reduce((a, c) => a + c.custodians, 0),
    byRoute,
  };
}

async function phase(o: {
  /** The coordinator, or every replica of one CA (load round-robin, HTTP counts summed). */
  urls: string[];
  token: string;
  pid: number;
  rootLabel: string;
  csrs: string[];
  concurrency: number;
  client: HttpClient;
  metrics: boolean;
  postgres?: BenchPostgres;
}): Promise<PhaseResult> {
  const scrapeAll = () => Promise.all(o.urls.map((u) => scrape(o.client, u)));
  const before: ProcSnapshot = snapshot(o.pid, o.rootLabel);
  const pg0 = o.postgres?.cpuTicks();
  const self0 = process.cpuUsage();
  const m0 = o.metrics ? await scrapeAll() : undefined;
  const load = await runLoad({
    url: o.urls[0]!,
    urls: o.urls,
    token: o.token,
    csrs: o.csrs,
    concurrency: o.concurrency,
    maxSeconds: opts.maxSeconds,
  });
  const self = process.cpuUsage(self0);
  const after = snapshot(o.pid, o.rootLabel);
  const pg1 = o.postgres?.cpuTicks();
  const m1 = o.metrics ? await scrapeAll() : undefined;
  const cpu = cpuMsBetween(before, after);
  const cpuMs = Object.fromEntries([...cpu].map(([k, v]) => [k, r1(v)]));
  const per = load.issued > 0;
  const perReplica = o.urls.map((_, i) => httpDelta(m0?.[i], m1?.[i]));
  const http = mergeHttp(perReplica);
  const pgMs = pg0 !== undefined && pg1 !== undefined ? ticksToMs(pg1 - pg0) : undefined;
  return {
    ...load,
    cpuMs,
    cpuMsPerCert: per ? Object.fromEntries([...cpu].map(([k, v]) => [k, r1(v / load.issued)])) : {},
    cpuMsPerCertTotal: per ? r1([...cpu.values()].reduce((a, b) => a + b, 0) / load.issued) : undefined,
    http: http && {
      ...http,
      perCert: per ? r1(http.total / load.issued) : undefined,
      custodiansPerCert: per ? r1(http.custodians / load.issued) : undefined,
    },
    httpByReplica:
      o.urls.length > 1
        ? Object.fromEntries(
            perReplica.map((h, i) => [`replica ${i + 1}`, h ?? { total: 0, custodians: 0, byRoute: {} }]),
          )
        : undefined,
    postgresCpuMs: pgMs === undefined ? undefined : r1(pgMs),
    postgresCpuMsPerCert: pgMs !== undefined && per ? r1(pgMs / load.issued) : undefined,
    loadGeneratorCpuMsPerCert: per ? r1((self.user + self.system) / 1000 / load.issued) : undefined,
    // tca_requests is read from the shared database: any one replica tells.
    backlogBefore: backlog(m0?.[0]),
    backlogAfter: backlog(m1?.[0]),
  };
}

const mib = (m: Map<string, number>) => Object.fromEntries([...m].map(([k, v]) => [k, r1(v)]));

// ---- sections ------------------------------------------------------------------------------

interface E2eResult {
  /** "SQLite, 1 coordinator", "PostgreSQL, 2 replicas", … */
  setup: string;
  n: number;
  t: number;
  /** Coordinator replicas in the dev process (1 unless `--coordinators`). */
  coordinators: number;
  database: "sqlite" | "postgresql";
  readySeconds?: number;
  problem?: string;
  /** The dev process's last output, when it died during the run. */
  lastOutput?: string;
  warmup?: LoadResult;
  phases: PhaseResult[];
  peakRssMiB: Record<string, number>;
  /** Rows (f): the PostgreSQL server's processes, VmHWM (shared buffers count in each). */
  postgresPeakRssMiB?: { postmaster?: number; largestChild?: number; processes: number };
}

/**
 * One dev CA (t-of-n from the options), a warm-up, then one load phase per concurrency level. The
 * section letter only labels the log lines. With `postgres`, the CA keeps its data in a fresh
 * database of that server and runs `coordinators` replicas; the load goes to all of them.
 */
async function caRows(
  csrs: string[],
  o: {
    section: string;
    concurrency: number[];
    postgres?: BenchPostgres;
    coordinators?: number;
  },
): Promise<{ result: E2eResult; configText?: string; token?: string }> {
  const n = opts.custodians;
  const t = opts.threshold;
  const replicas = o.coordinators ?? 1;
  const database = o.postgres ? "postgresql" : "sqlite";
  const setup = `${o.postgres ? "PostgreSQL" : "SQLite"}, ${replicas} ${replicas > 1 ? "replicas" : "coordinator"}`;
  const tag = `(${o.section})`;
  const result: E2eResult = {
    setup,
    n,
    t,
    coordinators: replicas,
    database,
    phases: [],
    peakRssMiB: {},
  };
  let databaseUrl: string | undefined;
  if (o.postgres) {
    try {
      databaseUrl = await o.postgres.database();
    } catch (e) {
      result.problem = `could not create a database: ${(e as Error).message}`;
      log(`${tag} ${result.problem}`);
      return { result };
    }
  }
  log(`${tag} starting a ${t}-of-${n} dev CA (${setup})`);
  const ca = await startDevCa({
    n,
    t,
    maxSeconds: opts.readySeconds,
    keepDir: opts.keep,
    ...(databaseUrl ? { databaseUrl, coordinators: replicas } : {}),
  });
  result.readySeconds = ca.readySeconds;
  const client = new HttpClient(4);
  try {
    if (!ca.url || !ca.token || ca.readySeconds === undefined) {
      result.problem = ca.problem;
      result.lastOutput = ca.output().slice(-4000);
      log(`${tag} CA not ready: ${ca.problem}\n${result.lastOutput}`);
      return { result };
    }
    if (ca.urls.length !== replicas) {
      result.problem = `${ca.urls.length} coordinator URLs in coordinators.txt, expected ${replicas}`;
      log(`${tag} ${result.problem}`);
      return { result };
    }
    log(
      `${tag} ready in ${ca.readySeconds} s at ${ca.urls.join(", ")}; warming up (agents start after the DKG)`,
    );
    let used = 0;
    const take = (k: number) => csrs.slice(used, (used += k));
    result.warmup = await runLoad({
      url: ca.url,
      urls: ca.urls,
      token: ca.token,
      csrs: take(2),
      concurrency: 1,
      maxSeconds: opts.maxSeconds,
    });
    for (const c of o.concurrency) {
      if (ca.exited()) {
        result.problem = `${ca.exited()} during the run (its last output is in the JSON)`;
        result.lastOutput = ca.output().slice(-4000);
        log(`${tag} ${result.problem}:\n${result.lastOutput}`);
        break;
      }
      const left = await drain(client, ca.url, opts.maxSeconds);
      if (left) log(`${tag} ${left} requests still open from the previous phase`);
      log(`${tag} concurrency ${c}: ${certsAt(c)} certificates, at most ${opts.maxSeconds} s`);
      const p = await phase({
        urls: ca.urls,
        token: ca.token,
        pid: ca.pid,
        rootLabel: COORDINATOR,
        csrs: take(certsAt(c)),
        concurrency: c,
        client,
        metrics: true,
        ...(o.postgres ? { postgres: o.postgres } : {}),
      });
      log(
        `${tag} concurrency ${c}: ${p.issued}/${p.target} issued in ${p.seconds} s, ${p.certsPerSecond}/s` +
          (p.timedOut ? " (phase time limit reached)" : ""),
      );
      result.phases.push(p);
    }
    result.peakRssMiB = mib(peakRssMiB(ca.pid, COORDINATOR));
    if (o.postgres) result.postgresPeakRssMiB = o.postgres.peakRssMiB();
    return {
      result,
      configText: readFileSync(join(ca.dir, "ca-config.yaml"), "utf8"),
      token: ca.token,
    };
  } finally {
    client.close();
    await ca.stop();
  }
}

async function endToEnd(csrs: string[]): Promise<{ result: E2eResult; configText?: string; token?: string }> {
  return caRows(csrs, { section: "a", concurrency: opts.concurrency });
}

interface PgResult {
  /** Why the section did not run (PostgreSQL not installed). */
  problem?: string;
  rows: E2eResult[];
}

/**
 * (f): two dev CAs one after the other, each on a throwaway PostgreSQL server of its own (so the
 * second starts from an empty server and each server's peak RSS is its own): one coordinator,
 * then two replicas. The same t-of-n, CSRs and phase sizes as (a).
 */
async function postgresRows(csrs: string[]): Promise<PgResult> {
  if (!postgresAvailable()) {
    const problem = "PostgreSQL is not installed (Debian package postgresql): rows (f) skipped";
    log(`(f) ${problem}`);
    return { problem, rows: [] };
  }
  const out: PgResult = { rows: [] };
  for (const coordinators of [1, 2]) {
    log("(f) starting a throwaway PostgreSQL server");
    let server: BenchPostgres;
    try {
      server = await startBenchPostgres();
    } catch (e) {
      const problem = `PostgreSQL did not start: ${(e as Error).message}`;
      log(`(f) ${problem}`);
      out.rows.push({
        setup: `PostgreSQL, ${coordinators} ${coordinators > 1 ? "replicas" : "coordinator"}`,
        n: opts.custodians,
        t: opts.threshold,
        coordinators,
        database: "postgresql",
        problem,
        phases: [],
        peakRssMiB: {},
      });
      continue;
    }
    if (server.pid === undefined) log("(f) postmaster not found in /proc: no PostgreSQL CPU/RSS numbers");
    try {
      const { result } = await caRows(csrs, {
        section: "f",
        concurrency: opts.pgConcurrency,
        postgres: server,
        coordinators,
      });
      out.rows.push(result);
    } finally {
      await server.stop();
    }
  }
  return out;
}

/** The dev CA's config (when the end-to-end CA ran), else one derived from ca-config/ca.yaml as tca dev does. */
function floorConfig(
  dir: string,
  fromDev?: { configText?: string; token?: string },
): { path: string; token: string } {
  const path = join(dir, "ca-config.yaml");
  if (fromDev?.configText && fromDev.token) {
    writeFileSync(path, fromDev.configText);
    return { path, token: fromDev.token };
  }
  const token = randomBytes(32).toString("base64url");
  const raw = parseYaml(readFileSync(join(ROOT, "ca-config", "ca.yaml"), "utf8")) as Record<string, unknown>;
  raw.requesters = [
    {
      name: "dev",
      tokenSha256: createHash("sha256").update(token).digest("hex"),
      profiles: ["server", "client"],
      allowedNames: ["*"],
    },
  ];
  writeFileSync(path, toYaml(raw));
  return { path, token };
}

interface FloorResult {
  phases: PhaseResult[];
  peakRssMiB?: number;
  problem?: string;
}

async function floor(csrs: string[], cfg: { path: string; token: string }): Promise<FloorResult> {
  log("(b) starting the single-key floor server");
  const child = spawnGroup(process.execPath, ["--import", "tsx", join(HERE, "floor-server.ts"), cfg.path]);
  const out: FloorResult = { phases: [] };
  const client = new HttpClient(2);
  try {
    const url = await new Promise<string>((res, rej) => {
      let buf = "";
      let err = "";
      const timer = setTimeout(
        () => rej(new Error(`floor server did not start: ${err.slice(-500)}`)),
        60_000,
      );
      child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
      child.stdout!.on("data", (b: Buffer) => {
        buf += b.toString();
        const line = buf.split("\n").find((l) => l.startsWith("{"));
        if (line) {
          clearTimeout(timer);
          res((JSON.parse(line) as { url: string }).url);
        }
      });
      child.once("exit", (code) => rej(new Error(`floor server exited (${code}): ${err.slice(-500)}`)));
    });
    // Warm-up so the JIT has seen every path once before timing.
    await runLoad({ url, token: cfg.token, csrs: csrs.slice(0, 50), concurrency: 4, maxSeconds: 30 });
    for (const c of opts.concurrency) {
      const p = await phase({
        urls: [url],
        token: cfg.token,
        pid: child.pid!,
        rootLabel: FLOOR,
        csrs: csrs.slice(0, certsAt(c)),
        concurrency: c,
        client,
        metrics: false,
      });
      log(`(b) concurrency ${c}: ${p.issued}/${p.target} issued in ${p.seconds} s, ${p.certsPerSecond}/s`);
      out.phases.push(p);
    }
    const kib = statusKiB(child.pid!, "VmHWM");
    out.peakRssMiB = kib === undefined ? undefined : r1(kib / 1024);
  } catch (e) {
    out.problem = (e as Error).message;
    log(`(b) ${out.problem}`);
  } finally {
    client.close();
    await stopGroup(child);
  }
  return out;
}

interface OpsResult {
  x509: OpRow[];
  threshold?: Record<string, unknown>[];
  thresholdNote?: string;
}

async function operations(configPath: string): Promise<OpsResult> {
  log("(c) per-operation rows");
  const out: OpsResult = { x509: x509Rows(loadCaConfig(configPath), opts.quick) };
  // HOOK (section (c)): bench/threshold.ts (another change) exports thresholdRows(), the FROST
  // rows for t = 2, 3, 5, 7 on both backends. Loaded by path so this file builds without it.
  const thresholdModule = join(HERE, "threshold.ts");
  if (!existsSync(thresholdModule)) {
    out.thresholdNote = "bench/threshold.ts is not there yet: no threshold rows";
    return out;
  }
  try {
    const mod = (await import(thresholdModule)) as {
      thresholdRows?: (o?: { quick?: boolean }) => unknown;
    };
    if (typeof mod.thresholdRows !== "function") {
      out.thresholdNote = "bench/threshold.ts exports no thresholdRows()";
      return out;
    }
    const rows = await mod.thresholdRows({ quick: opts.quick });
    if (!Array.isArray(rows)) throw new Error("thresholdRows() did not return an array");
    out.threshold = rows as Record<string, unknown>[];
  } catch (e) {
    out.thresholdNote = `bench/threshold.ts failed: ${(e as Error).message}`;
  }
  return out;
}

interface DkgRow {
  n: number;
  t: number;
  readySeconds?: number;
  firstCertificateSeconds?: number;
  problem?: string;
  peakRssMiB: Record<string, number>;
}

async function timeToReady(csrs: string[]): Promise<DkgRow[]> {
  const rows: DkgRow[] = [];
  for (const [i, n] of opts.dkg.entries()) {
    const t = Math.max(2, Math.ceil((2 * n) / 3));
    log(`(d) ${t}-of-${n}: time to a ready CA (at most ${opts.readySeconds} s)`);
    const ca: DevCa = await startDevCa({ n, t, maxSeconds: opts.readySeconds, keepDir: opts.keep });
    const row: DkgRow = { n, t, readySeconds: ca.readySeconds, peakRssMiB: {} };
    try {
      if (ca.url && ca.token && ca.readySeconds !== undefined) {
        // Health says the key exists; the first certificate also needs the agents up.
        const first = await runLoad({
          url: ca.url,
          token: ca.token,
          csrs: csrs.slice(i, i + 1),
          concurrency: 1,
          maxSeconds: opts.maxSeconds,
        });
        if (first.issued === 1 && first.latencyMs.p50 !== undefined)
          row.firstCertificateSeconds = r1(ca.readySeconds + first.latencyMs.p50 / 1000);
        else row.problem = `no certificate within ${opts.maxSeconds} s of ready`;
      } else {
        row.problem = ca.problem;
      }
      row.peakRssMiB = mib(peakRssMiB(ca.pid, COORDINATOR));
    } finally {
      await ca.stop();
    }
    log(`(d) ${t}-of-${n}: ${row.readySeconds ?? "–"} s${row.problem ? ` (${row.problem})` : ""}`);
    rows.push(row);
  }
  return rows;
}

// ---- output --------------------------------------------------------------------------------

function machine() {
  let sodium = "not loadable";
  try {
    createRequire(import.meta.url)("sodium-native");
    sodium = "loadable";
  } catch {
    // pure-JS only
  }
  let commit = "unknown";
  try {
    commit = readFileSync(join(ROOT, ".git", "HEAD"), "utf8").trim();
    if (commit.startsWith("ref: ")) commit = readFileSync(join(ROOT, ".git", commit.slice(5)), "utf8").trim();
  } catch {
    // not a git checkout
  }
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: r1(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    commit: commit.slice(0, 12),
    frostBackend: process.env.TCA_FROST_BACKEND ?? "the CA's default",
    sodiumNative: sodium,
  };
}

const PHASE_HEADERS = [
  "k",
  "issued",
  "failed",
  "stuck",
  "s",
  "certs/s",
  "p50 ms",
  "p95 ms",
  "p99 ms",
  "CPU ms/cert",
  "coord.",
  "per agent",
  "HTTP/cert",
  "agent HTTP/cert",
  "notes",
];

/** The cells of one load phase of a dev CA, under PHASE_HEADERS ("notes" last). */
function phaseCells(p: PhaseResult): Cell[] {
  const agents = Object.entries(p.cpuMsPerCert).filter(([k]) => k !== COORDINATOR);
  return [
    p.concurrency,
    `${p.issued}/${p.target}`,
    p.failed,
    p.stuck,
    p.seconds,
    p.certsPerSecond,
    p.latencyMs.p50,
    p.latencyMs.p95,
    p.latencyMs.p99,
    p.cpuMsPerCertTotal,
    p.cpuMsPerCert[COORDINATOR],
    agents.length ? r1(agents.reduce((a, [, v]) => a + v, 0) / agents.length) : undefined,
    p.http?.perCert,
    p.http?.custodiansPerCert,
    [
      p.timedOut ? "time limit" : "",
      p.backlogBefore ? `${p.backlogBefore} open before` : "",
      Object.entries(p.errors)
        .map(([k, v]) => `${k}×${v}`)
        .join(" "),
    ]
      .filter(Boolean)
      .join("; "),
  ];
}

/** The largest VmHWM among the PostgreSQL server's processes (each counts the shared buffers it touched). */
function pgPeak(e: E2eResult): number | undefined {
  const r = e.postgresPeakRssMiB;
  const v = [r?.postmaster, r?.largestChild].filter((x): x is number => x !== undefined);
  return v.length ? Math.max(...v) : undefined;
}

/**
 * (f): the PostgreSQL rows beside (a)'s SQLite row at the same k, in (a)'s columns plus the
 * PostgreSQL server's CPU and the peak RSS of the coordinator process and of PostgreSQL.
 */
function renderPg(pg: PgResult, sqlite: E2eResult | undefined): string {
  let s = `## (f) PostgreSQL: 1 coordinator, then 2 replicas (load round-robin over both)

`;
  if (pg.problem)
    return (
      s +
      `${pg.problem}.

`
    );
  const first = pg.rows[0];
  s += `${first ? `${first.t}-of-${first.n}` : ""} \`tca dev --database-url <fresh database> --coordinators R\` `;
  s += `on a throwaway PostgreSQL server started by the bench. "CPU ms/cert" is the dev process (all `;
  s += `its coordinators) and the agents, as in (a); "PostgreSQL" is the server's own CPU, not in it.\n\n`;
  for (const e of pg.rows)
    s +=
      `- ${e.setup}: ready after ${e.readySeconds ?? "–"} s${e.problem ? ` — ${e.problem}` : ""}` +
      (e.warmup ? `; warm-up ${e.warmup.issued}/${e.warmup.target}` : "") +
      ".\n";
  s += "\n";
  const headers = [
    "setup",
    ...PHASE_HEADERS.slice(0, -1),
    "PostgreSQL ms/cert",
    "coord. peak MiB",
    "PostgreSQL peak MiB",
    "notes",
  ];
  const rows: Cell[][] = [];
  const ks = [...new Set(pg.rows.flatMap((e) => e.phases.map((p) => p.concurrency)))];
  for (const k of ks) {
    const sources: [string, E2eResult | undefined][] = [
      ["SQLite, 1 coordinator (a)", sqlite],
      ...pg.rows.map((e) => [e.setup, e] as [string, E2eResult]),
    ];
    for (const [label, e] of sources) {
      const p = e?.phases.find((x) => x.concurrency === k);
      if (!e || !p) continue;
      const cells = phaseCells(p);
      const byReplica = p.httpByReplica ? Object.values(p.httpByReplica) : undefined;
      const replicas = byReplica
        ? `HTTP by replica ${byReplica.map((h) => h.total).join(" / ")}` +
          ` (agents ${byReplica.map((h) => h.custodians).join(" / ")})`
        : "";
      rows.push([
        label,
        ...cells.slice(0, -1),
        p.postgresCpuMsPerCert,
        e.peakRssMiB[COORDINATOR],
        pgPeak(e),
        [cells.at(-1), replicas].filter(Boolean).join("; "),
      ]);
    }
  }
  if (rows.length) s += table(headers, rows);
  return s + "\n";
}

function render(r: {
  machine: ReturnType<typeof machine>;
  options: Record<string, unknown>;
  e2e?: E2eResult;
  floor?: FloorResult;
  ops?: OpsResult;
  dkg?: DkgRow[];
  pg?: PgResult;
  benchPeakRssMiB: number;
}): string {
  const m = r.machine;
  let s = `# tca bench — ${m.date}\n\n`;
  s += `${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, node ${m.node}, Linux ${m.kernel}, commit ${m.commit}; `;
  s += `FROST backend: ${m.frostBackend} (sodium-native ${m.sodiumNative} here).\n\n`;

  if (r.e2e) {
    const e = r.e2e;
    s += `## (a) End to end: ${e.t}-of-${e.n} \`tca dev\`, agents in separate processes\n\n`;
    s += `Ready (health 200, CA key and root certificate served) after ${e.readySeconds ?? "–"} s${e.problem ? ` — ${e.problem}` : ""}.`;
    if (e.warmup)
      s +=
        ` Warm-up (not in the rows below): ${e.warmup.issued}/${e.warmup.target} certificates` +
        (e.warmup.latencyMs.max !== undefined
          ? `, slowest ${(e.warmup.latencyMs.max / 1000).toFixed(1)} s.`
          : ".");
    s += "\n\n";
    const rows = e.phases.map((p) => phaseCells(p));
    if (rows.length) s += table(PHASE_HEADERS, rows);
    const labels = [...new Set(e.phases.flatMap((p) => Object.keys(p.cpuMsPerCert)))];
    if (labels.length) {
      s += `\nCPU ms per certificate by process:\n\n`;
      s += table(
        ["process", ...e.phases.map((p) => `k=${p.concurrency}`)],
        labels.map((l) => [l, ...e.phases.map((p) => p.cpuMsPerCert[l])]),
      );
    }
    const routes = [...new Set(e.phases.flatMap((p) => Object.keys(p.http?.byRoute ?? {})))].sort();
    if (routes.length) {
      s += `\nHTTP requests per certificate by route (http_requests_total):\n\n`;
      s += table(
        ["route", ...e.phases.map((p) => `k=${p.concurrency}`)],
        routes.map((rt) => [
          rt,
          ...e.phases.map((p) =>
            p.issued && p.http?.byRoute[rt] ? r1(p.http.byRoute[rt] / p.issued) : undefined,
          ),
        ]),
      );
    }
    s += "\n";
  }

  if (r.floor) {
    s += `## (b) Single-key floor: same HTTP path, one in-process Ed25519 key (bench/floor.ts)\n\n`;
    if (r.floor.problem) s += `Floor failed: ${r.floor.problem}\n\n`;
    s += table(
      [
        "k",
        "issued",
        "s",
        "certs/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "CPU ms/cert",
        "(a)/(b) certs/s",
        "floor faster by",
      ],
      r.floor.phases.map((f) => {
        const a = r.e2e?.phases.find((p) => p.concurrency === f.concurrency);
        return [
          f.concurrency,
          `${f.issued}/${f.target}`,
          f.seconds,
          f.certsPerSecond,
          f.latencyMs.p50,
          f.latencyMs.p95,
          f.latencyMs.p99,
          f.cpuMsPerCertTotal,
          a && f.certsPerSecond ? (a.certsPerSecond / f.certsPerSecond).toPrecision(3) : undefined,
          a?.certsPerSecond ? `${Math.round(f.certsPerSecond / a.certsPerSecond)}×` : undefined,
        ];
      }),
      2,
    );
    s += "\n";
  }

  if (r.ops) {
    s += `## (c) Per operation (in-process, one core)\n\n`;
    s += table(
      ["operation", "iterations", "ms/op", "ops/s"],
      r.ops.x509.map((o) => [o.operation, o.iterations, o.msPerOp, o.opsPerSecond]),
      3,
    );
    if (r.ops.threshold?.length) s += `\nThreshold (bench/threshold.ts):\n\n${recordsTable(r.ops.threshold)}`;
    if (r.ops.thresholdNote) s += `\n${r.ops.thresholdNote}.\n`;
    s += "\n";
  }

  if (r.dkg) {
    s += `## (d) Time to a ready CA (\`tca dev\` spawn → health 200; t = ⌈2n/3⌉)\n\n`;
    s += table(
      ["n", "t", "ready s", "first cert s", "coord. peak MiB", "max agent peak MiB", "notes"],
      r.dkg.map((d) => {
        const agents = Object.entries(d.peakRssMiB)
          .filter(([k]) => k !== COORDINATOR)
          .map(([, v]) => v);
        return [
          d.n,
          d.t,
          d.readySeconds,
          d.firstCertificateSeconds,
          d.peakRssMiB[COORDINATOR],
          agents.length ? Math.max(...agents) : undefined,
          d.problem,
        ];
      }),
    );
    s += "\n";
  }

  s += `## (e) Peak RSS (VmHWM, read at the end of each phase before stopping the process)\n\n`;
  const rss: [string, number | undefined][] = [
    ...Object.entries(r.e2e?.peakRssMiB ?? {}).map(([k, v]) => [`(a) ${k}`, v] as [string, number]),
    ...(r.floor ? [["(b) floor server", r.floor.peakRssMiB] as [string, number | undefined]] : []),
    ...(r.pg?.rows ?? []).flatMap((e) => {
      const agents = Object.entries(e.peakRssMiB)
        .filter(([k]) => k !== COORDINATOR)
        .map(([, v]) => v);
      return [
        [`(f) ${e.setup}: ${COORDINATOR}`, e.peakRssMiB[COORDINATOR]],
        [`(f) ${e.setup}: largest agent`, agents.length ? Math.max(...agents) : undefined],
        [`(f) ${e.setup}: largest PostgreSQL process`, pgPeak(e)],
      ] as [string, number | undefined][];
    }),
    ["bench process (load generator)", r.benchPeakRssMiB],
  ];
  s += table(["process", "peak RSS MiB"], rss);
  if (r.e2e && Object.keys(r.e2e.peakRssMiB).length)
    s += `\nSum over the CA's processes: ${r1(Object.values(r.e2e.peakRssMiB).reduce((a, b) => a + b, 0))} MiB.\n`;
  if (r.pg) s += "\n" + renderPg(r.pg, r.e2e);
  return s;
}

// ---- main ----------------------------------------------------------------------------------

installCleanup();
const started = performance.now();
const work = mkdtempSync(join(tmpdir(), "tca-bench-run-"));
removeOnExit(work);
try {
  const caPhases = opts.skip.has("e2e") ? [] : opts.concurrency;
  const need = 2 + caPhases.reduce((n, c) => n + certsAt(c), 0);
  const pgPhases = opts.skip.has("pg") ? [] : opts.pgConcurrency;
  const pgNeed = 2 + pgPhases.reduce((n, c) => n + certsAt(c), 0);
  const floorNeed = Math.max(50, ...opts.concurrency.map(certsAt));
  const total = Math.max(need, pgNeed, floorNeed) + opts.dkg.length;
  log(`generating ${total} CSRs`);
  const t0 = performance.now();
  const csrs = generateCsrs(0, total);
  log(`… in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const e2e = opts.skip.has("e2e") ? undefined : await endToEnd(csrs);
  const pg = opts.skip.has("pg") ? undefined : await postgresRows(csrs);
  const cfg = floorConfig(work, e2e);
  const floorResult = opts.skip.has("floor") ? undefined : await floor(csrs, cfg);
  const ops = opts.skip.has("ops") ? undefined : await operations(cfg.path);
  const dkg =
    opts.skip.has("dkg") || opts.dkg.length === 0
      ? undefined
      : await timeToReady(csrs.slice(-opts.dkg.length));

  const result = {
    machine: machine(),
    options: { ...opts, skip: [...opts.skip] },
    e2e: e2e?.result,
    floor: floorResult,
    ops,
    dkg,
    pg,
    benchPeakRssMiB: r1((statusKiB(process.pid, "VmHWM") ?? 0) / 1024),
    totalSeconds: r1((performance.now() - started) / 1000),
  };
  process.stdout.write(render(result) + `\nTotal bench time ${result.totalSeconds} s.\n`);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2) + "\n");
  log(`JSON written to ${opts.out}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
