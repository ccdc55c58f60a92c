// ACME accounts (src/acme/accounts.ts, eab.ts) over real HTTP, before the key ceremony: newAccount
// per key, onlyReturnExisting, contacts, update and deactivation, key change (RFC 8555 §7.3), and
// external account binding (§7.3.4) with the admin API that makes its keys.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { newAcmeKey, TestAcmeClient, type AcmeResponse } from "../helpers/acme-client.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";
import { FlattenedSign } from "jose";

const ADMIN = "example-admin-token-change-me";
const REQUESTER = "example-requester-token-change-me";

const typeOf = (res: AcmeResponse) =>
  String((res.body as { type?: string }).type ?? "").replace("urn:ietf:params:acme:error:", "");

function dbOf(h: HttpCa) {
  return h.ca.services.store.queryBuilder<AcmeDatabase>();
}
async function accountCount(h: HttpCa): Promise<number> {
  const r = await dbOf(h)
    .selectFrom("acme_accounts")
    .select((e) => e.fn.countAll().as("n"))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

describe("accounts with open registration", () => {
  let h: HttpCa;
  let dir: string;
  beforeAll(async () => {
    h = await startHttpCa({ acme: {} });
    dir = `${h.url}/acme/directory`;
  });
  afterAll(() => h.ca.close());

  it("one account per key: newAccount again finds it; onlyReturnExisting", async () => {
    const c = await TestAcmeClient.create(dir);
    const none = await c.post(c.directory.newAccount!, { onlyReturnExisting: true }, { jwk: true });
    expect(typeOf(none)).toBe("accountDoesNotExist");
    const first = await c.register({ termsOfServiceAgreed: true, contact: ["mailto:a@example.com"] });
    expect(first.status).toBe(201);
    const loc = first.headers.get("location")!;
    expect(first.body).toEqual({
      status: "valid",
      contact: ["mailto:a@example.com"],
      orders: `${loc}/orders`,
    });
    const again = await c.register({ termsOfServiceAgreed: true });
    expect(again.status).toBe(200);
    expect(again.headers.get("location")).toBe(loc);
    const existing = await c.post(c.directory.newAccount!, { onlyReturnExisting: true }, { jwk: true });
    expect(existing.status).toBe(200);
    expect(existing.headers.get("location")).toBe(loc);
    const row = await dbOf(h)
      .selectFrom("acme_accounts")
      .selectAll()
      .where("thumbprint", "=", await c.thumbprint())
      .executeTakeFirstOrThrow();
    expect(row.requester).toBe("acme");
    expect(row.eab_key_id).toBeNull();
  });

  it("contacts: mailto with one address and no hfields", async () => {
    const before = await accountCount(h);
    const cases: [string[], string][] = [
      [["https://example.com"], "unsupportedContact"],
      [["tel:+15555550100"], "unsupportedContact"],
      [["mailto:a@example.com?subject=x"], "invalidContact"],
      [["mailto:a@example.com,b@example.com"], "invalidContact"],
      [["mailto:not-an-address"], "invalidContact"],
      [Array.from({ length: 11 }, (_, i) => `mailto:a${i}@example.com`), "malformed"],
    ];
    for (const [contact, type] of cases) {
      const c = await TestAcmeClient.create(dir);
      expect(typeOf(await c.register({ contact })), contact.join()).toBe(type);
    }
    expect(await accountCount(h)).toBe(before);
  });

  it("the account URL: read, update contacts, only by itself; deactivated then refused", async () => {
    const a = await TestAcmeClient.create(dir);
    const b = await TestAcmeClient.create(dir);
    await a.register();
    await b.register();
    const read = await a.post(a.kid!, null);
    expect(read.status).toBe(200);
    expect(read.headers.get("location")).toBe(a.kid);
    const upd = await a.post(a.kid!, { contact: ["mailto:new@example.com"] });
    expect(upd.body).toMatchObject({ status: "valid", contact: ["mailto:new@example.com"] });
    expect((await a.post(a.kid!, null)).body).toMatchObject({ contact: ["mailto:new@example.com"] });
    expect(typeOf(await a.post(a.kid!, { contact: ["mailto:x@example.com?cc=y@example.com"] }))).toBe(
      "invalidContact",
    );
    // Another account's URL, signed by a.
    expect(typeOf(await a.post(b.kid!, null))).toBe("unauthorized");
    expect(typeOf(await a.post(a.kid!, { status: "valid" }))).toBe("malformed");
    const off = await b.post(b.kid!, { status: "deactivated" });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ status: "deactivated" });
    expect(typeOf(await b.post(b.kid!, null))).toBe("unauthorized");
    expect(
      typeOf(await b.post(b.directory.newOrder!, { identifiers: [{ type: "dns", value: "x.example" }] })),
    ).toBe("unauthorized");
    // Nor can its key make a new account (§7.3.6).
    b.kid = undefined;
    expect(typeOf(await b.register())).toBe("unauthorized");
  });

  it("key change: the old key is refused, the new key works; a key of another account is 409", async () => {
    const c = await TestAcmeClient.create(dir);
    const other = await TestAcmeClient.create(dir, "EdDSA");
    await c.register();
    await other.register();
    const oldKey = c.key;
    const newKey = await newAcmeKey("RS256");
    const url = c.directory.keyChange!;
    const inner = (payload: unknown, o: { key?: typeof newKey; url?: string } = {}) => {
      const k = o.key ?? newKey;
      return new FlattenedSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: k.alg, jwk: k.jwk, url: o.url ?? url })
        .sign(k.privateKey);
    };
    const before = await dbOf(h)
      .selectFrom("acme_accounts")
      .select(["jwk", "thumbprint"])
      .where("thumbprint", "=", await c.thumbprint())
      .executeTakeFirstOrThrow();
    // Broken inner JWSs change nothing.
    expect(
      typeOf(await c.post(url, await inner({ account: c.kid, oldKey: oldKey.jwk }, { url: c.kid! }))),
    ).toBe("malformed");
    expect(typeOf(await c.post(url, await inner({ account: c.kid, oldKey: newKey.jwk })))).toBe(
      "unauthorized",
    );
    expect(typeOf(await c.post(url, await inner({ account: other.kid, oldKey: oldKey.jwk })))).toBe(
      "unauthorized",
    );
    const taken = await c.post(url, await inner({ account: c.kid, oldKey: oldKey.jwk }, { key: other.key }));
    expect(taken.status).toBe(409);
    expect(taken.headers.get("location")).toBe(other.kid);
    expect(
      await dbOf(h)
        .selectFrom("acme_accounts")
        .select(["jwk", "thumbprint"])
        .where("id", "=", c.kid!.split("/").pop()!)
        .executeTakeFirstOrThrow(),
    ).toEqual(before);

    const ok = await c.post(url, await inner({ account: c.kid, oldKey: oldKey.jwk }));
    expect(ok.status).toBe(200);
    expect(ok.headers.get("location")).toBe(c.kid);
    // The old key no longer signs for the account.
    expect((await c.post(c.kid!, null)).status).toBeGreaterThanOrEqual(400);
    c.key = newKey;
    expect((await c.post(c.kid!, null)).status).toBe(200);
    // newAccount with the new key finds the same account.
    const kid = c.kid;
    c.kid = undefined;
    const found = await c.register();
    expect(found.status).toBe(200);
    expect(found.headers.get("location")).toBe(kid);
  });
});

