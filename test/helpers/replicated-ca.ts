// A CA whose coordinators are separate `tca serve` processes on one PostgreSQL database, with the
// custodian agents as processes that know every replica's URL: the set-up the replica, crash and
// availability tests share. The CA is made once by `tca dev --database-url … --no-agents` (the DKG
// and the root, as a user would), which is then stopped; replicas and agents are started, killed
// and restarted one by one on fixed ports, so clients' URL lists stay valid across restarts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { custodianNames, layoutOf, writeDevPolicies, type LocalCaLayout } from "../../src/dev/local-ca.ts";
import type { Proc, Sandbox } from "./processes.ts";
import { freePort } from "./postgres.ts";

export interface ReplicatedCa {
  dir: string;
  databaseUrl: string;
  layout: LocalCaLayout;
  token: string;
  adminToken: string;
  rootPath: string;
  /** One URL per replica (fixed: a restarted replica comes back on its port). */
  urls: string[];
  replicas: (Proc | null)[];
  agents: Map<string, Proc>;
  /** Starts replica i (`tca serve`), with extra environment (e.g. TCA_CRASH_AT); resolves once it listens. */
  startReplica(i: number, env?: NodeJS.ProcessEnv): Promise<Proc>;
  /** Stops replica i (SIGKILL by default) and waits for it to be gone. */
  stopReplica(i: number, signal?: NodeJS.Signals): Promise<void>;
  startAgent(name: string): Promise<Proc>;
  stopAgent(name: string, signal?: NodeJS.Signals): Promise<void>;
}

export async function startReplicatedCa(
  sb: Sandbox,
  o: {
    databaseUrl: string;
    custodians?: number;
    threshold?: number;
    replicas?: number;
    shareTimeout?: number;
  },
): Promise<ReplicatedCa> {
  const n = o.custodians ?? 5;
  const dir = join(sb.tempDir("tca-replicas-"), "ca");
  const dev = sb.tca([
    "dev",
    "--dir",
    dir,
    "--port",
    "0",
    "--custodians",
    String(n),
    "--threshold",
    String(o.threshold ?? 3),
    "--database-url",
    o.databaseUrl,
    "--no-agents",
  ]);
  await dev.waitFor(/tca dev: ready/, 120_000);
  dev.kill("SIGTERM");
  await dev.exited;

  const layout = layoutOf(dir, custodianNames(n));
  writeDevPolicies(layout);
  const urls: string[] = [];
  for (let i = 0; i < (o.replicas ?? 2); i++) urls.push(`http://127.0.0.1:${await freePort()}`);
  const replicas: (Proc | null)[] = urls.map(() => null);
  const agents = new Map<string, Proc>();
  const gone = async (p: Proc | null | undefined, signal: NodeJS.Signals) => {
    if (!p) return;
    p.kill(signal);
    // A clean stop takes a moment; one that hangs is a bug this file reports, then ends it anyway.
    const late = setTimeout(() => {
      console.error(`process did not stop on ${signal} within 15 s; killing it:\n${p.output.slice(-2000)}`);
      p.kill("SIGKILL");
    }, 15_000);
    await p.exited;
    clearTimeout(late);
  };

  const ca: ReplicatedCa = {
    dir,
    databaseUrl: o.databaseUrl,
    layout,
    token: readFileSync(layout.requesterTokenPath, "utf8").trim(),
    adminToken: readFileSync(layout.adminTokenPath, "utf8").trim(),
    rootPath: join(dir, "root.pem"),
    urls,
    replicas,
    agents,
    async startReplica(i, env = {}) {
      const port = new URL(urls[i]!).port;
      const proc = sb.tca(
        [
          "serve",
          "--config",
          layout.configPath,
          "--database-url",
          o.databaseUrl,
          "--port",
          port,
          "--share-timeout",
          String(o.shareTimeout ?? 5),
          // The tests count every request and signing job: no OCSP responder certificate among them.
          "--no-ocsp",
        ],
        env,
      );
      await proc.waitFor(/listening on http/);
      replicas[i] = proc;
      return proc;
    },
    async stopReplica(i, signal = "SIGKILL") {
      await gone(replicas[i], signal);
      replicas[i] = null;
    },
    async startAgent(name) {
      const c = layout.custodians.find((x) => x.name === name);
      if (!c) throw new Error(`no custodian ${name}`);
      const proc = sb.tca(
        [
          "custodian",
          "agent",
          "--home",
          c.home,
          "--coordinator",
          urls.join(","),
          "--passphrase-file",
          c.passphraseFile,
        ],
        { TCA_LOG_LEVEL: "info" },
      );
      agents.set(name, proc);
      await proc.waitFor(/agent started|"msg":"started/);
      return proc;
    },
    async stopAgent(name, signal = "SIGKILL") {
      await gone(agents.get(name), signal);
      agents.delete(name);
    },
  };
  for (let i = 0; i < urls.length; i++) await ca.startReplica(i);
  await Promise.all(layout.custodians.map((c) => ca.startAgent(c.name)));
  const root = await fetch(`${urls[0]}/ca.pem`);
  const { writeFileSync } = await import("node:fs");
  writeFileSync(ca.rootPath, await root.text());
  return ca;
}
