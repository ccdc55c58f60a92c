// The certificate inventory below HTTP (docs/inventory.md), on SQLite and PostgreSQL: the columns
// read from each stored certificate, every filter, both sorts in both directions, keyset pages that
// neither repeat nor skip (also while certificates are issued between pages), statuses judged by the
// coordinator clock (moved by the test for "expired"), a requester's scope, cursors tied to their
// query, and migration 0006 filling the columns of certificates issued before it.
import "reflect-metadata";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { webcrypto } from "node:crypto";
import Sqlite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import * as x509 from "@peculiar/x509";
import { isPostgresUrl, openStore } from "../../src/coordinator/store/open.ts";
import { migrations } from "../../src/coordinator/store/migrations.ts";
import type { Database } from "../../src/coordinator/store/schema.ts";
import type { SqlStore } from "../../src/coordinator/store/sql-store.ts";
import type { CertificateQuery, RequestRecord } from "../../src/coordinator/store/types.ts";
import { CertificateInventory } from "../../src/coordinator/inventory.ts";
import { clock } from "../../src/coordinator/clock.ts";
import { CoordinatorError } from "../../src/coordinator/errors.ts";
import { storeKinds } from "../helpers/stores.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const dir = mkdtempSync(join(tmpdir(), "tca-inventory-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Spec {
  cn: string;
  sans: string[];
  requester: string;
  profile: string;
  /** Days from 2030-01-01 to notAfter. */
  days: number;
}
/** Twelve certificates: two requesters, two profiles, notAfter spread over 2030. */
const SPECS: Spec[] = [
  {
    cn: "api.example.internal",
    sans: ["api.example.internal", "10.0.0.1"],
    requester: "svc",
    profile: "server",
    days: 30,
  },
  { cn: "db.example.internal", sans: ["db.example.internal"], requester: "svc", profile: "server", days: 10 },
  {
    cn: "Cache.Example.Internal",
    sans: ["cache.example.internal"],
    requester: "ops",
    profile: "server",
    days: 50,
  },
  { cn: "worker-1", sans: ["worker-1.jobs.internal"], requester: "ops", profile: "client", days: 5 },
  { cn: "worker-2", sans: ["worker-2.jobs.internal"], requester: "ops", profile: "client", days: 70 },
  {
    cn: "100%_literal.internal",
    sans: ["100%_literal.internal"],
    requester: "svc",
    profile: "server",
    days: 90,
  },
  { cn: "=cmd|calc", sans: ["formula.example.internal"], requester: "svc", profile: "client", days: 20 },
  {
    cn: "mail.example.internal",
    sans: ["mail.example.internal", "postmaster@example.internal"],
    requester: "svc",
    profile: "server",
    days: 60,
  },
  { cn: "a.example.internal", sans: ["a.example.internal"], requester: "ops", profile: "server", days: 40 },
  { cn: "b.example.internal", sans: ["b.example.internal"], requester: "ops", profile: "server", days: 40 },
  { cn: "c.example.internal", sans: ["c.example.internal"], requester: "svc", profile: "server", days: 40 },
  { cn: "d.example.internal", sans: ["d.example.internal"], requester: "svc", profile: "server", days: 80 },
];
const BASE = Date.parse("2030-01-01T00:00:00.000Z");
const at = (days: number) => new Date(BASE + days * 86_400_000).toISOString();

let keys: CryptoKeyPair;
beforeAll(async () => {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
});

let n = 0;
/** A certificate (self-signed: the inventory reads its fields, not its issuer) and its request row. */
async function made(spec: Spec): Promise<{ record: Omit<RequestRecord, "seq">; der: Uint8Array }> {
  n += 1;
  const serial = (0x40 + (n % 0x3f)).toString(16) + n.toString(16).padStart(16, "0");
  const notAfter = new Date(at(spec.days));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name: `CN=${spec.cn}`,
    notBefore: new Date(BASE - 86_400_000),
    notAfter,
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        spec.sans.map((v) =>
          /^\d/.test(v) && /^[\d.]+$/.test(v)
            ? { type: "ip" as const, value: v }
            : v.includes("@")
              ? { type: "email" as const, value: v }
              : { type: "dns" as const, value: v },
        ),
      ),
    ],
  });
  const now = new Date().toISOString();
  return {
    der: new Uint8Array(cert.rawData),
    record: {
      id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
      requester: spec.requester,
      profile: spec.profile,
      csr: new Uint8Array([1]),
      tbs: new Uint8Array([n & 255, n >> 8]),
      tbsSha256: `tbs-${n}`,
      serial,
      notBefore: new Date(BASE - 86_400_000).toISOString(),
      notAfter: notAfter.toISOString(),
      status: "pending",
      signingJob: null,
      certificate: null,
      outcome: null,
      origin: null,
      createdAt: now,
      updatedAt: now,
    },
  };
}

