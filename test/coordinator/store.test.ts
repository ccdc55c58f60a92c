// The store contract, on every database tca runs on (SQLite in memory and on disk, PostgreSQL):
// migrations, the uniqueness rules that make replays and double messages fail, transactions (one
// writer at a time across replicas, all or nothing, savepoints per batch item), partial updates,
// intake order, shared liveness and leases, change notifications that follow commits, typed JSON
// columns (parsed at the edge, corrupt rows refused), and the CRL state row (migration 0003).
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Sqlite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { isPostgresUrl, openStore, redactLocation } from "../../src/coordinator/store/open.ts";
import { migrations } from "../../src/coordinator/store/migrations.ts";
import type { Database } from "../../src/coordinator/store/schema.ts";
import type { SqlStore } from "../../src/coordinator/store/sql-store.ts";
import type {
  CeremonyRecord,
  JobEvent,
  MessageRecord,
  RequestRecord,
  SigningJobRecord,
} from "../../src/coordinator/store/types.ts";
import type { SigningPackage } from "../../src/protocol/signing-messages.ts";
import { canonicalJson } from "../../src/common/canonical-json.ts";
import { storeKinds } from "../helpers/stores.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const msg = (o: Partial<MessageRecord>): MessageRecord => ({
  id: "m1",
  scope: "job",
  type: "sign/commitment",
  sender: "alice",
  recipient: "coordinator",
  attempt: 0,
  envelope: "{}",
  receivedAt: new Date().toISOString(),
  ...o,
});
let serial = 0;
const request = (o: Partial<RequestRecord> = {}): Omit<RequestRecord, "seq"> => {
  serial += 1;
  const now = new Date().toISOString();
  return {
    id: `00000000-0000-4000-8000-${String(serial).padStart(12, "0")}`,
    requester: "svc",
    profile: "server",
    csr: new Uint8Array([1, 2, 3]),
    tbs: new Uint8Array([serial & 255, serial >> 8, 9]),
    tbsSha256: `sha-${serial}`,
    serial: `serial-${serial}`,
    notBefore: now,
    notAfter: now,
    status: "pending",
    signingJob: null,
    certificate: null,
    outcome: null,
    origin: null,
    createdAt: now,
    updatedAt: now,
    ...o,
  };
};
const leafParams = {
  requestId: "00000000-0000-4000-8000-000000000001",
  requester: "svc",
  profile: "server",
  csr: "MIIB",
  serial: "0a1b",
  notBefore: "2026-01-01T00:00:00.000Z",
  notAfter: "2026-01-02T00:00:00.000Z",
};
const job = (id: string): SigningJobRecord => ({
  id,
  kind: "leaf",
  subjectRef: "r1",
  tbs: new Uint8Array([0, 255, 7]),
  params: leafParams,
  eligible: ["alice", "bob"],
  status: "signing",
  attempt: 0,
  signingPackage: null,
  excluded: [],
  events: [],
  signature: null,
  createdAt: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
});
const ceremony = (id: string): CeremonyRecord => ({
  id,
  announcement: {
    ceremonyId: id,
    threshold: 2,
    custodians: [
      { name: "alice", identifier: "01", signingKey: "ka", hpkeKey: "ha" },
      { name: "bob", identifier: "02", signingKey: "kb", hpkeKey: "hb" },
    ],
    caSubject: "CN=Test Root",
    rootValidityDays: 3650,
    configDigest: "d".repeat(64),
    createdAt: "2026-01-01T00:00:00.000Z",
  },
  status: "round1",
  failure: null,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
});
const tick = () => new Promise((r) => setTimeout(r, 20));

/** A plain Kysely connection to a store's database, to see and write its columns as stored. */
function rawDb(location: string): Kysely<Database> {
  return isPostgresUrl(location)
    ? new Kysely<Database>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: location, max: 2 }) }),
      })
    : new Kysely<Database>({ dialect: new SqliteDialect({ database: new Sqlite(location) }) });
}
let files = 0;

