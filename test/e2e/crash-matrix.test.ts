// docs/storage.md, crash safety: a coordinator SIGKILLed at each step of a request's life loses and
// duplicates nothing, and so does a SIGKILLed database. Replica A is armed with TCA_CRASH_AT=<step> (it kills
// itself the first time it reaches that step: src/coordinator/crash-points.ts) and is the only replica up
// while the step happens, so the step is certain to be A's; once A is dead, replica B takes over and
// A is restarted. Every request must end issued exactly once: one request row for its CSR, one
// successful signature, a certificate that verifies. The database has its own server here, so that
// killing it disturbs no other test file.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { Sandbox } from "../helpers/processes.ts";
import { openssl } from "../helpers/openssl.ts";
import { createDatabase, hasPostgres, startPostgres, type PostgresServer } from "../helpers/postgres.ts";
import { startReplicatedCa, type ReplicatedCa } from "../helpers/replicated-ca.ts";
import { generateCsrs } from "../../bench/lib/csr.ts";
import type { CrashPoint } from "../../src/coordinator/crash-points.ts";

const sb = new Sandbox();
let server: PostgresServer;
let ca: ReplicatedCa;
let db: pg.Client;
let databaseUrl: string;
const enabled = await hasPostgres("crash matrix");

beforeAll(async () => {
  if (!enabled) return;
  server = await startPostgres({ durable: true });
  const url = await createDatabase(server.url);
  ca = await startReplicatedCa(sb, { databaseUrl: url, custodians: 3, threshold: 2 });
  databaseUrl = url;
  await connectDb();
}, 180_000);

async function connectDb(): Promise<void> {
  db = new pg.Client({ connectionString: databaseUrl });
  db.on("error", () => undefined); // the database is killed on purpose below
  await db.connect();
}
afterAll(async () => {
  await db?.end().catch(() => undefined);
  await sb.cleanup();
  await server?.stop();
});

const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");

/** Posts a CSR to replica i; resolves with the answer, or with the error if the replica died. */
function submit(csr: string, i: number): Promise<Response | Error> {
  return fetch(`${ca.urls[i]}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${ca.token}`, "content-type": "application/json" },
    body: JSON.stringify({ csr, profile: "server" }),
  }).catch((e: Error) => e);
}

/** The one request the database holds for this CSR (whatever the submitter heard). */
async function requestFor(csr: string): Promise<string> {
  const rows = (await db.query<{ id: string }>("SELECT id FROM requests WHERE csr = $1", [derOf(csr)])).rows;
  expect(rows).toHaveLength(1);
  return rows[0]!.id;
}

async function certificate(id: string, i: number): Promise<string> {
  for (;;) {
    const res = await fetch(`${ca.urls[i]}/api/v1/requests/${id}/certificate?wait=20`, {
      headers: { authorization: `Bearer ${ca.token}` },
    });
    if (res.ok) return res.text();
    const problem = (await res.json()) as { requestStatus?: string };
    if (problem.requestStatus !== "pending" && problem.requestStatus !== "signing")
      throw new Error(`request ${id} ended ${problem.requestStatus}`);
  }
}

/** Issued exactly once: one successful leaf signature, the certificate verifies with openssl. */
async function expectIssuedOnce(id: string, chain: string): Promise<void> {
  const r = await db.query<{ status: string }>("SELECT status FROM requests WHERE id = $1", [id]);
  expect(r.rows[0]?.status).toBe("issued");
  const jobs = await db.query<{ status: string }>(
    "SELECT status FROM signing_jobs WHERE kind = 'leaf' AND subject_ref = $1 AND status = 'done'",
    [id],
  );
  expect(jobs.rows).toHaveLength(1);
  const path = join(sb.tempDir(), "leaf.pem");
  writeFileSync(path, chain);
  expect(openssl(["verify", "-CAfile", ca.rootPath, path])).toMatch(/: OK/);
  const serials = await db.query<{ n: string; d: string }>(
    "SELECT COUNT(*) AS n, COUNT(DISTINCT serial) AS d FROM requests",
  );
  expect(serials.rows[0]!.n).toBe(serials.rows[0]!.d);
}

const STEPS: CrashPoint[] = [
  "after-intake",
  "after-approval",
  "after-package",
  "after-share",
  "before-publish",
];

describe.skipIf(!enabled)("SIGKILL at each step of a request's life", () => {
  it.each(STEPS)(
    "a coordinator killed %s: the request is issued once by the other replica",
    async (step) => {
      await ca.stopReplica(1, "SIGTERM");
      await ca.stopReplica(0, "SIGTERM");
      const a = await ca.startReplica(0, { TCA_CRASH_AT: step }); // the agents fail over to A: the only one up
      const csr = generateCsrs(STEPS.indexOf(step), 1, `crash-${step}`)[0]!;
      const answer = submit(csr, 0);
      expect(await a.exited).not.toBe(0); // A reached the step and died there
      await ca.startReplica(1); // the CA carries on through B
      const id = await requestFor(csr);
      const chain = await certificate(id, 1);
      await ca.startReplica(0); // and A comes back, unarmed
      await expectIssuedOnce(id, chain);
      const heard = await answer;
      if (step === "after-intake") expect(heard).toBeInstanceOf(Error); // the requester never heard
    },
    120_000,
  );

  it("a SIGKILLed database: requests in flight finish once it is back, each once", async () => {
    for (const i of [0, 1]) if (!ca.replicas[i]) await ca.startReplica(i);
    const csrs = generateCsrs(100, 10, "db-crash");
    const answers = await Promise.all(csrs.map((c, i) => submit(c, i % 2)));
    for (const r of answers) expect(r instanceof Response && r.status).toBe(202);
    await server.kill();
    await new Promise((r) => setTimeout(r, 500)); // requests in flight now fail against a dead database
    for (const i of [0, 1]) {
      const health = await fetch(`${ca.urls[i]}/api/v1/health`).catch((e: Error) => {
        throw new Error(`replica ${i} is gone (${e.message}):\n${ca.replicas[i]?.output.slice(-3000)}`);
      });
      expect(health.status).toBe(503); // not ready while the database is away; still alive
      expect(((await health.json()) as { database: string }).database).toBe("unavailable");
      expect((await fetch(`${ca.urls[i]}/api/v1/health/live`)).status).toBe(200);
    }
    await server.restart();
    await db.end().catch(() => undefined);
    await connectDb();
    const ids: string[] = [];
    for (const c of csrs) ids.push(await requestFor(c)); // one client, one query at a time
    const chains = await Promise.all(ids.map((id, i) => certificate(id, i % 2)));
    for (let i = 0; i < ids.length; i++) await expectIssuedOnce(ids[i]!, chains[i]!);
  }, 180_000);

  it("leaves every custodian's journal intact and agreeing with the coordinator's record", async () => {
    // No journal entry was lost to any of the kills above: each chain and keystore anchor verifies,
    // and the coordinator holds no decision the custodian's journal does not know.
    for (const c of ca.layout.custodians) {
      const p = sb.tca([
        "custodian",
        "journal",
        "verify",
        "--home",
        c.home,
        "--check-coordinator",
        "--coordinator",
        ca.urls.join(","),
        "--passphrase-file",
        c.passphraseFile,
      ]);
      expect(await p.exited, `${c.name}: ${p.output}`).toBe(0);
    }
  }, 60_000);
});
