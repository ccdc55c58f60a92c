// The SQLite store: migrations, the uniqueness rules that make replays and double messages fail,
// and exclusive(): one writer at a time, all or nothing.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/coordinator/store/sqlite.ts";
import type { MessageRecord } from "../../src/coordinator/store/types.ts";

const dir = mkdtempSync(join(tmpdir(), "tca-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open = (name: string) => new SqliteStore(join(dir, name));
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

describe("SqliteStore", () => {
  it("migrates a new database and opens it again without re-applying anything", async () => {
    const a = open("m.db");
    await a.setMeta("k", "v");
    await a.close();
    const b = open("m.db");
    expect(await b.getMeta("k")).toBe("v");
    await b.close();
  });

  it("refuses a replayed message id and a second message per sender, stage and attempt", async () => {
    const s = open("u.db");
    expect(await s.insertMessage(msg({}))).toBe(true);
    expect(await s.insertMessage(msg({}))).toBe(false); // same id
    expect(await s.insertMessage(msg({ id: "m2", recipient: "*" }))).toBe(false); // same sender/stage/attempt
    expect(await s.insertMessage(msg({ id: "m3", attempt: 1 }))).toBe(true);
    expect(await s.insertMessage(msg({ id: "m4", sender: "bob" }))).toBe(true);
    expect((await s.listMessages("job", "sign/commitment", 0)).map((m) => m.sender)).toEqual([
      "alice",
      "bob",
    ]);
    await s.close();
  });

  it("exclusive() rolls everything back when its function throws", async () => {
    const s = open("t.db");
    await expect(
      s.exclusive(async () => {
        await s.setMeta("half", "done");
        await s.insertMessage(msg({ id: "x1" }));
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect(await s.getMeta("half")).toBeUndefined();
    expect(await s.listMessages("job", "sign/commitment")).toEqual([]);
    await s.exclusive(async () => s.setMeta("whole", "done"));
    expect(await s.getMeta("whole")).toBe("done");
    await s.close();
  });

  it("runs exclusive() calls one after another, and refuses a nested call instead of deadlocking", async () => {
    const s = open("q.db");
    const order: string[] = [];
    await Promise.all(
      ["a", "b", "c"].map((n) =>
        s.exclusive(async () => {
          order.push(`${n}-start`);
          await new Promise((r) => setTimeout(r, 5));
          order.push(`${n}-end`);
        }),
      ),
    );
    expect(order).toEqual(["a-start", "a-end", "b-start", "b-end", "c-start", "c-end"]);
    await expect(s.exclusive(async () => s.exclusive(async () => 1))).rejects.toThrow(/inside exclusive/);
    await s.close();
  });
});
