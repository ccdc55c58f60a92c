// A liveness regression (docs/signing-pipeline.md, Liveness): a burst of requests submitted at once to a
// 3-of-5 CA whose agents run as separate processes is issued in full — no stall, no request stuck, no pool
// error in any agent's log — and every certificate verifies against the root (openssl).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "../helpers/processes.ts";
import { startDevCa, type DevCa } from "../helpers/dev-ca.ts";
import { openssl } from "../helpers/openssl.ts";
import { generateCsrs } from "../../bench/lib/csr.ts";

const BURST = 300;
const sb = new Sandbox();
let ca: DevCa;

beforeAll(async () => {
  ca = await startDevCa(sb, { custodians: 5, threshold: 3, agents: true });
}, 120_000);
afterAll(() => sb.cleanup());

async function submit(csr: string): Promise<string> {
  const res = await fetch(`${ca.url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${ca.token}`, "content-type": "application/json" },
    body: JSON.stringify({ csr, profile: "server" }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function certificate(id: string, deadline: number): Promise<string> {
  while (Date.now() < deadline) {
    const res = await fetch(`${ca.url}/api/v1/requests/${id}/certificate?wait=30`, {
      headers: { authorization: `Bearer ${ca.token}` },
    });
    if (res.ok) return res.text();
    const problem = (await res.json()) as { requestStatus?: string };
    if (problem.requestStatus !== "pending" && problem.requestStatus !== "signing")
      throw new Error(`request ${id} ended ${problem.requestStatus}`);
  }
  throw new Error(`request ${id} not issued in time`);
}

describe("a burst of requests", () => {
  it(`issues all ${BURST} requests submitted at once, with no pool error in any agent log`, async () => {
    const csrs = generateCsrs(0, BURST, "burst");
    const ids = await Promise.all(csrs.map(submit));
    const deadline = Date.now() + 240_000;
    const chains = await Promise.all(ids.map((id) => certificate(id, deadline)));
    expect(chains).toHaveLength(BURST);

    // Spot-check with openssl: leaf first, then the root, and it verifies.
    const work = sb.tempDir();
    for (const i of [0, Math.floor(BURST / 2), BURST - 1]) {
      const path = join(work, `c${i}.pem`);
      writeFileSync(path, chains[i]!);
      expect(openssl(["verify", "-CAfile", ca.rootPath, path])).toMatch(/: OK/);
      expect(openssl(["x509", "-in", path, "-noout", "-subject"])).toContain(`svc-${i}.burst.internal`);
    }

    const metrics = await (
      await fetch(`${ca.url}/metrics`, { headers: { authorization: `Bearer ${ca.adminToken}` } })
    ).text();
    expect(metrics).toMatch(new RegExp(`tca_certificates_issued_total\\{profile="server"\\} ${BURST}\\b`));
    const logs = readdirSync(join(ca.dir, "logs"))
      .filter((f) => f.endsWith("-agent.log"))
      .map((f) => readFileSync(join(ca.dir, "logs", f), "utf8"));
    expect(logs).toHaveLength(5);
    for (const log of logs) {
      expect(log).not.toMatch(/pool is full/);
      expect(log).not.toMatch(/"level":50/); // no error-level line
      expect(log).not.toMatch(/exchange failed/);
    }
  }, 300_000);
});

/** Processes whose command line mentions `text` (from /proc). */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(text) && readFileSync(`/proc/${entry}/stat`, "utf8").includes(") Z ") === false)
        out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe("tca dev's agents", () => {
  it("stop when tca dev is SIGKILLed (no orphans)", async () => {
    const agents = () =>
      processesMentioning(join(ca.dir, "custodians")).filter((p) => p !== ca.proc.child.pid);
    expect(agents()).toHaveLength(5);
    ca.proc.kill("SIGKILL");
    await ca.proc.exited;
    while (agents().length > 0) await new Promise((r) => setTimeout(r, 200)); // the test timeout bounds it
    expect(agents()).toEqual([]);
  }, 60_000);
});
