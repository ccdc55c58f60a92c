// Debian's pebble-challtestsrv as a test DNS server on loopback: every name resolves to 127.0.0.1
// (no AAAA unless added), and TXT/A/AAAA records are set through its management API. Only its DNS
// server runs (its own HTTP-01/TLS-ALPN-01 responders are off: acme-responders.ts plays those).
// The resolver string to give tca (and lego's --dns.resolvers) is `resolver`.
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { Proc, type Sandbox } from "./processes.ts";

export const CHALLTESTSRV_BIN = "/usr/bin/pebble-challtestsrv";

export interface ChallTestSrv {
  /** "127.0.0.1:PORT" of its DNS server (UDP and TCP). */
  resolver: string;
  /** "http://127.0.0.1:PORT" of its management API. */
  managementUrl: string;
  proc: Proc;
  /** Adds a TXT record at `host` (a name; made absolute here). Values accumulate until clearTxt. */
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  /** Answers A queries for `host` with `addresses` instead of the default 127.0.0.1. */
  addA(host: string, addresses: string[]): Promise<void>;
  clearA(host: string): Promise<void>;
  addAaaa(host: string, addresses: string[]): Promise<void>;
  clearAaaa(host: string): Promise<void>;
  /** Answers every query for `host` with SERVFAIL. */
  setServfail(host: string): Promise<void>;
  stop(): Promise<void>;
}

const fqdn = (host: string): string => (host.endsWith(".") ? host : `${host}.`);

/** A port free for both UDP and TCP on 127.0.0.1 (a DNS server listens on both). */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const udp = createSocket("udp4");
    const port = await new Promise<number>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, "127.0.0.1", () => resolve(udp.address().port));
    });
    const tcp = createServer();
    const tcpFree = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise<void>((r) => (tcpFree ? tcp.close(() => r()) : r()));
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpFree) return port;
  }
  throw new Error("no port free for both UDP and TCP on 127.0.0.1");
}

async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * Starts pebble-challtestsrv on free loopback ports and waits until its management API answers.
 * With a Sandbox, its cleanup() also kills the process.
 */
export async function startChallTestSrv(sb?: Sandbox): Promise<ChallTestSrv> {
  for (let attempt = 1; ; attempt++) {
    const dnsPort = await freeDnsPort();
    const mgmtPort = await freeTcpPort();
    const child = spawn(
      CHALLTESTSRV_BIN,
      [
        ["-dns01", `127.0.0.1:${dnsPort}`],
        ["-management", `127.0.0.1:${mgmtPort}`],
        ["-http01", ""],
        ["-https01", ""],
        ["-tlsalpn01", ""],
        ["-defaultIPv4", "127.0.0.1"],
        ["-defaultIPv6", ""],
      ].flat(),
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const proc = new Proc(child);
    sb?.procs.push(proc);
    const managementUrl = `http://127.0.0.1:${mgmtPort}`;
    try {
      // The ports were free a moment ago; another process may have taken one since: try again.
      await proc.waitFor(/Starting management server/, 10_000);
      await untilAnswers(managementUrl, proc);
    } catch (e) {
      proc.kill("SIGKILL");
      await proc.exited;
      if (attempt >= 3) throw e;
      continue;
    }
    const post = async (path: string, body: object): Promise<void> => {
      const res = await fetch(`${managementUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`challtestsrv ${path}: ${res.status} ${await res.text()}`);
    };
    return {
      resolver: `127.0.0.1:${dnsPort}`,
      managementUrl,
      proc,
      setTxt: (host, value) => post("/set-txt", { host: fqdn(host), value }),
      clearTxt: (host) => post("/clear-txt", { host: fqdn(host) }),
      addA: (host, addresses) => post("/add-a", { host: fqdn(host), addresses }),
      clearA: (host) => post("/clear-a", { host: fqdn(host) }),
      addAaaa: (host, addresses) => post("/add-aaaa", { host: fqdn(host), addresses }),
      clearAaaa: (host) => post("/clear-aaaa", { host: fqdn(host) }),
      setServfail: (host) => post("/set-servfail", { host: fqdn(host) }),
      stop: async () => {
        proc.kill();
        await proc.exited;
      },
    };
  }
}

/** Waits until the management API answers HTTP (any status: it has no route at /). */
async function untilAnswers(url: string, proc: Proc): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await fetch(`${url}/`);
      return;
    } catch {
      if (proc.child.exitCode !== null) throw new Error(`pebble-challtestsrv exited:\n${proc.output}`);
      if (Date.now() > deadline)
        throw new Error(`pebble-challtestsrv did not answer at ${url}:\n${proc.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
