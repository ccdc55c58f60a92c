// The store contract, on every database tca runs on (SQLite in memory and on disk, PostgreSQL):
// migrations, the uniqueness rules that make replays and double messages fail, transactions (one
// writer at a time across replicas, all or nothing, savepoints per batch item), partial updates,
// intake order, shared liveness and leases, and change notifications that follow commits.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/coordinator/store/open.ts";
import type { SqlStore } from "../../src/coordinator/store/sql-store.ts";
import type { MessageRecord, RequestRecord, SigningJobRecord } from "../../src/coordinator/store/types.ts";
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
    createdAt: now,
    updatedAt: now,
    ...o,
  };
};
const job = (id: string): SigningJobRecord => ({
  id,
  kind: "leaf",
  subjectRef: "r1",
  tbs: new Uint8Array([0, 255, 7]),
  params: "{}",
  eligible: ["alice", "bob"],
  status: "signing",
  attempt: 0,
  signingPackage: null,
  excluded: [],
  events: "[]",
  signature: null,
  createdAt: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
});
const tick = () => new Promise((r) => setTimeout(r, 20));

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
    await Promise.all([
      s.updateSigningJob("j2", { attempt: 3 }),
      s.updateSigningJob("j2", { events: "[1]" }),
    ]);
    const j = await s.getSigningJob("j2");
    expect([j?.attempt, j?.events]).toEqual([3, "[1]"]);
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

/** Polls a condition until it holds (no timed assertion: the test timeout is the only bound). */
async function vi_waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await tick();
}
