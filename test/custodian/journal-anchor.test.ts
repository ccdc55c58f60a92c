// The journal's head anchored in the keystore (docs/journal.md): deleting, truncating, rewriting or
// tearing the journal, or rolling the anchor back with it, is refused naming the file, the line and
// what is missing; `tca custodian journal recover` brings the custodian back. Real files throughout.
import { afterAll, describe, expect, it } from "vitest";
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustodianHome } from "../../src/custodian/home.ts";
import { decisionsMissingFrom, Journal, type NewEntry } from "../../src/custodian/journal.ts";
import { readKeystore, writeKeystore } from "../../src/custodian/keystore.ts";
import { generateIdentity, publicIdentity } from "../../src/protocol/identity.ts";

const PASS = "correct horse battery";
const FAST = { scryptN: 2 ** 14 };
const TCA_BIN = fileURLToPath(new URL("../../bin/tca.js", import.meta.url));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const H = (c: string) => c.repeat(64);
const sig = (serial: string, job = `job-${serial}`): NewEntry => ({
  kind: "signature",
  requestId: `r-${serial}`,
  tbsSha256: H("a"),
  serial,
  jobId: job,
  attempt: 0,
});

async function custodian(entries = 3) {
  const dir = mkdtempSync(join(tmpdir(), "tca-anchor-"));
  dirs.push(dir);
  const home = new CustodianHome(dir);
  await home.init("alice", PASS, FAST);
  const secrets = await home.open(PASS);
  const secret = new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url"));
  const open = () => home.openJournal(secrets, PASS);
  const j = await open();
  for (let i = 0; i < entries; i++) j.append(secret, sig(`0${i + 1}`));
  return { dir, home, secret, open, j, path: home.journalPath };
}
const lines = (path: string) => readFileSync(path, "utf8").split("\n").filter(Boolean);
const anchorOf = (home: CustodianHome) =>
  (
    JSON.parse(readFileSync(home.keystorePath, "utf8")) as {
      journalAnchor?: { seq: number; counter: number };
    }
  ).journalAnchor;