/** Stores a request, then issues it at `issuedAt` (the coordinator clock, moved for the call). */
async function issue(s: SqlStore, spec: Spec, issuedAt: string): Promise<{ id: string; serial: string }> {
  const { record, der } = await made(spec);
  await s.transaction((tx) => tx.insertRequest(record));
  const spy = vi.spyOn(clock, "iso").mockReturnValue(issuedAt);
  try {
    await s.updateRequest(record.id, { status: "issued", certificate: der });
  } finally {
    spy.mockRestore();
  }
  return { id: record.id, serial: record.serial };
}

function rawDb(location: string): Kysely<Database> {
  return isPostgresUrl(location)
    ? new Kysely<Database>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: location, max: 2 }) }),
      })
    : new Kysely<Database>({ dialect: new SqliteDialect({ database: new Sqlite(location) }) });
}

describe.each(await storeKinds("certificate inventory"))("certificate inventory on $name", (kind) => {
  let s: SqlStore;
  const issued: { id: string; serial: string; spec: Spec; issuedAt: string }[] = [];
  const NOW = at(35); // certificates with days ≤ 35 are expired then
  const q = (o: Partial<CertificateQuery> = {}): CertificateQuery => ({
    now: NOW,
    sort: "issued",
    descending: true,
    limit: 100,
    ...o,
  });

  beforeAll(async () => {
    s = await openStore(await kind.location());
    for (const [i, spec] of SPECS.entries()) {
      // Issue times: one a minute, except two pairs issued in the same millisecond (ties → seq).
      const issuedAt = new Date(
        BASE - 100 * 86_400_000 + (i === 9 || i === 11 ? i - 1 : i) * 60_000,
      ).toISOString();
      issued.push({ ...(await issue(s, spec, issuedAt)), spec, issuedAt });
    }
    // A request that is not issued is not in the inventory.
    const pending = await made(SPECS[0]!);
    await s.transaction((tx) => tx.insertRequest(pending.record));
    // One revocation (of an expired certificate: revoked wins).
    await s.insertRevocation({
      serial: issued[3]!.serial,
      requestId: issued[3]!.id,
      reason: "keyCompromise",
      revokedAt: "2029-12-01T00:00:00.000Z",
      revokedBy: "admin:root",
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  afterEach(() => vi.restoreAllMocks());

  const cns = async (o: Partial<CertificateQuery>) =>
    (await s.listCertificates(q(o))).map((c) => c.subjectCn);

  it("reads subject, CN, SANs, key type and issue time from the stored certificate", async () => {
    const [c] = await s.listCertificates(q({ serial: issued[0]!.serial }));
    expect(c).toMatchObject({
      requestId: issued[0]!.id,
      serial: issued[0]!.serial,
      requester: "svc",
      profile: "server",
      subject: "CN=api.example.internal",
      subjectCn: "api.example.internal",
      sans: [
        { type: "dns", value: "api.example.internal" },
        { type: "ip", value: "10.0.0.1" },
      ],
      keyType: "ec-p256",
      notAfter: at(30),
      issuedAt: issued[0]!.issuedAt,
      revocation: null,
    });
    const revoked = await s.getCertificate(issued[3]!.serial);
    expect(revoked?.revocation).toEqual({ revokedAt: "2029-12-01T00:00:00.000Z", reason: "keyCompromise" });
    expect(revoked?.der.length).toBeGreaterThan(100);
    expect(await s.getCertificate("00ff")).toBeUndefined();
    expect(await s.listCertificates(q())).toHaveLength(SPECS.length); // the pending one is not listed
  });

  it("filters by substring of the CN or any SAN, case-insensitively, with % and _ taken literally", async () => {
    expect(await cns({ search: "cache" })).toEqual(["Cache.Example.Internal"]);
    expect(await cns({ search: "jobs.int" })).toEqual(["worker-2", "worker-1"]);
    expect(await cns({ search: "10.0.0.1" })).toEqual(["api.example.internal"]);
    expect(await cns({ search: "postmaster@" })).toEqual(["mail.example.internal"]);
    expect(await cns({ search: "100%_" })).toEqual(["100%_literal.internal"]);
    expect(await cns({ search: "%" })).toEqual(["100%_literal.internal"]);
    expect(await cns({ search: "_" })).toEqual(["100%_literal.internal"]);
    // Never a match across two names.
    expect(await cns({ search: "internal10" })).toEqual([]);
  });

  it("filters by status at the time given, profile, requester, serial and expiry window", async () => {
    expect((await cns({ status: "revoked" })).sort()).toEqual(["worker-1"]);
    const expired = SPECS.filter((x, i) => i !== 3 && at(x.days) <= NOW).map((x) => x.cn);
    expect((await cns({ status: "expired" })).sort()).toEqual(expired.sort());
    const valid = SPECS.filter((x) => at(x.days) > NOW).map((x) => x.cn);
    expect((await cns({ status: "valid" })).sort()).toEqual(valid.sort());
    // Later, everything not revoked has expired.
    expect(await cns({ status: "valid", now: at(1000) })).toEqual([]);
    expect((await cns({ profile: "client" })).sort()).toEqual(["=cmd|calc", "worker-1", "worker-2"]);
    expect((await cns({ requester: "ops" })).length).toBe(5);
    expect((await cns({ requester: "ops", profile: "client", status: "valid" })).sort()).toEqual([
      "worker-2",
    ]);
    expect(await cns({ serial: issued[5]!.serial })).toEqual(["100%_literal.internal"]);
    expect((await cns({ expiresAfter: at(40), expiresBefore: at(80) })).sort()).toEqual([
      "Cache.Example.Internal",
      "mail.example.internal",
      "worker-2",
    ]);
  });

  it("sorts by issue time or notAfter, either way, ties in intake order", async () => {
    const byIssued = [...issued].sort(
      (a, b) => a.issuedAt.localeCompare(b.issuedAt) || a.id.localeCompare(b.id),
    );
    expect((await s.listCertificates(q({ descending: false }))).map((c) => c.requestId)).toEqual(
      byIssued.map((c) => c.id),
    );
    expect((await s.listCertificates(q())).map((c) => c.requestId)).toEqual(
      byIssued.map((c) => c.id).reverse(),
    );
    const byNotAfter = [...issued].sort((a, b) => a.spec.days - b.spec.days || a.id.localeCompare(b.id));
    expect(
      (await s.listCertificates(q({ sort: "notAfter", descending: false }))).map((c) => c.requestId),
    ).toEqual(byNotAfter.map((c) => c.id));
  });

  it("pages with a keyset cursor: every certificate once, in order, for each sort", async () => {
    for (const [sort, descending] of [
      ["issued", true],
      ["issued", false],
      ["notAfter", true],
      ["notAfter", false],
    ] as const) {
      const whole = (await s.listCertificates(q({ sort, descending }))).map((c) => c.requestId);
      const seen: string[] = [];
      let after: CertificateQuery["after"];
      for (let i = 0; i < 10; i++) {
        const page = await s.listCertificates(q({ sort, descending, limit: 5, ...(after ? { after } : {}) }));
        seen.push(...page.map((c) => c.requestId));
        if (page.length < 5) break;
        const last = page[page.length - 1]!;
        after = { key: sort === "issued" ? last.issuedAt : last.notAfter, seq: last.seq };
      }
      expect(seen, `${sort} ${descending ? "desc" : "asc"}`).toEqual(whole);
    }
  });

  describe("the domain (CertificateInventory)", () => {
    const inv = () => new CertificateInventory(s, async () => null);

    it("pages through everything with opaque cursors, and certificates issued meanwhile shift nothing", async () => {
      vi.spyOn(clock, "iso").mockReturnValue(NOW);
      const first = await inv().list({ limit: 5 });
      expect(first.certificates).toHaveLength(5);
      expect(first.next).toMatch(/^[A-Za-z0-9_-]+$/);
      // Issued now: newer than every page, so it is not on the next pages (newest first).
      vi.restoreAllMocks();
      const late = await issue(
        s,
        {
          ...SPECS[1]!,
          cn: "late.example.internal",
          sans: ["late.example.internal"],
          requester: "late",
          profile: "late",
        },
        at(-1),
      );
      vi.spyOn(clock, "iso").mockReturnValue(NOW);
      const ids = first.certificates.map((c) => c.requestId);
      let next = first.next;
      while (next !== null) {
        const page = await inv().list({ limit: 5, cursor: next });
        ids.push(...page.certificates.map((c) => c.requestId));
        next = page.next;
      }
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.sort()).toEqual(issued.map((c) => c.id).sort());
      // A fresh listing shows it first.
      expect((await inv().list({ limit: 1 })).certificates[0]!.requestId).toBe(late.id);
    });

    it("shows statuses by the coordinator clock, serials in display form, revocations", async () => {
      vi.spyOn(clock, "iso").mockReturnValue(at(0));
      const before = await inv().list({ q: "db.example" });
      expect(before.certificates[0]).toMatchObject({ status: "valid", keyType: "ec-p256" });
      expect(before.certificates[0]!.serial).not.toMatch(/^00/);
      vi.spyOn(clock, "iso").mockReturnValue(at(11));
      expect((await inv().list({ q: "db.example" })).certificates[0]!.status).toBe("expired");
      expect((await inv().list({ status: "expired", q: "db.example" })).certificates).toHaveLength(1);
      const revoked = (await inv().list({ status: "revoked" })).certificates;
      expect(revoked).toEqual([
        expect.objectContaining({
          status: "revoked",
          revokedAt: "2029-12-01T00:00:00.000Z",
          reason: "keyCompromise",
        }),
      ]);
      // Any written form of a serial finds it.
      const serial = issued[2]!.serial;
      expect(
        (await inv().list({ serial: `0x${serial.toUpperCase()}` })).certificates.map((c) => c.requestId),
      ).toEqual([issued[2]!.id]);
      expect((await inv().get(serial.replace(/(..)(?!$)/g, "$1:"))).view.requestId).toBe(issued[2]!.id);
    });

    it("keeps a requester to its own certificates: the requester filter narrows, never widens", async () => {
      const own = await inv().list({}, "ops");
      expect(own.certificates.every((c) => c.requester === "ops")).toBe(true);
      expect(own.certificates).toHaveLength(5);
      expect((await inv().list({ requester: "svc" }, "ops")).certificates).toEqual([]);
      expect((await inv().list({ requester: "ops" }, "ops")).certificates).toHaveLength(5);
      await expect(inv().get(issued[0]!.serial, "ops")).rejects.toMatchObject({ code: "NOT_FOUND" });
      await expect(inv().get(issued[2]!.serial, "ops")).resolves.toBeDefined();
    });

    it("refuses a cursor made for another sort or other filters, or not made here", async () => {
      const page = await inv().list({ limit: 2, profile: "server" });
      const next = page.next!;
      const refused = async (p: Promise<unknown>, pattern: RegExp) => {
        const e = await p.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(CoordinatorError);
        expect((e as CoordinatorError).code).toBe("BAD_REQUEST");
        expect((e as Error).message).toMatch(pattern);
      };
      await refused(inv().list({ limit: 2, profile: "client", cursor: next }), /other filters/);
      await refused(inv().list({ limit: 2, profile: "server", sort: "notAfter", cursor: next }), /sort/);
      await refused(inv().list({ cursor: "bm90LWEtY3Vyc29y" }), /not a cursor/);
      await refused(inv().list({ serial: "xyz" }), /serial/);
      // The same query goes on.
      expect((await inv().list({ limit: 2, profile: "server", cursor: next })).certificates).toHaveLength(2);
    });
  });

  it("migration 0006 fills the columns of certificates issued before it", async () => {
    const location = kind.name === "sqlite" ? join(dir, `m-${Date.now()}.db`) : await kind.location();
    const db = rawDb(location);
    const old = await made(SPECS[2]!);
    try {
      const { error } = await new Migrator({ db, provider: migrations(kind.name) }).migrateTo(
        "0005_read_nonces",
      );
      if (error) throw error;
      const r = old.record;
      await sql`INSERT INTO requests (id, seq, requester, profile, csr, tbs, tbs_sha256, serial, not_before,
                  not_after, status, certificate, created_at, updated_at)
                VALUES (${r.id}, 1, ${r.requester}, ${r.profile}, ${Buffer.from([1])}, ${Buffer.from([2])},
                  ${r.tbsSha256}, ${r.serial}, ${r.notBefore}, ${r.notAfter}, 'issued', ${Buffer.from(old.der)},
                  '2029-01-01T00:00:00.000Z', '2029-01-02T03:04:05.000Z')`.execute(db);
    } finally {
      await db.destroy();
    }
    const migrated = await openStore(location);
    try {
      const [c] = await migrated.listCertificates(q());
      expect(c).toMatchObject({
        requestId: old.record.id,
        subject: "CN=Cache.Example.Internal",
        subjectCn: "Cache.Example.Internal",
        sans: [{ type: "dns", value: "cache.example.internal" }],
        keyType: "ec-p256",
        issuedAt: "2029-01-02T03:04:05.000Z",
      });
      expect(await migrated.listCertificates(q({ search: "CACHE.example" }))).toHaveLength(1);
    } finally {
      await migrated.close();
    }
  });
});