describe("external account binding (RFC 8555 §7.3.4)", () => {
  let h: HttpCa;
  let dir: string;
  const api = (method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${h.url}/api/v1/acme/eab-keys${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const newKey = async (requester = "dev") => {
    const r = await api("POST", "", ADMIN, { requester });
    expect(r.status).toBe(201);
    return (await r.json()) as { keyId: string; hmacKey: string; requester: string };
  };

  beforeAll(async () => {
    h = await startHttpCa({ acme: { config: { openRegistration: undefined } } });
    dir = `${h.url}/acme/directory`;
  });
  afterAll(() => h.ca.close());

  it("the admin API needs an admin token", async () => {
    expect((await api("POST", "", undefined, { requester: "dev" })).status).toBe(401);
    expect((await api("POST", "", REQUESTER, { requester: "dev" })).status).toBe(403);
    expect((await api("GET", "", REQUESTER)).status).toBe(403);
    expect((await api("DELETE", "/AAAAAAAAAAAAAAAAAAAAAA", REQUESTER)).status).toBe(403);
    const bad = await api("POST", "", ADMIN, { requester: "nobody" });
    expect(bad.status).toBe(422);
    expect(bad.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect((await api("POST", "", ADMIN, { requester: "dev", extra: 1 })).status).toBe(400);
    const k = await newKey();
    expect(k.keyId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(k.hmacKey, "base64url")).toHaveLength(32);
    expect(k.requester).toBe("dev");
  });

  it("is required, and binds the key's requester once", async () => {
    const c = await TestAcmeClient.create(dir);
    expect(c.directory.meta?.externalAccountRequired).toBe(true);
    expect(typeOf(await c.register())).toBe("externalAccountRequired");
    const k = await newKey();
    const wrong = await newKey();
    const other = await TestAcmeClient.create(dir);

    const refusals: [string, () => Promise<unknown>, string][] = [
      ["a wrong MAC", () => c.externalAccountBinding(k.keyId, wrong.hmacKey), "unauthorized"],
      [
        "an unknown key id",
        () => c.externalAccountBinding("AAAAAAAAAAAAAAAAAAAAAA", k.hmacKey),
        "unauthorized",
      ],
      [
        "another account key in the payload",
        () => other.externalAccountBinding(k.keyId, k.hmacKey),
        "unauthorized",
      ],
      [
        "the newOrder URL",
        () =>
          new FlattenedSign(new TextEncoder().encode(JSON.stringify(c.key.jwk)))
            .setProtectedHeader({ alg: "HS256", kid: k.keyId, url: c.directory.newOrder! })
            .sign(Buffer.from(k.hmacKey, "base64url")),
        "unauthorized",
      ],
      [
        "a nonce in the EAB header",
        () =>
          new FlattenedSign(new TextEncoder().encode(JSON.stringify(c.key.jwk)))
            .setProtectedHeader({ alg: "HS256", kid: k.keyId, url: c.directory.newAccount!, nonce: "x" })
            .sign(Buffer.from(k.hmacKey, "base64url")),
        "malformed",
      ],
    ];
    for (const [what, eab, type] of refusals)
      expect(typeOf(await c.register({ externalAccountBinding: await eab() })), what).toBe(type);
    expect(await accountCount(h)).toBe(0);

    const ok = await c.register({
      externalAccountBinding: await c.externalAccountBinding(k.keyId, k.hmacKey),
    });
    expect(ok.status).toBe(201);
    const id = c.kid!.split("/").pop()!;
    const row = await dbOf(h)
      .selectFrom("acme_accounts")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(row.requester).toBe("dev");
    expect(row.eab_key_id).toBe(k.keyId);
    const key = await dbOf(h)
      .selectFrom("acme_eab_keys")
      .selectAll()
      .where("key_id", "=", k.keyId)
      .executeTakeFirstOrThrow();
    expect(key.hmac_key).toBe("");
    expect(key.account_id).toBe(id);

    // A key binds once.
    const again = await TestAcmeClient.create(dir);
    expect(
      typeOf(
        await again.register({
          externalAccountBinding: await again.externalAccountBinding(k.keyId, k.hmacKey),
        }),
      ),
    ).toBe("unauthorized");
    expect(await accountCount(h)).toBe(1);

    // The list says which key is bound, to which account, and shows no HMAC.
    const list = (await (await api("GET", "", ADMIN)).json()) as { keys: Record<string, unknown>[] };
    const bound = list.keys.find((x) => x.keyId === k.keyId)!;
    expect(bound).toMatchObject({ bound: true, accountId: id, requester: "dev", createdBy: "admin" });
    expect(JSON.stringify(list)).not.toContain(wrong.hmacKey);
    // A bound key stays; an unbound one can be deleted.
    expect((await api("DELETE", `/${k.keyId}`, ADMIN)).status).toBe(409);
    expect((await api("DELETE", `/${wrong.keyId}`, ADMIN)).status).toBe(204);
    expect((await api("DELETE", `/${wrong.keyId}`, ADMIN)).status).toBe(404);
    const after = (await (await api("GET", "", ADMIN)).json()) as { keys: { keyId: string }[] };
    expect(after.keys.map((x) => x.keyId)).not.toContain(wrong.keyId);
  });
});
