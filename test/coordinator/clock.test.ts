// Replicas keep one clock, the database's: the offset is measured over a round trip and applied to
// every time the coordinator reads (src/coordinator/clock.ts).
import { afterEach, describe, expect, it } from "vitest";
import { clock, followDatabaseClock } from "../../src/coordinator/clock.ts";

afterEach(async () => {
  await followDatabaseClock(async () => Date.now()); // back to this machine's clock
});

describe("coordinator clock", () => {
  it("follows a database clock a minute ahead, to within the round trip", async () => {
    const offset = await followDatabaseClock(async () => Date.now() + 60_000);
    expect(Math.abs(offset - 60_000)).toBeLessThan(100);
    expect(Math.abs(clock.now() - Date.now() - 60_000)).toBeLessThan(100);
    expect(Math.abs(Date.parse(clock.iso()) - Date.now() - 60_000)).toBeLessThan(100);
  });

  it("ignores a sample whose round trip says too little, and SQLite's null (one machine)", async () => {
    await followDatabaseClock(async () => Date.now() - 5_000);
    const slow = await followDatabaseClock(async () => {
      await new Promise((r) => setTimeout(r, 150));
      return Date.now() + 3_600_000;
    });
    expect(Math.abs(slow + 5_000)).toBeLessThan(100);
    expect(Math.abs((await followDatabaseClock(async () => null)) + 5_000)).toBeLessThan(100);
  });
});
