// The bench's PostgreSQL rows (docs/benchmarks.md, "(f)"): the load generator spreads submissions
// and certificate fetches round-robin over several coordinator URLs, the PostgreSQL server's CPU is
// read from procfs including backends that have exited, and the bench's dev CA on PostgreSQL with
// two replicas reports both URLs and issues through either. No timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { generateCsrs } from "../../bench/lib/csr.ts";
import { startDevCa, type DevCa } from "../../bench/lib/dev-ca.ts";
import { runLoad } from "../../bench/lib/load.ts";
import { findPostmaster, serverCpuTicks } from "../../bench/lib/postgres.ts";
import { hasPostgres, testDatabaseUrl } from "../helpers/postgres.ts";

/** A fake CA served by several listeners that share one request table, counting what each saw. */
async function fakeReplicas(count: number) {
  const issued = new Set<string>();
  let nextId = 0;
  const seen = Array.from({ length: count }, () => ({ submit: 0, fetch: 0 }));
  const servers = await Promise.all(
    seen.map(
      (counts) =>
        new Promise<http.Server>((resolve) => {
          const server = http.createServer((req, res) => {
            req.resume();
            req.on("end", () => {
              if (req.method === "POST" && req.url === "/api/v1/requests") {
                counts.submit++;
                const id = `r${nextId++}`;
                issued.add(id);
                res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify({ id }));
                return;
              }
              const m = /^\/api\/v1\/requests\/(\w+)\/certificate/.exec(req.url ?? "");
              if (req.method === "GET" && m && issued.has(m[1]!)) {
                counts.fetch++;
                res.writeHead(200, { "content-type": "application/pem-certificate-chain" }).end("PEM");
                return;
              }
              res.writeHead(404).end();
            });
          });
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  return {
    urls: servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`),
    seen,
    close: () => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))),
  };
}

describe("load generator over several replicas", () => {
  it("sends submissions and certificate fetches round-robin over every URL", async () => {
    const fake = await fakeReplicas(2);
    try {
      const r = await runLoad({
        url: "http://127.0.0.1:1", // ignored when urls is given
        urls: fake.urls,
        token: "t",
        csrs: generateCsrs(0, 6, "rr-test"),
        concurrency: 1,
        maxSeconds: 60,
      });
      expect(r).toMatchObject({ target: 6, submitted: 6, issued: 6, failed: 0, stuck: 0 });
      expect(fake.seen).toEqual([
        { submit: 3, fetch: 3 },
        { submit: 3, fetch: 3 },
      ]);
    } finally {
      await fake.close();
    }
  });

  it("without urls, everything goes to url", async () => {
    const fake = await fakeReplicas(2);
    try {
      const r = await runLoad({
        url: fake.urls[1]!,
        token: "t",
        csrs: generateCsrs(0, 2, "rr-test"),
        concurrency: 2,
        maxSeconds: 60,
      });
      expect(r.issued).toBe(2);
      expect(fake.seen).toEqual([
        { submit: 0, fetch: 0 },
        { submit: 2, fetch: 2 },
      ]);
    } finally {
      await fake.close();
    }
  });
});

describe.skipIf(!(await hasPostgres("bench PostgreSQL rows")))("bench on PostgreSQL", () => {
  let databaseUrl: string;
  beforeAll(async () => {
    databaseUrl = await testDatabaseUrl();
  });

  it("finds the postmaster and counts the CPU of backends that have exited", async () => {
    const postmaster = findPostmaster(Number(new URL(databaseUrl).port));
    expect(postmaster).toBeGreaterThan(0);
    const before = serverCpuTicks(postmaster!)!;
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const backend = rows[0]!.pid;
    // A few hundred milliseconds of server CPU in this one backend.
    await client.query("SELECT count(*) FROM generate_series(1, 5000000)");
    const busy = serverCpuTicks(postmaster!)!;
    expect(busy).toBeGreaterThan(before);
    await client.end();
    // Wait until the postmaster has reaped the backend: its CPU must still be counted.
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(backend, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(serverCpuTicks(postmaster!)!).toBeGreaterThanOrEqual(busy);
  });

  describe("a dev CA with two replicas", () => {
    let ca: DevCa;
    beforeAll(async () => {
      ca = await startDevCa({ n: 3, t: 2, maxSeconds: 110, databaseUrl, coordinators: 2 });
    });
    afterAll(async () => {
      await ca?.stop();
    });

    it("is ready on both URLs from coordinators.txt and issues through both, round-robin", async () => {
      expect(ca.problem).toBeUndefined();
      expect(ca.urls).toHaveLength(2);
      expect(new Set(ca.urls).size).toBe(2);
      expect(ca.urls[0]).toBe(ca.url);
      const r = await runLoad({
        url: ca.url!,
        urls: ca.urls,
        token: ca.token!,
        csrs: generateCsrs(0, 4, "replica-test"),
        concurrency: 2,
        maxSeconds: 90,
      });
      expect(r).toMatchObject({ target: 4, submitted: 4, issued: 4, failed: 0, stuck: 0 });
    });
  });
});