describe("journal anchored in the keystore", () => {
  it("anchors every append before it returns (signed head, counter up by one), and an intact journal verifies", async () => {
    const { home, j, secret } = await custodian(0);
    expect(anchorOf(home)).toMatchObject({ seq: 0, counter: 0 });
    j.append(secret, sig("01"));
    expect(anchorOf(home)).toMatchObject({ seq: 1, counter: 1 });
    j.appendMany(secret, [sig("02"), sig("03")]);
    expect(anchorOf(home)).toMatchObject({ seq: 3, counter: 2 });
    const again = home.journal();
    expect(again.nextSeq).toBe(3);
    expect(again.hasSignedSerial("02")).toBe(true);
  });

  it("refuses a journal deleted while the custodian was stopped, saying how many entries are missing", async () => {
    const { home, open, path } = await custodian(3);
    unlinkSync(path);
    await expect(open()).rejects.toThrow(
      `journal ${path} is missing but the keystore's anchor says 3 entries were written: 3 entries are missing`,
    );
    expect(() => home.journal()).toThrow(/3 entries are missing/);
  });

  it("refuses a journal truncated at a line boundary while stopped, naming file, line and the gap", async () => {
    const { open, path } = await custodian(5);
    writeFileSync(path, lines(path).slice(0, 2).join("\n") + "\n");
    await expect(open()).rejects.toThrow(
      `journal ${path} ends at entry 2 (line 2) but the keystore's anchor says 5 entries were written: 3 entries are missing`,
    );
  });

  it("refuses, for good, a journal truncated or deleted while running (does not keep appending to the cut file)", async () => {
    const { j, path, secret } = await custodian(3);
    const full = readFileSync(path);
    writeFileSync(path, lines(path)[0] + "\n");
    expect(() => j.hasSignedSerial("01")).toThrow(
      new RegExp(`journal ${path} shrank from \\d+ to \\d+ bytes while`),
    );
    expect(() => j.append(secret, sig("04"))).toThrow(/shrank/);
    writeFileSync(path, full); // even put back, this process no longer trusts its view
    expect(() => j.approvalFor("r", H("a"))).toThrow(/shrank/);
    expect(lines(path)).toHaveLength(3);

    const other = await custodian(2);
    unlinkSync(other.path);
    expect(() => other.j.hasSignedSerial("01")).toThrow(
      /was deleted while this custodian was running \(it held 2 entries\)/,
    );
  });

  it("refuses a journal rewritten while running (same length or longer, other lines)", async () => {
    const { j, path, secret } = await custodian(2);
    const [first] = lines(path);
    const b = await custodian(3); // another custodian's valid lines of the same shape
    writeFileSync(path, [first, ...lines(b.path).slice(1)].join("\n") + "\n");
    expect(() => j.append(secret, sig("09"))).toThrow(/rewritten while this custodian was running: line 2/);
  });

  it("a torn last line past the anchored head never left: refused with file and line, dropped by recover --drop-torn-tail", async () => {
    const { home, open, path, secret } = await custodian(3);
    // A crash in the middle of the fourth append: half a line, no newline, anchor not yet moved.
    const scratch = join(home.dir, "scratch.jsonl");
    copyFileSync(path, scratch);
    new Journal(scratch, Buffer.from(home.identity().signingKey, "base64url")).append(secret, sig("04"));
    const fourth = lines(scratch)[3]!;
    unlinkSync(scratch);
    appendFileSync(path, fourth.slice(0, 100));
    const msg = `journal ${path} line 4 is incomplete (100 bytes, no newline, not JSON): the last write was interrupted. It is past the anchored head (3 entries), so it never left this custodian`;
    await expect(open()).rejects.toThrow(msg);
    await expect(home.recoverJournal(PASS, {})).rejects.toThrow(/--drop-torn-tail/);
    const r = await home.recoverJournal(PASS, { dropTornTail: true });
    expect(r).toMatchObject({ action: "dropped-torn-tail", entries: 3, anchoredSeq: 3 });
    expect(readFileSync(r.movedTo!, "utf8")).toBe(fourth.slice(0, 100));
    const j = await open();
    expect(j.hasSignedSerial("03")).toBe(true);
    j.append(secret, sig("04"));
    expect(anchorOf(home)).toMatchObject({ seq: 4 });
  });

  it("a torn line the anchor covers did leave: refused, and not dropped", async () => {
    const { home, open, path } = await custodian(3);
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.slice(0, text.length - 40)); // cut inside line 3
    await expect(open()).rejects.toThrow(
      `journal ${path} line 3 is incomplete (${Buffer.byteLength(lines(path)[2]!)} bytes, no newline, not JSON): the last write was interrupted. The keystore's anchor says 3 entries were written, so it did leave: refusing to drop it`,
    );
    await expect(home.recoverJournal(PASS, { dropTornTail: true })).rejects.toThrow(/--accept-loss/);
  });

  it("refuses an anchor rolled back together with the journal while running, a removed anchor, and a forged one", async () => {
    const { home, j, path, secret, open } = await custodian(1);
    const ks = readFileSync(home.keystorePath);
    const journal = readFileSync(path);
    j.appendMany(secret, [sig("02"), sig("03")]);
    expect(j.hasSignedSerial("03")).toBe(true);
    // A snapshot of both files from before the last two entries, put back under the running custodian.
    writeFileSync(path, journal);
    writeFileSync(home.keystorePath, ks);
    expect(() => j.hasSignedSerial("03")).toThrow(/shrank from \d+ to \d+ bytes/);
    // The keystore alone put back (journal intact): its anchor went back.
    const a = await custodian(1);
    const aks = readFileSync(a.home.keystorePath);
    a.j.appendMany(a.secret, [sig("02"), sig("03")]);
    writeFileSync(a.home.keystorePath, aks);
    expect(() => a.j.hasSignedSerial("03")).toThrow(
      `the journal anchor in ${a.home.keystorePath} went back from 3 entries (anchor #2) to 1 entries (anchor #1) while this custodian was running`,
    );

    const b = await custodian(2);
    const running = b.j;
    const k = JSON.parse(readFileSync(b.home.keystorePath, "utf8")) as Record<string, unknown>;
    delete k.journalAnchor;
    writeFileSync(b.home.keystorePath, JSON.stringify(k));
    await expect(b.open()).rejects.toThrow(
      `${b.home.keystorePath} holds no journal anchor, but this custodian has anchored`,
    );
    expect(() => running.hasSignedSerial("01")).toThrow(/holds no journal anchor/);
    unlinkSync(b.path); // and with the journal gone as well: still refused, the encrypted part says it was anchored
    await expect(b.open()).rejects.toThrow(/holds no journal anchor/);

    const c = await custodian(2);
    const forged = JSON.parse(readFileSync(c.home.keystorePath, "utf8")) as {
      journalAnchor: { seq: number };
    };
    forged.journalAnchor.seq = 1;
    writeFileSync(c.home.keystorePath, JSON.stringify(forged));
    await expect(c.open()).rejects.toThrow(/journal anchor in .* has a bad signature/);
    void open;
  });

  it("a keystore from before anchoring reads, is anchored on first unlock and marked, so a removed anchor is refused after", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tca-anchor-old-"));
    dirs.push(dir);
    const home = new CustodianHome(dir);
    const id = generateIdentity("bob");
    await writeKeystore(home.keystorePath, PASS, { identity: id }, FAST);
    writeFileSync(home.identityPath, JSON.stringify(publicIdentity(id)));
    const secret = new Uint8Array(Buffer.from(id.signingSecret, "base64url"));
    const old = new Journal(home.journalPath, Buffer.from(publicIdentity(id).signingKey, "base64url"));
    old.appendMany(secret, [sig("01"), sig("02")]);
    const before = await home.open(PASS);
    expect(before.journalAnchored).toBeUndefined();
    const j = await home.openJournal(before, PASS);
    expect(j.hasSignedSerial("02")).toBe(true);
    expect(anchorOf(home)).toMatchObject({ seq: 2 });
    const after = await readKeystore(home.keystorePath, PASS);
    expect(after.journalAnchored).toBe(true);
    const k = JSON.parse(readFileSync(home.keystorePath, "utf8")) as Record<string, unknown>;
    delete k.journalAnchor;
    writeFileSync(home.keystorePath, JSON.stringify(k));
    await expect(home.openJournal(await home.open(PASS), PASS)).rejects.toThrow(/holds no journal anchor/);
  });

  it("recover refuses without --accept-loss; with it, starts a new anchored segment recording the loss and rebuilt serials and CRL", async () => {
    const { home, open, path, secret } = await custodian(5);
    writeFileSync(path, lines(path).slice(0, 2).join("\n") + "\n");
    await expect(home.recoverJournal(PASS, {})).rejects.toThrow(
      /3 entries are missing[\s\S]*--accept-loss to start a new journal segment/,
    );
    const r = await home.recoverJournal(PASS, {
      acceptLoss: true,
      records: {
        issued: async () => [
          { id: "r-05", serial: "05", tbsSha256: H("a") },
          { id: "r-01", serial: "01", tbsSha256: H("a") },
        ],
        crl: async () => ({ number: 7n, serials: ["0c"] }),
      },
    });
    expect(r).toMatchObject({ action: "recovered", lost: 3, carriedOver: 2, fromCoordinator: 2 });
    expect(existsSync(r.movedTo!)).toBe(true);
    expect(readdirSync(home.dir).some((f) => f.startsWith("journal.jsonl.damaged-"))).toBe(true);
    const first = JSON.parse(lines(path)[0]!) as { kind: string; seq: number; lost: number; note: string };
    expect(first).toMatchObject({ kind: "recovery", seq: 5, lost: 3 });
    expect(first.note).toMatch(
      /recovered at seq 5 after .* 3 entries lost; 2 carried over from the damaged file, 2 rebuilt/,
    );

    const j = await open();
    expect(j.hasSignedSerial("01")).toBe(true); // carried over
    expect(j.hasSignedSerial("05")).toBe(true); // from the coordinator: never signed again
    expect(j.serialConflict("05", H("a"), "job-05")).toMatch(/already signed serial 05/);
    expect(j.hasSignedSerial("03")).toBe(false); // lost, and the coordinator did not list it
    expect(j.lastCrl()).toMatchObject({ number: 7n, serials: ["0c"] });
    expect(j.crlConflict(7n, H("b"), "crl-job")).toMatch(/already signed CRL number 7/);
    expect(j.nextSeq).toBe(5 + 1 + 4);
    j.append(secret, sig("0a"));
    expect(anchorOf(home)).toMatchObject({ seq: 11 });
    expect(home.journal().nextSeq).toBe(11);
    // Truncating the new segment is caught like any other.
    writeFileSync(path, lines(path).slice(0, 3).join("\n") + "\n");
    await expect(open()).rejects.toThrow(
      /ends at entry 8 \(line 3\) but the keystore's anchor says 11 entries were written: 3 entries are missing/,
    );
  });

  it("a journal and keystore restored together from a backup look whole at start; the coordinator's record of decisions shows the rollback, and recover starts over", async () => {
    const { home, open, secret } = await custodian(0);
    const approve = (id: string): NewEntry => ({
      kind: "approval",
      requestId: id,
      tbsSha256: H("b"),
      decision: "approve",
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const j = await open();
    j.append(secret, approve("req-1"));
    const backup = { ks: readFileSync(home.keystorePath), journal: readFileSync(home.journalPath) };
    j.appendMany(secret, [approve("req-2"), approve("req-3")]);
    writeFileSync(home.journalPath, backup.journal);
    writeFileSync(home.keystorePath, backup.ks);
    const restored = await open(); // nothing local can tell
    const at = new Date().toISOString();
    const views = ["req-1", "req-2", "req-3"].map((id) => ({
      id,
      approvals: [
        { custodian: "alice", decision: "approve", at },
        { custodian: "bob", decision: "approve", at },
      ],
    }));
    expect(decisionsMissingFrom(restored, "alice", views).map((m) => m.requestId)).toEqual([
      "req-2",
      "req-3",
    ]);
    const r = await home.recoverJournal(PASS, {
      acceptLoss: true,
      rolledBack: { message: "the coordinator records 2 decisions the journal does not hold", lost: 2 },
    });
    expect(r).toMatchObject({ action: "recovered", lost: 2, carriedOver: 1 });
    const after = await open();
    expect(after.decisionOn("req-1")).toBeDefined();
    expect(decisionsMissingFrom(after, "alice", views)).toEqual([]); // accepted as lost, before the recovery
  });

  it("tca custodian journal verify exits 0 when intact and 3 when refused; recover --accept-loss --offline brings it back", async () => {
    const { dir, path } = await custodian(4);
    const tca = (...args: string[]) => {
      const r = spawnSync(process.execPath, [TCA_BIN, "custodian", "journal", ...args, "--home", dir], {
        encoding: "utf8",
        env: { ...process.env, TCA_PASSPHRASE: PASS },
      });
      return { status: r.status, out: r.stdout, err: r.stderr };
    };
    const ok = tca("verify");
    expect(ok.status, ok.err).toBe(0);
    expect(ok.out).toMatch(/4 entries \(seq 0\.\.3\), chain and signatures intact/);
    truncateSync(path, readFileSync(path, "utf8").indexOf("\n") + 1);
    const bad = tca("verify");
    expect(bad.status).toBe(3);
    expect(bad.err).toContain(
      `journal ${path} ends at entry 1 (line 1) but the keystore's anchor says 4 entries were written: 3 entries are missing`,
    );
    const refused = tca("recover");
    expect(refused.status).toBe(3);
    expect(refused.err).toMatch(/--accept-loss/);
    const rec = tca("recover", "--accept-loss", "--offline");
    expect(rec.status, rec.err).toBe(0);
    expect(rec.err).toMatch(/WARNING: --accept-loss/);
    expect(rec.out).toMatch(/recovered .* at seq 4: 3 entries lost, 1 carried over, 0 rebuilt/);
    const after = tca("verify", "--json");
    expect(after.status, after.err).toBe(0);
    expect(JSON.parse(after.out)).toMatchObject({ firstSeq: 4, nextSeq: 6, recovery: { seq: 4, lost: 3 } });
  });
});
