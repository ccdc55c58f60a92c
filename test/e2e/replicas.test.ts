// docs/storage.md, replicas: several coordinators on one PostgreSQL are one CA, and killing one loses and
// duplicates nothing. 200 requests are submitted round-robin to two `tca serve` replicas while one of them is
// SIGKILLed and restarted; custodian agents (separate processes) fail over between the replicas.
// Every request ends issued exactly once: one certificate per request, no serial twice, all verify
// with openssl, and the database agrees. Then availability on the same 3-of-5 CA: two custodians
// down, issuance continues; three down, a request waits and says how many approvals it lacks, and
// completes when one comes back; one of the two coordinators down, issuance continues.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { Sandbox } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { hasPostgres, testDatabaseUrl } from "../helpers/postgres.ts";
import { startReplicatedCa, type ReplicatedCa } from "../helpers/replicated-ca.ts";
import { generateCsrs } from "../../bench/lib/csr.ts";
import { requestState, type RequestView } from "../../src/protocol/approval.ts";
import { describeState } from "../../src/requester/wait.ts";

const TOTAL = 200;
const sb = new Sandbox();
let ca: ReplicatedCa;
const enabled = await hasPostgres("coordinator replicas");

beforeAll(async () => {
  if (!enabled) return;
  ca = await startReplicatedCa(sb, { databaseUrl: await testDatabaseUrl(), custodians: 5, threshold: 3 });
}, 180_000);
afterAll(() => sb.cleanup());

/**
 * Submits to replica `first`, or to the other one if `first` refuses the connection (nothing was
 * sent). A connection that breaks after sending is ambiguous: the request may exist; it is
 * reported as such and counted from the database at the end.
 */
async function submit(csr: string, first: number): Promise<string | "ambiguous"> {
  for (const i of [first, 1 - first]) {
    try {
      const res = await fetch(`${ca.urls[i]}/api/v1/requests`, {
        method: "POST",
        headers: { authorization: `Bearer ${ca.token}`, "content-type": "application/json" },
        body: JSON.stringify({ csr, profile: "server" }),
      });
      if (res.status === 503) continue;
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (code === "ECONNREFUSED") continue;
      return "ambiguous";
    }
  }
  throw new Error("both replicas refused the connection");
}

/** Follows a request to its certificate at whichever replica answers. */
async function certificate(id: string, start: number): Promise<string> {
  for (let i = start; ; i++) {
    try {
      const res = await fetch(`${ca.urls[i % 2]}/api/v1/requests/${id}/certificate?wait=20`, {
        headers: { authorization: `Bearer ${ca.token}` },
      });
      if (res.ok) return await res.text();
      const problem = (await res.json()) as { requestStatus?: string };
      if (problem.requestStatus !== "pending" && problem.requestStatus !== "signing")
        throw new Error(`request ${id} ended ${problem.requestStatus}`);
    } catch (e) {
      if ((e as Error).message.startsWith("request ")) throw e;
      await new Promise((r) => setTimeout(r, 200)); // that replica is down: ask the other
    }
  }
}

