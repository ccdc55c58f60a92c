// The custodian's signed journal (docs/journal.md; docs/architecture.md §3.2, §3.9): what it approved and
// signed, hash-chained and signed; the record behind "never the same serial twice" and "CRLs only grow".
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { Journal } from "../../src/custodian/journal.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const secret = randomBytes(32);
const pub = ed25519.getPublicKey(secret);
function fresh(): { path: string; j: Journal } {
  const d = mkdtempSync(join(tmpdir(), "tca-journal-"));
  dirs.push(d);
  const path = join(d, "journal.jsonl");
  return { path, j: new Journal(path, pub) };
}
const H = (c: string) => c.repeat(64);

describe("custodian journal", () => {
  it("refuses a serial already signed for another TBS or job, allows a re-formed attempt of the same job", () => {
    const { j } = fresh();
    j.append(secret, {
      kind: "signature",
      requestId: "r1",
      tbsSha256: H("a"),
      serial: "0a0b",
      jobId: "job-1",
      attempt: 0,
    });
    expect(j.hasSignedSerial("0a0b")).toBe(true);
    expect(j.serialConflict("0a0b", H("a"), "job-1")).toBeUndefined();
    expect(j.serialConflict("0a0b", H("b"), "job-1")).toMatch(/already signed serial 0a0b/);
    expect(j.serialConflict("0a0b", H("a"), "job-2")).toMatch(/already signed serial 0a0b/);
    expect(j.serialConflict("0c0d", H("c"), "job-3")).toBeUndefined();
  });

  it("caps how many attempts of one job it signs", () => {
    const { j } = fresh();
    for (let a = 0; a < 8; a++)
      j.append(secret, {
        kind: "signature",
        requestId: "r",
        tbsSha256: H("a"),
        serial: "01",
        jobId: "job",
        attempt: a,
      });
    expect(j.serialConflict("01", H("a"), "job")).toMatch(/refusing more/);
  });

  it("finds only unexpired approvals of exactly this TBS", () => {
    const { j } = fresh();
    j.append(secret, {
      kind: "approval",
      requestId: "r1",
      tbsSha256: H("a"),
      decision: "approve",
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    j.append(secret, {
      kind: "approval",
      requestId: "r2",
      tbsSha256: H("b"),
      decision: "approve",
      expiresAt: new Date(Date.now() - 1).toISOString(),
    });
    expect(j.approvalFor("r1", H("a"))).toBeDefined();
    expect(j.approvalFor("r1", H("c"))).toBeUndefined();
    expect(j.approvalFor("r2", H("b"))).toBeUndefined();
    expect(j.approvalFor("r1", H("a"), Date.now() + 120_000)).toBeUndefined();
  });

  it("sees lines another process appended, and refuses a tampered or reordered log", () => {
    const { path, j } = fresh();
    const other = new Journal(path, pub);
    other.append(secret, {
      kind: "approval",
      requestId: "r9",
      tbsSha256: H("9"),
      decision: "approve",
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(j.approvalFor("r9", H("9"))).toBeDefined();
    j.append(secret, {
      kind: "signature",
      requestId: "r9",
      tbsSha256: H("9"),
      serial: "09",
      jobId: "j9",
      attempt: 0,
    });
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.replace('"serial":"09"', '"serial":"08"'));
    expect(() => new Journal(path, pub)).toThrow(/broken at line 2/);
    const lines = text.trim().split("\n");
    writeFileSync(path, [lines[1], lines[0]].join("\n") + "\n");
    expect(() => new Journal(path, pub)).toThrow(/broken at line 1/);
    expect(() => new Journal(path, ed25519.getPublicKey(randomBytes(32)))).toThrow(/broken/);
  });

  it("remembers the highest CRL it signed and its serials", () => {
    const { j } = fresh();
    expect(j.lastCrl()).toBeUndefined();
    j.append(secret, {
      kind: "crl",
      requestId: "crl-1",
      tbsSha256: H("1"),
      crlNumber: "1",
      serials: [],
      jobId: "c1",
    });
    j.append(secret, {
      kind: "crl",
      requestId: "crl-2",
      tbsSha256: H("2"),
      crlNumber: "2",
      serials: ["0a"],
      jobId: "c2",
    });
    expect(j.lastCrl()).toMatchObject({ number: 2n, serials: ["0a"] });
    expect(j.crlConflict(2n, H("3"), "c3")).toMatch(/already signed CRL number 2/);
  });
});
