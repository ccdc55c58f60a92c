// Smoke test of the PostgreSQL harness (test/helpers/postgres.ts): the server the globalSetup
// started answers, createDatabase() isolates test files from one another, and LISTEN/NOTIFY (which
// the coordinator replicas use to wake long-polls on one another) crosses connections.
import { inject, describe, expect, it } from "vitest";
import pg from "pg";
import { createDatabase, hasPostgres, testDatabaseUrl } from "./postgres.ts";

const SUITE = "PostgreSQL test harness";

describe.skipIf(!(await hasPostgres(SUITE)))(SUITE, () => {
  async function connect(url: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  }

  it("the injected server is a real PostgreSQL on loopback", async () => {
    const admin = inject("pgAdminUrl");
    expect(admin).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    const client = await connect(admin!);
    try {
      const { rows } = await client.query<{ version: string }>("select version()");
      expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);
    } finally {
      await client.end();
    }
  });

  it("each createDatabase() is a separate database", async () => {
    const admin = inject("pgAdminUrl")!;
    const [urlA, urlB] = await Promise.all([createDatabase(admin), createDatabase(admin)]);
    expect(urlA).not.toBe(urlB);
    const [a, b] = await Promise.all([connect(urlA), connect(urlB)]);
    try {
      const names = await Promise.all(
        [a, b].map(
          async (c) => (await c.query<{ db: string }>("select current_database() as db")).rows[0]?.db,
        ),
      );
      expect(names[0]).toMatch(/^tca_test_[0-9a-f]{16}$/);
      expect(names[1]).toMatch(/^tca_test_[0-9a-f]{16}$/);
      expect(names[0]).not.toBe(names[1]);

      await a.query("create table only_in_a (id integer primary key)");
      await a.query("insert into only_in_a values (1)");
      const seen = async (c: pg.Client): Promise<number> =>
        (await c.query("select 1 from pg_tables where tablename = 'only_in_a'")).rowCount ?? 0;
      expect(await seen(a)).toBe(1);
      expect(await seen(b)).toBe(0);
      await expect(b.query("select * from only_in_a")).rejects.toThrow(/does not exist/);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it("LISTEN on one connection receives a NOTIFY sent on another", async () => {
    const url = await testDatabaseUrl();
    const [listener, sender] = await Promise.all([connect(url), connect(url)]);
    try {
      const received = new Promise<pg.Notification>((resolve) => listener.on("notification", resolve));
      await listener.query("LISTEN tca_harness");
      await sender.query("select pg_notify('tca_harness', $1)", ["request 42 changed"]);
      const n = await received;
      expect(n.channel).toBe("tca_harness");
      expect(n.payload).toBe("request 42 changed");
      const pid = async (c: pg.Client): Promise<number | undefined> =>
        (await c.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]?.pid;
      expect(n.processId).toBe(await pid(sender));
      expect(n.processId).not.toBe(await pid(listener));
    } finally {
      await Promise.all([listener.end(), sender.end()]);
    }
  });
});
