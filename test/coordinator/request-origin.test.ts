// A request's origin (src/protocol/origin.ts): stored with the request (migration 0009) on every
// database, read back through its schema (a corrupt row is refused, naming it), shown in the view
// and sent to custodians in review items; intake's inTransaction hook commits with the request or
// not at all; an ACME account revokes only certificates its own orders got. A custodian's
// acmeValidated rule, on the TBS it re-derives itself, approves the ACME request.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Migrator } from "kysely";
import type { Database } from "../../src/coordinator/store/schema.ts";
import { migrations } from "../../src/coordinator/store/migrations.ts";
import type { RequestRecord } from "../../src/coordinator/store/types.ts";
import type { RequestOrigin } from "../../src/protocol/origin.ts";
import { ReviewItemSchema } from "../../src/protocol/signing-messages.ts";
import { RequestViewSchema } from "../../src/protocol/views.ts";
import { judge, leafParamsOfItem } from "../../src/custodian/session.ts";
import { evaluatePolicy, PolicySchema } from "../../src/custodian/policy.ts";
import { storeKinds } from "../helpers/stores.ts";
import { approval, exchangeUntil, makeCsr, readyCa, type InProcessCa } from "../helpers/in-process-ca.ts";

const VALIDATED = new Date(Date.now() - 60_000).toISOString();
const origin = (account = "acct-A", names = ["web.example.internal"]): RequestOrigin => ({
  kind: "acme",
  account,
  order: "order-1",
  identifiers: names.map((value) => ({
    type: "dns" as const,
    value,
    challenge: "http-01" as const,
    validatedAt: VALIDATED,
  })),
});