describe.each(await storeKinds("store contract"))("store contract on $name", (kind) => {
  const opened: SqlStore[] = [];
  const open = async (location?: string) => {
    const s = await openStore(location ?? (await kind.location()));
    opened.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  });

  it("migrates a new database, and opens it again without re-applying anything", async () => {
    const location = kind.name === "sqlite" ? join(dir, `m-${Date.now()}.db`) : await kind.location();
    const a = await open(location);
    await a.setMeta("k", "v");
    await a.setMeta("k", "w"); // upsert
    await a.close();
    const b = await open(location);
    expect(await b.getMeta("k")).toBe("w");
    expect(b.dialect).toBe(kind.name);
  });

  it("refuses a replayed message id and a second message per sender, stage and attempt", async () => {
    const s = await open();
    expect(await s.insertMessage(msg({}))).toBe(true);
    expect(await s.insertMessage(msg({}))).toBe(false); // same id
    expect(await s.insertMessage(msg({ id: "m2", recipient: "*" }))).toBe(false); // same sender/stage/attempt
    expect(await s.insertMessage(msg({ id: "m3", attempt: 1 }))).toBe(true);
    expect(await s.insertMessage(msg({ id: "m4", sender: "bob" }))).toBe(true);
    expect((await s.listMessages("job", "sign/commitment", 0)).map((m) => m.sender).sort()).toEqual([
      "alice",
      "bob",
    ]);
  });

  it("refuses a second request with the same serial or the same TBS, and a second approval", async () => {
    const s = await open();
    const r = request();
    await s.insertRequest(r);
    await expect(s.insertRequest({ ...request(), serial: r.serial })).rejects.toThrow();
    await expect(s.insertRequest({ ...request(), tbsSha256: r.tbsSha256 })).rejects.toThrow();
    const a = {
      requestId: r.id,
      custodian: "alice",
      decision: "approve" as const,
      reason: null,
      expiresAt: r.createdAt,
      envelope: "{}",
      createdAt: r.createdAt,
    };
    expect(await s.insertApproval(a)).toBe(true);
    expect(await s.insertApproval({ ...a, decision: "reject" })).toBe(false);
    expect((await s.listApprovals(r.id)).map((x) => x.decision)).toEqual(["approve"]);
    expect(
      await s.insertRevocation({
        serial: r.serial,
        requestId: r.id,
        reason: "x",
        revokedAt: "t",
        revokedBy: "a",
      }),
    ).toBe(true);
    expect(
      await s.insertRevocation({
        serial: r.serial,
        requestId: r.id,
        reason: "y",
        revokedAt: "t",
        revokedBy: "a",
      }),
    ).toBe(false);
  });

  it("round-trips binary columns and JSON lists exactly", async () => {
    const s = await open();
    await s.insertSigningJob(job("j1"));
    await s.updateSigningJob("j1", { signature: new Uint8Array(64).fill(0xab), excluded: ["bob"] });
    const j = await s.getSigningJob("j1");
    expect(j?.tbs).toEqual(new Uint8Array([0, 255, 7]));
    expect(j?.signature).toEqual(new Uint8Array(64).fill(0xab));
    expect(j?.eligible).toEqual(["alice", "bob"]);
    expect(j?.excluded).toEqual(["bob"]);
    await s.insertCrl({
      number: 7,
      der: new Uint8Array([48, 0]),
      thisUpdate: "a",
      nextUpdate: "b",
      createdAt: "c",
    });
    expect((await s.latestCrl())?.der).toEqual(new Uint8Array([48, 0]));
    expect((await s.latestCrl())?.number).toBe(7);
  });

  it("writes only the fields an update names: concurrent updates of different fields both stay", async () => {
    const s = await open();
    const r = request();
    await s.insertRequest(r);
    await Promise.all([
      s.updateRequest(r.id, { status: "signing" }),
      s.updateRequest(r.id, { signingJob: "job-1" }),
    ]);
    const got = await s.getRequest(r.id);
    expect(got?.status).toBe("signing");
    expect(got?.signingJob).toBe("job-1");
    await s.insertSigningJob(job("j2"));
    const ev: JobEvent[] = [{ at: "2026-01-01T00:00:00.000Z", kind: "signed" }];
    await Promise.all([s.updateSigningJob("j2", { attempt: 3 }), s.updateSigningJob("j2", { events: ev })]);
    const j = await s.getSigningJob("j2");
    expect([j?.attempt, j?.events]).toEqual([3, ev]);
  });

  /** A database this test can also reach with its own connection (a file for SQLite). */
  const shared = async () =>
    kind.name === "sqlite" ? join(dir, `t-${Date.now()}-${++files}.db`) : kind.location();

  it("round-trips typed JSON columns: job events, package and params, request outcome, ceremony failure", async () => {
    const location = await shared();
    const s = await open(location);
    const events: JobEvent[] = [
      { at: "2026-01-01T00:00:00.000Z", kind: "package", detail: "attempt 0: signers alice, bob" },
      { at: "2026-01-01T00:00:01.000Z", kind: "share", custodian: "bob" },
      { at: "2026-01-01T00:00:02.000Z", kind: "withdrawn", custodian: "alice", detail: "alice withdrew" },
    ];
    const pkg: SigningPackage = {
      attempt: 2,
      signers: ["alice", "bob"],
      commitments: [
        { identifier: "1".repeat(64), hiding: "a".repeat(64), binding: "b".repeat(64) },
        { identifier: "2".repeat(64), hiding: "c".repeat(64), binding: "d".repeat(64) },
      ],
      formedAt: "2026-01-01T00:00:00.500Z",
    };
    await s.insertSigningJob({ ...job("j1"), events, signingPackage: pkg });
    const j = await s.getSigningJob("j1");
    expect(j).toMatchObject({ kind: "leaf", params: leafParams, events, signingPackage: pkg });
    await s.updateSigningJob("j1", { signingPackage: null, events: [...events.slice(0, 1)] });
    expect(await s.getSigningJob("j1")).toMatchObject({ signingPackage: null, events: events.slice(0, 1) });
    // Each kind's parameters come back as that kind's shape.
    const root = {
      ceremonyId: "c1",
      serial: "01ff",
      notBefore: leafParams.notBefore,
      notAfter: leafParams.notAfter,
    };
    const crl = {
      crlNumber: "7",
      thisUpdate: leafParams.notBefore,
      nextUpdate: leafParams.notAfter,
      entries: [{ serial: "0a1b", revokedAt: leafParams.notBefore, reason: "keyCompromise" }],
    };
    await s.insertSigningJob({ ...job("j-root"), kind: "root", params: root });
    await s.insertSigningJob({ ...job("j-crl"), kind: "crl", params: crl });
    expect(await s.getSigningJob("j-root")).toMatchObject({ kind: "root", params: root });
    expect(await s.getSigningJob("j-crl")).toMatchObject({ kind: "crl", params: crl });

    const r = request();
    await s.insertRequest(r);
    expect((await s.getRequest(r.id))?.outcome).toBeNull();
    await s.updateRequest(r.id, { status: "rejected", outcome: { by: "carol", reason: "not ours" } });
    expect((await s.getRequest(r.id))?.outcome).toEqual({ by: "carol", reason: "not ours" });
    await s.updateRequest(r.id, { outcome: { reason: "signing failed" } });
    expect((await s.getRequest(r.id))?.outcome).toEqual({ reason: "signing failed" });

    const c = ceremony("11111111-1111-4111-8111-111111111111");
    await s.insertCeremony(c);
    expect(await s.getCeremony(c.id)).toMatchObject({ announcement: c.announcement, failure: null });
    await s.updateCeremony(c.id, { status: "failed", failure: { reason: "bob aborted", culprits: ["bob"] } });
    expect((await s.latestCeremony())?.failure).toEqual({ reason: "bob aborted", culprits: ["bob"] });

    // As stored: plain JSON text, as earlier versions wrote it (the announcement canonical), so a
    // database written before this mapping reads the same.
    const db = rawDb(location);
    try {
      const row = await db
        .selectFrom("signing_jobs")
        .selectAll()
        .where("id", "=", "j1")
        .executeTakeFirstOrThrow();
      expect([row.signing_package, JSON.parse(row.events), JSON.parse(row.params)]).toEqual([
        null,
        events.slice(0, 1),
        leafParams,
      ]);
      const cr = await db.selectFrom("ceremonies").selectAll().executeTakeFirstOrThrow();
      expect(cr.announcement).toBe(canonicalJson(c.announcement));
      expect(JSON.parse(cr.failure!)).toEqual({ reason: "bob aborted", culprits: ["bob"] });
      const rr = await db
        .selectFrom("requests")
        .select("outcome")
        .where("id", "=", r.id)
        .executeTakeFirstOrThrow();
      expect(JSON.parse(rr.outcome!)).toEqual({ reason: "signing failed" });
    } finally {
      await db.destroy();
    }
  });

  it("refuses to read a row whose JSON is corrupt or does not fit its schema, naming it", async () => {
    const location = await shared();
    const s = await open(location);
    await s.insertSigningJob(job("j1"));
    await s.insertSigningJob(job("j2"));
    const r = request();
    await s.insertRequest(r);
    const c = ceremony("22222222-2222-4222-8222-222222222222");
    await s.insertCeremony(c);
    const db = rawDb(location);
    try {
      await db.updateTable("signing_jobs").set({ events: "[{not json" }).where("id", "=", "j1").execute();
      await db
        .updateTable("signing_jobs")
        .set({ params: JSON.stringify({ ...leafParams, requestId: undefined }) })
        .where("id", "=", "j2")
        .execute();
      await db.updateTable("requests").set({ outcome: '{"reason":5}' }).where("id", "=", r.id).execute();
      await db.updateTable("ceremonies").set({ failure: '{"reason":"x"}' }).execute();
    } finally {
      await db.destroy();
    }
    await expect(s.getSigningJob("j1")).rejects.toThrow(/corrupt row.*signing_jobs\.events of j1: not JSON/);
    await expect(s.getSigningJob("j2")).rejects.toThrow(
      /signing_jobs\.params of j2 \(kind leaf\).*requestId/,
    );
    await expect(s.listSigningJobs("signing")).rejects.toThrow(/corrupt row/);
    await expect(s.getRequest(r.id)).rejects.toThrow(/requests\.outcome of .*reason/);
    await expect(s.getCeremony(c.id)).rejects.toThrow(/ceremonies\.failure of .*culprits/);
  });

  it("keeps the CRL state in one typed row: initial state, partial updates, rolled back with its transaction", async () => {
    const location = await shared();
    const s = await open(location);
    expect(await s.getCrlState()).toEqual({ job: null, dirty: false, lastNumber: 0 });
    await s.transaction(async (tx) => tx.setCrlState({ lastNumber: 4 }));
    expect(await s.getCrlState()).toEqual({ job: null, dirty: false, lastNumber: 4 });
    await s.transaction(async (tx) => tx.setCrlState({ job: "job-1", dirty: true }));
    expect(await s.getCrlState()).toEqual({ job: "job-1", dirty: true, lastNumber: 4 });
    await s.transaction(async (tx) => tx.setCrlState({ job: null }));
    expect(await s.getCrlState()).toEqual({ job: null, dirty: true, lastNumber: 4 });
    await expect(
      s.transaction(async (tx) => {
        await tx.setCrlState({ dirty: false, lastNumber: 5 });
        throw new Error("undo");
      }),
    ).rejects.toThrow("undo");
    expect(await s.getCrlState()).toEqual({ job: null, dirty: true, lastNumber: 4 });
    await s.transaction(async (tx) => tx.setCrlState({}));
    expect(await s.getCrlState()).toEqual({ job: null, dirty: true, lastNumber: 4 });
    // One row only, the flag stored as 0/1 (SQLite has no boolean), no meta keys left behind.
    const db = rawDb(location);
    try {
      expect(await db.selectFrom("crl_state").selectAll().execute()).toEqual([
        { id: 1, job: null, dirty: 1, last_number: 4 },
      ]);
      await expect(
        db.insertInto("crl_state").values({ id: 2, job: null, dirty: 0, last_number: 0 }).execute(),
      ).rejects.toThrow();
      await expect(db.updateTable("crl_state").set({ dirty: 2 }).execute()).rejects.toThrow();
    } finally {
      await db.destroy();
    }
    expect(await s.getMeta("crl.dirty")).toBeUndefined();
  });

  it("finishes an upgrade that was interrupted half-way (0002: column added, not recorded) on the next start", async () => {
    const location = await shared();
    const db = rawDb(location);
    try {
      const { error } = await new Migrator({ db, provider: migrations(kind.name) }).migrateTo("0001_initial");
      if (error) throw error;
      // Three requests of the old schema, written in an order their times do not follow.
      for (const [id, at] of [
        ["c", "2026-01-01T00:00:02.000Z"],
        ["a", "2026-01-01T00:00:01.000Z"],
        ["b", "2026-01-01T00:00:01.000Z"],
      ] as const)
        await sql`INSERT INTO requests (id, requester, profile, csr, tbs, tbs_sha256, serial, not_before,
                    not_after, status, created_at, updated_at)
                  VALUES (${id}, 'svc', 'server', ${Buffer.from([1])}, ${Buffer.from([2])}, ${`h-${id}`},
                    ${`s-${id}`}, ${at}, ${at}, 'pending', ${at}, ${at})`.execute(db);
      // What a killed upgrade leaves on SQLite, where each DDL statement commits on its own.
      await sql`ALTER TABLE requests ADD COLUMN seq integer`.execute(db);
    } finally {
      await db.destroy();
    }
    const s = await open(location);
    expect((await s.listRequestsAfter("pending", 0, 10)).map((r) => [r.id, r.seq])).toEqual([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
  });

  it("migration 0003 carries the CRL meta keys of a running CA into the row, and numbering never goes back", async () => {
    // A database as tca left it at migration 0002, with the three string keys it used then.
    const before = async (meta: Record<string, string>, published?: number) => {
      const location = await shared();
      const db = rawDb(location);
      try {
        const { error } = await new Migrator({
          db,
          provider: migrations(kind.name),
        }).migrateTo("0002_replicas");
        if (error) throw error;
        for (const [key, value] of Object.entries(meta))
          await db.insertInto("meta").values({ key, value }).execute();
        if (published !== undefined)
          await db
            .insertInto("crls")
            .values({
              number: published,
              der: Buffer.from([48, 0]),
              this_update: "a",
              next_update: "b",
              created_at: "c",
            })
            .execute();
        // The 0003 table does not exist yet.
        await expect(sql`SELECT 1 FROM crl_state`.execute(db)).rejects.toThrow();
      } finally {
        await db.destroy();
      }
      return open(location);
    };
    const running = await before(
      { "crl.lastNumber": "41", "crl.dirty": "1", "crl.job": "job-7", other: "kept" },
      40,
    );
    expect(await running.getCrlState()).toEqual({ job: "job-7", dirty: true, lastNumber: 41 });
    for (const key of ["crl.lastNumber", "crl.dirty", "crl.job"])
      expect(await running.getMeta(key)).toBeUndefined();
    expect(await running.getMeta("other")).toBe("kept");

    // A finished job ("" then) is no job; a number behind the newest published CRL catches up to it.
    const idle = await before({ "crl.lastNumber": "3", "crl.dirty": "0", "crl.job": "" }, 5);
    expect(await idle.getCrlState()).toEqual({ job: null, dirty: false, lastNumber: 5 });

    // A CA that never made a CRL starts from the initial state.
    expect(await (await before({})).getCrlState()).toEqual({ job: null, dirty: false, lastNumber: 0 });
  });

  it("numbers requests in intake order, and lists them after a sequence number", async () => {
    const s = await open();
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = request({ createdAt: "2026-01-01T00:00:00.000Z" }); // one clock tick for all
      await s.transaction((tx) => tx.insertRequest(r));
      ids.push(r.id);
    }
    const all = await s.listRequestsAfter("pending", 0, 10);
    expect(all.map((r) => r.id)).toEqual(ids);
    expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await s.listRequestsAfter("pending", 3, 10)).map((r) => r.id)).toEqual(ids.slice(3));
    expect((await s.listRequests({ limit: 2 })).map((r) => r.id)).toEqual([ids[4], ids[3]]);
  });

  it("rolls a transaction back entirely when its function throws", async () => {
    const s = await open();
    await expect(
      s.transaction(async (tx) => {
        await tx.setMeta("half", "done");
        await tx.insertMessage(msg({ id: "x1" }));
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect(await s.getMeta("half")).toBeUndefined();
    expect(await s.listMessages("job", "sign/commitment")).toEqual([]);
    await s.transaction(async (tx) => tx.setMeta("whole", "done"));
    expect(await s.getMeta("whole")).toBe("done");
  });

  it("routes calls on the store made inside a transaction to that transaction", async () => {
    const s = await open();
    await expect(
      s.transaction(async () => {
        await s.setMeta("via-root-handle", "1"); // not the tx handle: still inside the transaction
        expect(await s.getMeta("via-root-handle")).toBe("1");
        throw new Error("undo");
      }),
    ).rejects.toThrow("undo");
    expect(await s.getMeta("via-root-handle")).toBeUndefined();
  });

  it("undoes only a failed item of a batch (savepoints), and refuses item() outside a transaction", async () => {
    const s = await open();
    await s.transaction(async (tx) => {
      await tx.item(() => tx.setMeta("a", "1"));
      await expect(
        tx.item(async () => {
          await tx.setMeta("b", "1");
          throw new Error("bad item");
        }),
      ).rejects.toThrow("bad item");
      await tx.item(() => tx.setMeta("c", "1"));
    });
    expect([await s.getMeta("a"), await s.getMeta("b"), await s.getMeta("c")]).toEqual(["1", undefined, "1"]);
    await expect(s.item(async () => 1)).rejects.toThrow(/outside a transaction/);
  });

  it("runs transactions one after another, and refuses a nested one instead of deadlocking", async () => {
    const s = await open();
    const order: string[] = [];
    await Promise.all(
      ["a", "b", "c"].map((n) =>
        s.transaction(async () => {
          order.push(`${n}-start`);
          await tick();
          order.push(`${n}-end`);
        }),
      ),
    );
    expect(order).toEqual(["a-start", "a-end", "b-start", "b-end", "c-start", "c-end"]);
    await expect(s.transaction(async () => s.transaction(async () => 1))).rejects.toThrow(
      /inside a transaction/,
    );
  });

  it("delivers a change published in a transaction only when it commits", async () => {
    const s = await open();
    const seen: string[] = [];
    s.subscribe((t) => seen.push(t));
    await expect(
      s.transaction(async (tx) => {
        await tx.publish("request:rolled-back");
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    await s.transaction(async (tx) => {
      await tx.publish("request:committed");
      await tick();
      expect(seen).toEqual([]); // not before the commit
    });
    await s.publish("*");
    await vi_waitFor(() => seen.length >= 2);
    expect(seen).toEqual(["request:committed", "*"]);
  });

  it("takes an undone item's announcements and after-commit callbacks with it", async () => {
    const s = await open();
    const seen: string[] = [];
    const ran: string[] = [];
    s.subscribe((t) => seen.push(t));
    await s.transaction(async (tx) => {
      await tx.item(async () => {
        await tx.publish("request:kept");
        tx.afterCommit(() => ran.push("kept"));
      });
      await expect(
        tx.item(async () => {
          await tx.publish("request:undone");
          tx.afterCommit(() => ran.push("undone"));
          throw new Error("refused");
        }),
      ).rejects.toThrow("refused");
    });
    await vi_waitFor(() => seen.length >= 1);
    await tick();
    expect(seen).toEqual(["request:kept"]);
    expect(ran).toEqual(["kept"]);
  });

  it("tells the database's own time on PostgreSQL (replicas follow it), none on SQLite", async () => {
    const s = await open();
    const t = await s.databaseTime();
    if (kind.name === "sqlite") expect(t).toBeNull();
    else expect(Math.abs(t! - Date.now())).toBeLessThan(5_000); // the same machine here
  });

  it("never lets another custodian take over a process id", async () => {
    const s = await open();
    await s.touchProcess("alice", "p1", "2026-01-01T00:00:01.000Z");
    await s.touchProcess("mallory", "p1", "2026-01-01T00:00:09.000Z");
    expect(await s.liveProcesses("2026-01-01T00:00:00.000Z")).toEqual(new Set(["alice/p1"]));
    expect(await s.liveProcesses("2026-01-01T00:00:05.000Z")).toEqual(new Set());
  });

  it("keeps process liveness, contacts and leases in the database", async () => {
    const s = await open();
    await s.touchProcess("alice", "p1", "2026-01-01T00:00:10.000Z");
    await s.touchProcess("bob", "p2", "2026-01-01T00:00:01.000Z");
    expect(await s.liveProcesses("2026-01-01T00:00:05.000Z")).toEqual(new Set(["alice/p1"]));
    await s.dropProcess("p1");
    expect(await s.liveProcesses("2026-01-01T00:00:00.000Z")).toEqual(new Set(["bob/p2"]));
    await s.recordContact("alice", "2026-01-01T00:00:02.000Z", "heartbeat");
    await s.recordContact("alice", "2026-01-01T00:00:01.000Z", "stale"); // older: ignored
    expect(await s.listContacts()).toEqual([
      { custodian: "alice", at: "2026-01-01T00:00:02.000Z", via: "heartbeat" },
    ]);
    const t = (sec: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, sec)).toISOString();
    expect(await s.claimLease("tick", "A", t(0), t(10))).toBe(true);
    expect(await s.claimLease("tick", "B", t(5), t(15))).toBe(false); // A's runs until 10
    expect(await s.claimLease("tick", "A", t(5), t(15))).toBe(true); // renewal
    expect(await s.claimLease("tick", "B", t(16), t(26))).toBe(true); // A's expired: taken over
    expect(await s.claimLease("tick", "A", t(17), t(27))).toBe(false);
  });

  it("accepts a signed read's nonce once, and forgets it once it has expired", async () => {
    const s = await open();
    const t = (sec: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, sec)).toISOString();
    expect(await s.acceptReadNonce("alice", "a".repeat(32), t(60))).toBe(true);
    expect(await s.acceptReadNonce("alice", "a".repeat(32), t(60))).toBe(false);
    expect(await s.acceptReadNonce("bob", "a".repeat(32), t(60))).toBe(true); // per sender
    await s.purgeReadNonces(t(59));
    expect(await s.acceptReadNonce("alice", "a".repeat(32), t(60))).toBe(false); // not expired yet
    await s.purgeReadNonces(t(61));
    expect(await s.acceptReadNonce("alice", "a".repeat(32), t(120))).toBe(true);
  });

  it("lists one requester's requests only", async () => {
    const s = await open();
    const mine = request({ requester: "dev" });
    await s.transaction(async (tx) => {
      await tx.insertRequest(mine);
      await tx.insertRequest(request({ requester: "other" }));
    });
    expect((await s.listRequests({ requester: "dev" })).map((r) => r.id)).toEqual([mine.id]);
    expect(await s.listRequests({})).toHaveLength(2);
  });
});

const pgKinds = (await storeKinds("store contract, two replicas")).filter((k) => k.name === "postgres");
describe.skipIf(pgKinds.length === 0)("two stores on one PostgreSQL database (replicas)", () => {
  const opened: SqlStore[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  });
  const pair = async () => {
    const url = await pgKinds[0]!.location();
    const a = await openStore(url);
    const b = await openStore(url);
    opened.push(a, b);
    return [a, b] as const;
  };

  it("serializes write transactions across replicas (one writer at a time)", async () => {
    const [a, b] = await pair();
    const order: string[] = [];
    let releaseA!: () => void;
    const aHolds = new Promise<void>((r) => (releaseA = r));
    let aStarted!: () => void;
    const started = new Promise<void>((r) => (aStarted = r));
    const ta = a.transaction(async (tx) => {
      order.push("a-start");
      aStarted();
      await aHolds;
      await tx.setMeta("k", "a");
      order.push("a-end");
    });
    await started;
    const tb = b.transaction(async (tx) => {
      order.push("b-start");
      await tx.setMeta("k", "b");
    });
    await tick();
    await tick();
    expect(order).toEqual(["a-start"]); // b waits for a's lock
    releaseA();
    await Promise.all([ta, tb]);
    expect(order).toEqual(["a-start", "a-end", "b-start"]);
    expect(await a.getMeta("k")).toBe("b");
  });

  it("gives intake numbers that never collide or go backwards across replicas", async () => {
    const [a, b] = await pair();
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const r = request();
        ids.push(r.id);
        return (i % 2 ? a : b).transaction((tx) => tx.insertRequest(r));
      }),
    );
    const all = await a.listRequestsAfter("pending", 0, 100);
    expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(new Set(all.map((r) => r.id))).toEqual(new Set(ids));
  });

  it("wakes subscribers on every replica (LISTEN/NOTIFY), after the commit", async () => {
    const [a, b] = await pair();
    const onB: string[] = [];
    const onA: string[] = [];
    b.subscribe((t) => onB.push(t));
    a.subscribe((t) => onA.push(t));
    await a.transaction(async (tx) => {
      await tx.publish("request:1");
      await tx.publish("*");
    });
    await b.publish("request:2");
    await vi_waitFor(() => onB.length >= 3 && onA.length >= 3);
    expect(onB).toEqual(["request:1", "*", "request:2"]);
    expect(onA).toEqual(["request:1", "*", "request:2"]);
  });

  it("records a signed read's nonce once across replicas, without waiting for the write lock", async () => {
    const [a, b] = await pair();
    const expires = new Date(Date.now() + 60_000).toISOString();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const hasLock = new Promise<void>((r) => (locked = r));
    const writer = a.transaction(async (tx) => {
      await tx.setMeta("k", "held");
      locked();
      await held;
    });
    await hasLock;
    // Replica a holds the advisory write lock: b's nonce insert does not wait for it.
    expect(await b.acceptReadNonce("alice", "b".repeat(32), expires)).toBe(true);
    expect(await a.acceptReadNonce("alice", "b".repeat(32), expires)).toBe(false);
    release();
    await writer;
  });

  it("lets one replica hold a lease while the other is refused", async () => {
    const [a, b] = await pair();
    const now = new Date().toISOString();
    const later = new Date(Date.now() + 60_000).toISOString();
    const results = await Promise.all([
      a.claimLease("crl", "A", now, later),
      b.claimLease("crl", "B", now, later),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});

describe("redactLocation", () => {
  it("shows user, host and database of a PostgreSQL URL, never a password or query parameter", () => {
    expect(redactLocation("postgres://tca:s3cret@db.example:5433/ca")).toBe(
      "postgres://tca@db.example:5433/ca",
    );
    expect(redactLocation("postgresql://tca@db/ca?password=s3cret&sslmode=require")).toBe(
      "postgres://tca@db/ca",
    );
    expect(redactLocation("postgres:///ca?host=/run/postgresql&password=s3cret")).not.toContain("s3cret");
    expect(redactLocation("/var/lib/tca/tca.db")).toBe("/var/lib/tca/tca.db");
  });
});

/** Polls a condition until it holds (no timed assertion: the test timeout is the only bound). */
async function vi_waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await tick();
}