describe.skipIf(!enabled)("two coordinator replicas on one PostgreSQL", () => {
  it(`issues ${TOTAL} requests submitted round-robin while one replica is SIGKILLed and restarted, each exactly once`, async () => {
    const csrs = generateCsrs(0, TOTAL, "replicas");
    const submitted: Promise<string | "ambiguous">[] = [];
    for (let i = 0; i < TOTAL; i++) {
      if (i === 60) await ca.stopReplica(1, "SIGKILL"); // mid-stream, with requests in every state
      if (i === 130) await ca.startReplica(1);
      submitted.push(submit(csrs[i]!, i % 2));
      if (i % 10 === 9) await Promise.all(submitted.slice(-10));
    }
    const ids = (await Promise.all(submitted)).filter((x): x is string => x !== "ambiguous");
    expect(ids.length).toBeGreaterThan(TOTAL - 5);

    // Every request the database holds ends issued: also any whose answer was lost in the kill.
    const db = new pg.Client({ connectionString: ca.databaseUrl });
    await db.connect();
    try {
      const all = (await db.query<{ id: string }>("SELECT id FROM requests")).rows.map((r) => r.id);
      expect(all.length).toBeGreaterThanOrEqual(ids.length);
      expect(all.length).toBeLessThanOrEqual(TOTAL); // a lost answer never became two requests
      const chains = await Promise.all(all.map((id, i) => certificate(id, i)));

      const work = sb.tempDir();
      const files = chains.map((c, i) => {
        const path = join(work, `c${i}.pem`);
        writeFileSync(path, c);
        return path;
      });
      const verified = openssl(["verify", "-CAfile", ca.rootPath, ...files]);
      expect(verified.match(/: OK/g)).toHaveLength(all.length);

      const rows = (
        await db.query<{ status: string; n: string }>(
          "SELECT status, COUNT(*) AS n FROM requests GROUP BY status",
        )
      ).rows;
      expect(rows).toEqual([{ status: "issued", n: String(all.length) }]);
      const serials = (await db.query<{ serial: string }>("SELECT serial FROM requests")).rows;
      expect(new Set(serials.map((r) => r.serial)).size).toBe(all.length);
      // One successful signature per certificate: no request was signed and published twice.
      const done = (
        await db.query<{ subject_ref: string; n: string }>(
          "SELECT subject_ref, COUNT(*) AS n FROM signing_jobs WHERE kind = 'leaf' AND status = 'done' GROUP BY subject_ref",
        )
      ).rows;
      expect(done).toHaveLength(all.length);
      expect(done.every((r) => r.n === "1")).toBe(true);
      // And the certificates themselves: one serial each, the one the request was given.
      const certSerials = chains.map((c) =>
        new X509Certificate(c).serialNumber.toLowerCase().replace(/^0+/, ""),
      );
      expect(new Set(certSerials).size).toBe(all.length);
      const bySerial = new Set(serials.map((r) => r.serial.replace(/^0+/, "")));
      expect(certSerials.every((s) => bySerial.has(s))).toBe(true);
    } finally {
      await db.end();
    }
  }, 420_000);
});

async function view(id: string, i = 0): Promise<RequestView> {
  return (await (
    await fetch(`${ca.urls[i]}/api/v1/requests/${id}`, { headers: { authorization: `Bearer ${ca.token}` } })
  ).json()) as RequestView;
}

/** Long-polls a request at replica i until `done(view)` holds. */
async function until(id: string, done: (v: RequestView) => boolean, i = 0): Promise<RequestView> {
  let v = await view(id, i);
  while (!done(v)) {
    const state = encodeURIComponent(requestState(v));
    v = (await (
      await fetch(`${ca.urls[i]}/api/v1/requests/${id}?since=${state}&wait=20`, {
        headers: { authorization: `Bearer ${ca.token}` },
      })
    ).json()) as RequestView;
  }
  return v;
}

describe.skipIf(!enabled)("availability of a 3-of-5 CA with two replicas", () => {
  const csrs = generateCsrs(0, 4, "available");

  it("issues with two custodians down", async () => {
    await ca.stopAgent("dave");
    await ca.stopAgent("erin");
    const id = await submit(csrs[0]!, 0);
    expect(id).not.toBe("ambiguous");
    expect(await certificate(id as string, 1)).toContain("BEGIN CERTIFICATE");
  }, 120_000);

  it("with three down, a request waits and says what it lacks; it completes when one returns", async () => {
    await ca.stopAgent("carol");
    const id = (await submit(csrs[1]!, 1)) as string;
    // Alice and bob approve; the third approval cannot come while carol, dave and erin are down.
    const waiting = await until(id, (v) => v.approvals.length >= 2);
    expect(waiting.status).toBe("pending");
    expect(waiting.missing).toBe(1);
    expect(describeState(waiting)).toBe("pending: 2 of 3 approvals, waiting for 1 more…");
    await ca.startAgent("carol");
    expect(await certificate(id, 0)).toContain("BEGIN CERTIFICATE");
    await Promise.all([ca.startAgent("dave"), ca.startAgent("erin")]);
  }, 180_000);

  it("issues with one of the two coordinators down", async () => {
    await ca.stopReplica(0);
    const id = (await submit(csrs[2]!, 0)) as string; // refused by replica 0: goes to replica 1
    const v = await until(id, (x) => x.status === "issued", 1);
    expect(v.status).toBe("issued");
    const health = (await (
      await fetch(`${ca.urls[1]}/api/v1/health`, { headers: { authorization: `Bearer ${ca.adminToken}` } })
    ).json()) as {
      status: string;
      replicas: { url: string; live: boolean }[];
    };
    expect(health.status).toBe("ok");
    expect(health.replicas.some((r) => r.url === ca.urls[1] && r.live)).toBe(true);
    await ca.startReplica(0);
  }, 120_000);
});