let n = 0;
const record = (o: Partial<RequestRecord> = {}): Omit<RequestRecord, "seq"> => {
  n += 1;
  const now = new Date().toISOString();
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    requester: "acme",
    profile: "server",
    csr: new Uint8Array([1]),
    tbs: new Uint8Array([n & 255, n >> 8]),
    tbsSha256: `tbs-${n}`,
    serial: `serial-${n}`,
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

describe.each(await storeKinds("request origin"))("the origin column on $name", (kind) => {
  it("stores an origin and reads it back; a request without one reads null", async () => {
    const s = await kind.open();
    try {
      const acme = record({ origin: origin() });
      const own = record();
      await s.transaction(async (tx) => {
        await tx.insertRequest(acme);
        await tx.insertRequest(own);
      });
      expect((await s.getRequest(acme.id))?.origin).toEqual(origin());
      expect((await s.getRequest(own.id))?.origin).toBeNull();
      const listed = await s.listRequests({});
      expect(listed.find((r) => r.id === acme.id)?.origin).toEqual(origin());
      expect((await s.listRequestsAfter("pending", 0, 10)).map((r) => r.origin?.account ?? null)).toEqual([
        "acct-A",
        null,
      ]);
    } finally {
      await s.close();
    }
  });

  it("refuses a corrupt origin loudly, naming the row", async () => {
    const s = await kind.open();
    try {
      const a = record({ origin: origin() });
      const b = record({ origin: origin() });
      await s.insertRequest(a);
      await s.insertRequest(b);
      const db = s.queryBuilder<Database>();
      await db.updateTable("requests").set({ origin: "{not json" }).where("id", "=", a.id).execute();
      await db
        .updateTable("requests")
        .set({ origin: JSON.stringify({ ...origin(), identifiers: [] }) })
        .where("id", "=", b.id)
        .execute();
      await expect(s.getRequest(a.id)).rejects.toThrow(
        new RegExp(`corrupt row.*requests\\.origin of ${a.id}: not JSON`),
      );
      await expect(s.getRequest(b.id)).rejects.toThrow(
        new RegExp(`requests\\.origin of ${b.id}.*identifiers`),
      );
      await expect(s.listRequests({})).rejects.toThrow(/corrupt row/);
    } finally {
      await s.close();
    }
  });

  it("migration 0009 adds the column to a database written before it; its requests read null", async () => {
    const s = await kind.open();
    try {
      const db = s.queryBuilder<Database>();
      // Back to 0008 (no down migrations: drop the column by hand and forget the step).
      await db.schema.alterTable("requests").dropColumn("origin").execute();
      await db
        .deleteFrom("kysely_migration" as never)
        .where("name" as never, "=", "0009_request_origin" as never)
        .execute();
      const without = record();
      await db
        .insertInto("requests")
        .values({
          id: without.id,
          seq: 1,
          requester: without.requester,
          profile: without.profile,
          csr: Buffer.from(without.csr),
          tbs: Buffer.from(without.tbs),
          tbs_sha256: without.tbsSha256,
          serial: without.serial,
          not_before: without.notBefore,
          not_after: without.notAfter,
          status: "pending",
          signing_job: null,
          certificate: null,
          outcome: null,
          created_at: without.createdAt,
          updated_at: without.updatedAt,
        } as never)
        .execute();
      // Later steps (0010 …) stay applied, so 0009 now runs out of order.
      const { error } = await new Migrator({
        db,
        provider: migrations(kind.name),
        allowUnorderedMigrations: true,
      }).migrateToLatest();
      expect(error).toBeUndefined();
      expect((await s.getRequest(without.id))?.origin).toBeNull();
    } finally {
      await s.close();
    }
  });
});

describe("an ACME request through intake, views, review and revocation", () => {
  let ca: InProcessCa;
  beforeAll(async () => {
    ca = await readyCa();
  }, 60_000);
  afterAll(async () => {
    await ca?.close();
  });

  const submitAcme = async (account: string, names: string[]) => {
    const r = ca.services.requests;
    return r.submit({
      requester: r.requesterFor("dev"),
      profile: "server",
      csr: await makeCsr(names),
      validityHours: 1,
      origin: origin(account, names),
    });
  };

  it("shows the origin in the view, the list and the review items custodians get", async () => {
    const v = await submitAcme("acct-A", ["web.example.internal"]);
    expect(RequestViewSchema.parse(v).origin).toEqual(origin("acct-A", ["web.example.internal"]));
    const listed = (await ca.services.requests.list("pending")).find((x) => x.id === v.id);
    expect(listed?.origin?.account).toBe("acct-A");
    const own = await ca.services.requests.submit({
      requester: ca.services.requests.requesterFor("dev"),
      profile: "server",
      csr: await makeCsr(["own.example.internal"]),
    });
    expect(own.origin).toBeNull();

    const page = await ca.services.requests.reviewItems("alice", null, 100, Date.now() + 3_600_000);
    const item = ReviewItemSchema.parse(JSON.parse(JSON.stringify(page.items.find((i) => i.id === v.id))));
    expect(item.origin?.order).toBe("order-1");
    expect(page.items.find((i) => i.id === own.id)).not.toHaveProperty("origin");

    // A custodian re-derives the TBS itself; its acmeValidated rule then approves on the origin.
    const caCert = (await ca.services.caCertificate())!;
    const { review } = judge(ca.config, caCert, item, leafParamsOfItem(item), item.tbs);
    expect(review.problem).toBeUndefined();
    const policy = PolicySchema.parse({
      version: 1,
      autoApprove: [
        {
          name: "acme",
          profiles: ["server"],
          names: ["*.example.internal"],
          acmeValidated: true,
          maxValidityHours: 2160,
        },
      ],
    });
    expect(evaluatePolicy(policy, review)).toEqual({ approve: true, reason: 'matches rule "acme"' });
    // The same certificate claimed for an order that validated another name is not approved.
    const other = { ...item, origin: origin("acct-A", ["other.example.internal"]) };
    const { review: wrong } = judge(ca.config, caCert, other, leafParamsOfItem(other), other.tbs);
    expect(evaluatePolicy(policy, wrong).reason).toMatch(/name web\.example\.internal was not validated/);
  });

  it("runs inTransaction with the new id inside the transaction; if it throws, nothing is stored", async () => {
    const r = ca.services.requests;
    const before = (await ca.services.store.listRequests({})).length;
    let seen: string | undefined;
    await expect(
      r.submit({
        requester: r.requesterFor("dev"),
        profile: "server",
        csr: await makeCsr(["txn.example.internal"]),
        origin: origin("acct-A", ["txn.example.internal"]),
        inTransaction: async (id) => {
          // The request is already there, inside the transaction.
          expect((await ca.services.store.getRequest(id))?.origin?.account).toBe("acct-A");
          seen = id;
          throw new Error("the order was finalized meanwhile");
        },
      }),
    ).rejects.toThrow(/finalized meanwhile/);
    expect(seen).toBeDefined();
    expect(await ca.services.store.getRequest(seen!)).toBeUndefined();
    expect((await ca.services.store.listRequests({})).length).toBe(before);

    let committed: string | undefined;
    const v = await r.submit({
      requester: r.requesterFor("dev"),
      profile: "server",
      csr: await makeCsr(["txn2.example.internal"]),
      inTransaction: async (id) => {
        committed = id;
      },
    });
    expect(committed).toBe(v.id);
  });

  it("lets an ACME account revoke only what its own orders got, recorded as acme:<account>", async () => {
    const r = ca.services.requests;
    const issue = async (v: { id: string; tbsSha256: string }) => {
      for (const name of ["alice", "bob"]) await r.decide(v.id, approval(ca, name, v));
      await exchangeUntil(ca, async () => (await r.view(v.id)).status === "issued");
    };
    const mine = await submitAcme("acct-A", ["rev.example.internal"]);
    const plain = await r.submit({
      requester: r.requesterFor("dev"),
      profile: "server",
      csr: await makeCsr(["plain.example.internal"]),
      validityHours: 1,
    });
    await issue(mine);
    await issue(plain);
    const rev = ca.services.revocations;
    await expect(
      rev.revoke(mine.serial, "keyCompromise", { kind: "acme", name: "acct-B", requester: "dev" }),
    ).rejects.toThrow(/no certificate with serial .* to ACME account acct-B/);
    await expect(
      rev.revoke(mine.serial, "keyCompromise", { kind: "acme", name: "acct-A", requester: "other" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(
      rev.revoke(plain.serial, "keyCompromise", { kind: "acme", name: "acct-A", requester: "dev" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    const done = await rev.revoke(mine.serial, "keyCompromise", {
      kind: "acme",
      name: "acct-A",
      requester: "dev",
    });
    expect(done.reason).toBe("keyCompromise");
    const stored = (await ca.services.store.listRevocations()).find((x) => x.requestId === mine.id);
    expect(stored?.revokedBy).toBe("acme:acct-A");
  });
});
