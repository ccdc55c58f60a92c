// The change feed of one replica: keyed waiters wake only for their key, and everyone wakes when
// notifications may have been lost (the database listener reconnected).
import { describe, expect, it } from "vitest";
import { ChangeFeed } from "../../src/coordinator/feed.ts";

describe("ChangeFeed", () => {
  it("wakes a keyed waiter for its own key only", async () => {
    const feed = new ChangeFeed();
    let woke = false;
    const waiting = feed.waitFor("request:a", feed.mark("request:a"), 60_000).then(() => (woke = true));
    feed.notify("request:b");
    await new Promise((r) => setTimeout(r, 20));
    expect(woke).toBe(false);
    feed.notify("request:a");
    await waiting;
    expect(woke).toBe(true);
  });

  it("wakes keyed and unkeyed waiters alike on wakeAll, also one that marked just before", async () => {
    const feed = new ChangeFeed();
    const mark = feed.mark("request:a");
    const seq = feed.seq;
    feed.wakeAll();
    await new Promise((r) => setImmediate(r));
    // The wake-up came between mark and waitFor: waitFor must not sleep through it.
    await feed.waitFor("request:a", mark, 60_000);
    expect(await feed.wait(seq, 60_000)).toBeGreaterThan(seq);
    const later = feed.waitFor("request:b", feed.mark("request:b"), 60_000);
    feed.wakeAll();
    await later;
  });
});
