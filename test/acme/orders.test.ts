// ACME orders, authorizations and challenges (src/acme/orders.ts, identifiers.ts; RFC 8555 §7.1.3–7.1.5,
// §7.4, §7.5, §8): identifiers normalised and checked against the account's grant as CSR names are;
// then, on a real coordinator with ACME over HTTP and an http-01 responder on loopback: an order
// becomes ready once its challenge validates, invalid with the challenge's error when it fails,
// invalid when it expires (the coordinator's clock moved) or an authorization is deactivated; a
// wildcard offers dns-01 only; another account reads nothing; the per-account rate limit holds.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startHttpCa, type HttpCa } from "../helpers/in-process-ca.ts";
import { TestAcmeClient, type AcmeResponse } from "../helpers/acme-client.ts";
import { startHttp01Responder, type Http01Responder } from "../helpers/acme-responders.ts";
import { clock } from "../../src/coordinator/clock.ts";
import { checkOrderIdentifiers, normaliseIdentifier, orderProfile } from "../../src/acme/identifiers.ts";
import { AcmeProblem } from "../../src/acme/problems.ts";
import type { Profile, Requester } from "../../src/config/schema.ts";
import type { AcmeConfig } from "../../src/config/schema.ts";
import type { AcmeDatabase } from "../../src/acme/store/schema.ts";
import { newAcmeId } from "../../src/acme/paths.ts";

// ---- identifiers (no HTTP) ----

const serverProfile = {
  maxValidityHours: 2160,
  defaultValidityHours: 720,
  keyTypes: ["ec-p256"],
  rsaMinBits: 2048,
  rsaMaxBits: 4096,
  keyUsage: ["digitalSignature"],
  extKeyUsage: ["serverAuth"],
  ca: false,
  sans: { dns: true, ip: true, email: false, uri: false, max: 20, requireOne: true },
} as Profile;
const dnsOnly = { ...serverProfile, sans: { ...serverProfile.sans, ip: false, max: 3 } } as Profile;
const requester = (name: string, allowedNames: string[], exclusive = false): Requester => ({
  name,
  tokenSha256: "0".repeat(64),
  profiles: ["server"],
  allowedNames,
  exclusive,
});

function refusal(f: () => unknown): AcmeProblem {
  try {
    f();
  } catch (e) {
    if (e instanceof AcmeProblem) return e;
    throw e;
  }
  throw new Error("not refused");
}

describe("newOrder identifiers", () => {
  it("normalises DNS names to lowercase and IP addresses to canonical text", () => {
    expect(normaliseIdentifier({ type: "dns", value: "Svc.Example.INTERNAL" })).toEqual({
      type: "dns",
      value: "svc.example.internal",
    });
    expect(normaliseIdentifier({ type: "ip", value: "2001:DB8:0:0:0:0:0:1" })).toEqual({
      type: "ip",
      value: "2001:db8::1",
    });
    expect(normaliseIdentifier({ type: "ip", value: "10.0.0.1" })).toEqual({ type: "ip", value: "10.0.0.1" });
    expect(normaliseIdentifier({ type: "dns", value: "localhost" })).toEqual({
      type: "dns",
      value: "localhost",
    });
    expect(normaliseIdentifier({ type: "dns", value: "*.svc.example" })).toEqual({
      type: "dns",
      value: "*.svc.example",
    });
  });

  it.each([
    ["dns", "bücher.example", /A-label/],
    ["dns", "svc.example.", /ends with a dot/],
    ["dns", "a.*.example", /wildcard/],
    ["dns", "*.example", /wildcard/],
    ["dns", "-bad.example", /label/],
    ["dns", `${"a".repeat(64)}.example`, /label/],
    ["dns", "10.0.0.1", /all digits/],
    ["ip", "10.0.0.256", /not an IPv4/],
    ["ip", "fe80::1%eth0", /not an IPv4/],
    ["ip", "::ffff:10.0.0.1", /IPv4-mapped/],
  ])("refuses %s %s as rejectedIdentifier", (type, value, why) => {
    const p = normaliseIdentifier({ type, value });
    expect(p).toBeInstanceOf(AcmeProblem);
    expect((p as AcmeProblem).type).toBe("rejectedIdentifier");
    expect((p as AcmeProblem).message).toMatch(why);
    expect((p as AcmeProblem).identifier).toEqual({ type, value });
  });

  it("refuses other identifier types as unsupportedIdentifier", () => {
    const p = normaliseIdentifier({ type: "email", value: "a@example.com" }) as AcmeProblem;
    expect(p.type).toBe("unsupportedIdentifier");
  });

  const grant = requester("svc", ["*.svc.example", "localhost", "10.0.0.1"]);
  const reserved = requester("coordinator", ["ca.svc.example", "10.0.0.9"], true);
  const check = (
    ids: { type: string; value: string }[],
    o: Partial<Parameters<typeof checkOrderIdentifiers>[1]> = {},
  ) =>
    checkOrderIdentifiers(ids, {
      maxIdentifiers: 5,
      requester: grant,
      requesters: [grant, reserved],
      profile: { name: "server", profile: serverProfile },
      ...o,
    });

  it("keeps the order sent and drops duplicates", () => {
    expect(
      check(
        [
          { type: "dns", value: "B.svc.example" },
          { type: "dns", value: "a.svc.example" },
          { type: "dns", value: "b.svc.example" },
          { type: "ip", value: "10.0.0.1" },
          { type: "dns", value: "*.svc.example" },
        ],
        { requesters: [grant] },
      ),
    ).toEqual([
      { type: "dns", value: "b.svc.example" },
      { type: "dns", value: "a.svc.example" },
      { type: "ip", value: "10.0.0.1" },
      { type: "dns", value: "*.svc.example" },
    ]);
  });

  it("allows a single-label name when the grant covers it", () => {
    expect(check([{ type: "dns", value: "localhost" }])).toEqual([{ type: "dns", value: "localhost" }]);
    expect(refusal(() => check([{ type: "dns", value: "intranet" }])).type).toBe("rejectedIdentifier");
  });

  it("refuses names outside the grant and names another requester reserves, with a subproblem each", () => {
    const p = refusal(() =>
      check([
        { type: "dns", value: "ok.svc.example" },
        { type: "dns", value: "other.example" },
        { type: "dns", value: "CA.svc.example" },
        { type: "ip", value: "10.0.0.2" },
        { type: "uri", value: "spiffe://x" },
      ]),
    );
    expect(p.type).toBe("rejectedIdentifier");
    const doc = p.document();
    expect(doc.subproblems?.map((s) => [s.type, s.identifier?.value])).toEqual([
      ["urn:ietf:params:acme:error:rejectedIdentifier", "other.example"],
      ["urn:ietf:params:acme:error:rejectedIdentifier", "ca.svc.example"],
      ["urn:ietf:params:acme:error:rejectedIdentifier", "10.0.0.2"],
      ["urn:ietf:params:acme:error:unsupportedIdentifier", "spiffe://x"],
    ]);
    expect(doc.subproblems?.[1]?.detail).toMatch(/reserved for requester coordinator/);
    // A wildcard that would cover the reserved name is refused too (either direction).
    expect(
      refusal(() =>
        check([{ type: "dns", value: "*.svc.example" }], {
          requesters: [grant, requester("c", ["x.svc.example"], true)],
        }),
      ).message,
    ).toMatch(/reserved/);
  });

  it("refuses a kind of name the profile does not issue, and more identifiers than allowed", () => {
    const p = refusal(() =>
      check([{ type: "ip", value: "10.0.0.1" }], { profile: { name: "web", profile: dnsOnly } }),
    );
    expect(p.message).toMatch(/issues no IP names/);
    const many = ["a", "b", "c", "d"].map((x) => ({ type: "dns", value: `${x}.svc.example` }));
    expect(refusal(() => check(many, { profile: { name: "web", profile: dnsOnly } })).message).toMatch(
      /at most 3/,
    );
    expect(refusal(() => check(many, { maxIdentifiers: 2 })).message).toMatch(/at most 2/);
  });

  it("picks the profile asked for, else the first ACME profile the grant includes", () => {
    const acme = { profiles: ["client", "server"] } as AcmeConfig;
    const profiles = { server: serverProfile, client: serverProfile };
    expect(orderProfile(undefined, acme, profiles, grant).name).toBe("server");
    expect(orderProfile("server", acme, profiles, grant).name).toBe("server");
    expect(refusal(() => orderProfile("client", acme, profiles, grant)).type).toBe("unauthorized");
    expect(refusal(() => orderProfile("intermediate", acme, profiles, grant)).message).toMatch(/not offered/);
  });
});

// ---- over HTTP ----

let ca: HttpCa;
let responder: Http01Responder;
let dir: string;

beforeAll(async () => {
  responder = await startHttp01Responder();
  ca = await startHttpCa({
    ceremony: true,
    // Requester "limited" is like ca-config's dev: *.example.internal, localhost, 127.0.0.1.
    extraRequesters: [{ name: "limited", token: "limited-token" }],
    acme: {
      config: { openRegistration: { requester: "limited" }, ordersPerHour: 2 },
      validation: { httpPort: responder.port, timeoutMs: 3_000 },
    },
  });
  dir = `${ca.url}/acme/directory`;
}, 120_000);
afterAll(async () => {
  await responder?.close();
  await ca?.ca.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function account(): Promise<TestAcmeClient> {
  const c = await TestAcmeClient.create(dir);
  const r = await c.register();
  expect(r.status).toBe(201);
  return c;
}

interface OrderBody {
  status: string;
  expires: string;
  identifiers: { type: string; value: string }[];
  authorizations: string[];
  finalize: string;
  error?: { type: string; detail: string };
  profile?: string;
  notAfter?: string;
}
interface ChallengeBody {
  type: string;
  url: string;
  status: string;
  token: string;
  validated?: string;
  error?: { type: string; detail: string };
}
interface AuthzBody {
  identifier: { type: string; value: string };
  status: string;
  expires: string;
  challenges: ChallengeBody[];
  wildcard?: boolean;
}

async function newOrder(c: TestAcmeClient, identifiers: { type: string; value: string }[], extra = {}) {
  return c.post(c.directory.newOrder!, { identifiers, ...extra });
}

function problemType(r: AcmeResponse): string {
  return (r.body as { type: string }).type.replace("urn:ietf:params:acme:error:", "");
}

/** Polls (POST-as-GET) until `done` holds for the body. */
async function until<T>(c: TestAcmeClient, url: string, done: (b: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const r = await c.post(url, null);
    if (done(r.body as T)) return r.body as T;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${url} never got there`);
}

describe("orders over HTTP", () => {
  it("http-01: pending order → challenge valid → authorization valid → order ready", async () => {
    const c = await account();
    const res = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }]);
    expect(res.status).toBe(201);
    const order = res.body as OrderBody;
    const orderUrl = res.headers.get("location")!;
    expect(orderUrl).toMatch(/\/acme\/order\/[A-Za-z0-9_-]{22}$/);
    expect(order).toMatchObject({
      status: "pending",
      identifiers: [{ type: "ip", value: "127.0.0.1" }],
      profile: "server",
    });
    expect(order.finalize).toBe(`${orderUrl}/finalize`);
    expect(order.authorizations).toHaveLength(1);

    const authz = (await c.post(order.authorizations[0]!, null)).body as AuthzBody;
    expect(authz.status).toBe("pending");
    expect(authz.identifier).toEqual({ type: "ip", value: "127.0.0.1" });
    expect(authz.challenges.map((x) => x.type)).toEqual(["http-01", "tls-alpn-01"]);
    const http01 = authz.challenges.find((x) => x.type === "http-01")!;
    expect(http01.token).toMatch(/^[A-Za-z0-9_-]{22}$/);

    responder.set(http01.token, await c.keyAuthorization(http01.token));
    const started = await c.post(http01.url, {});
    expect(started.status).toBe(200);
    expect(started.headers.get("link")).toContain(`<${order.authorizations[0]}>;rel="up"`);
    expect(["processing", "valid"]).toContain((started.body as ChallengeBody).status);

    const done = await until<AuthzBody>(c, order.authorizations[0]!, (b) => b.status !== "pending");
    expect(done.status).toBe("valid");
    // A valid authorization lists the challenge that validated it (RFC 8555 §7.1.4).
    expect(done.challenges).toHaveLength(1);
    expect(done.challenges[0]).toMatchObject({ type: "http-01", status: "valid" });
    expect(Date.parse(done.challenges[0]!.validated!)).toBeGreaterThan(0);
    const ch = (await c.post(http01.url, null)).body as ChallengeBody;
    expect(ch.status).toBe("valid");

    const ready = (await c.post(orderUrl, null)).body as OrderBody;
    expect(ready.status).toBe("ready");
    // Stored: a second read says the same.
    expect(((await c.post(orderUrl, null)).body as OrderBody).status).toBe("ready");

    // A second {} to a valid challenge changes nothing.
    expect(((await c.post(http01.url, {})).body as ChallengeBody).status).toBe("valid");

    // The account's order list names it.
    const list = await c.post(`${c.kid}/orders`, null);
    expect(list.status).toBe(200);
    expect((list.body as { orders: string[] }).orders).toContain(orderUrl);
  });

  it("a wrong key authorization: challenge invalid (incorrectResponse), authorization and order invalid", async () => {
    const c = await account();
    const res = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }]);
    const order = res.body as OrderBody;
    const orderUrl = res.headers.get("location")!;
    const authz = (await c.post(order.authorizations[0]!, null)).body as AuthzBody;
    const http01 = authz.challenges.find((x) => x.type === "http-01")!;
    responder.set(http01.token, `${http01.token}.not-the-thumbprint`);
    await c.post(http01.url, {});
    const done = await until<AuthzBody>(c, order.authorizations[0]!, (b) => b.status !== "pending");
    expect(done.status).toBe("invalid");
    expect(done.challenges).toHaveLength(1);
    expect(done.challenges[0]!.status).toBe("invalid");
    expect(done.challenges[0]!.error?.type).toBe("urn:ietf:params:acme:error:incorrectResponse");
    const failed = (await c.post(orderUrl, null)).body as OrderBody;
    expect(failed.status).toBe("invalid");
    expect(failed.error).toEqual(done.challenges[0]!.error);
  });

  it("a wildcard offers dns-01 only, on its base name", async () => {
    const c = await account();
    const res = await newOrder(c, [
      { type: "dns", value: "*.Svc.example.internal" },
      { type: "dns", value: "svc.example.internal" },
    ]);
    expect(res.status).toBe(201);
    const order = res.body as OrderBody;
    expect(order.identifiers).toEqual([
      { type: "dns", value: "*.svc.example.internal" },
      { type: "dns", value: "svc.example.internal" },
    ]);
    const wild = (await c.post(order.authorizations[0]!, null)).body as AuthzBody;
    expect(wild).toMatchObject({
      identifier: { type: "dns", value: "svc.example.internal" },
      wildcard: true,
    });
    expect(wild.challenges.map((x) => x.type)).toEqual(["dns-01"]);
    const plain = (await c.post(order.authorizations[1]!, null)).body as AuthzBody;
    expect(plain.wildcard).toBeUndefined();
    expect(plain.challenges.map((x) => x.type)).toEqual(["http-01", "dns-01", "tls-alpn-01"]);
  });

  it("refuses unsupported identifiers, names outside the grant, notBefore, a notAfter past the profile; stores nothing", async () => {
    const c = await account();
    const unsupported = await newOrder(c, [{ type: "email", value: "a@example.internal" }]);
    expect(unsupported.status).toBe(400);
    expect(problemType(unsupported)).toBe("unsupportedIdentifier");
    const outside = await newOrder(c, [
      { type: "dns", value: "svc.example.internal" },
      { type: "dns", value: "www.example.com" },
    ]);
    expect(outside.status).toBe(400);
    expect(problemType(outside)).toBe("rejectedIdentifier");
    expect((outside.body as { identifier?: unknown }).identifier).toEqual({
      type: "dns",
      value: "www.example.com",
    });
    const backdated = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }], {
      notBefore: new Date().toISOString(),
    });
    expect(problemType(backdated)).toBe("malformed");
    expect((backdated.body as { detail: string }).detail).toMatch(/does not backdate or postdate/);
    const tooLong = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }], {
      notAfter: new Date(Date.now() + 2161 * 3_600_000).toISOString(),
    });
    expect(problemType(tooLong)).toBe("malformed");
    const badReplaces = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }], { replaces: "no dot" });
    expect(problemType(badReplaces)).toBe("malformed");
    const unknownProfile = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }], { profile: "client" });
    expect(problemType(unknownProfile)).toBe("malformed");
    const list = await c.post(`${c.kid}/orders`, null);
    expect((list.body as { orders: string[] }).orders).toEqual([]);
  });

  it("keeps notAfter; refuses to replace a certificate this CA never issued, storing nothing", async () => {
    const c = await account();
    const notAfter = new Date(Date.now() + 48 * 3_600_000).toISOString();
    const res = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }], { notAfter });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ notAfter });
    const bogus = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }], {
      replaces: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
    });
    expect(bogus.status).toBeGreaterThanOrEqual(400);
    const list = await c.post(`${c.kid}/orders`, null);
    expect((list.body as { orders: string[] }).orders).toHaveLength(1);
  });

  it("another account reads neither the order, nor its authorizations and challenges, nor the order list", async () => {
    const owner = await account();
    const other = await account();
    const res = await newOrder(owner, [{ type: "ip", value: "127.0.0.1" }]);
    const orderUrl = res.headers.get("location")!;
    const order = res.body as OrderBody;
    const authz = (await owner.post(order.authorizations[0]!, null)).body as AuthzBody;
    for (const [url, payload] of [
      [orderUrl, null],
      [order.authorizations[0]!, null],
      [order.authorizations[0]!, { status: "deactivated" }],
      [authz.challenges[0]!.url, null],
      [authz.challenges[0]!.url, {}],
      [`${owner.kid}/orders`, null],
    ] as const) {
      const r = await other.post(url, payload);
      expect(r.status, url).toBe(403);
      expect(problemType(r)).toBe("unauthorized");
    }
    // Untouched by those attempts.
    expect(((await owner.post(authz.challenges[0]!.url, null)).body as ChallengeBody).status).toBe("pending");
    // Ids of another shape are not looked up: 404.
    const base = orderUrl.replace(/[^/]+$/, "");
    const r = await owner.post(`${base}not-an-id`, null);
    expect(r.status).toBe(404);
    const unknown = await owner.post(`${base}${"A".repeat(22)}`, null);
    expect(unknown.status).toBe(404);
  });

  it("a deactivated authorization makes its order invalid", async () => {
    const c = await account();
    const res = await newOrder(c, [{ type: "dns", value: "a.example.internal" }]);
    const order = res.body as OrderBody;
    const d = await c.post(order.authorizations[0]!, { status: "deactivated" });
    expect(d.status).toBe(200);
    expect((d.body as AuthzBody).status).toBe("deactivated");
    const o = (await c.post(res.headers.get("location")!, null)).body as OrderBody;
    expect(o.status).toBe("invalid");
    expect(o.error?.detail).toMatch(/deactivated/);
    expect(problemType(await c.post(order.authorizations[0]!, { status: "valid" }))).toBe("malformed");
  });

  it("an order not finalized before it expires is invalid (the coordinator's clock moved)", async () => {
    const c = await account();
    const res = await newOrder(c, [{ type: "dns", value: "late.example.internal" }]);
    const order = res.body as OrderBody;
    const later = Date.parse(order.expires) + 1_000;
    vi.spyOn(clock, "now").mockReturnValue(later);
    vi.spyOn(clock, "iso").mockReturnValue(new Date(later).toISOString());
    vi.spyOn(clock, "date").mockReturnValue(new Date(later));
    // Nonces handed out before the clock moved have expired: take one now.
    const nonce = await c.newNonce();
    const o = (await c.post(res.headers.get("location")!, null, { nonce })).body as OrderBody;
    expect(o.status).toBe("invalid");
    expect(o.error?.detail).toMatch(/expired/);
    const a = (await c.post(order.authorizations[0]!, null)).body as AuthzBody;
    expect(a.status).toBe("expired");
    // Not listed any more.
    const list = await c.post(`${c.kid}/orders`, null);
    expect((list.body as { orders: string[] }).orders).toEqual([]);
  });

  it("rate limit: ordersPerHour new orders per account, then rateLimited with Retry-After", async () => {
    const c = await account();
    for (let i = 0; i < 2; i++)
      expect((await newOrder(c, [{ type: "ip", value: "127.0.0.1" }])).status).toBe(201);
    const third = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }]);
    expect(third.status).toBe(429);
    expect(problemType(third)).toBe("rateLimited");
    const after = Number(third.headers.get("retry-after"));
    expect(after).toBeGreaterThan(3500);
    expect(after).toBeLessThanOrEqual(3600);
    // Another account has its own budget.
    expect((await newOrder(await account(), [{ type: "ip", value: "127.0.0.1" }])).status).toBe(201);
  });

  it("one validation at a time per challenge; one left processing by a stopped replica starts again", async () => {
    const c = await account();
    const res = await newOrder(c, [{ type: "ip", value: "127.0.0.1" }]);
    const order = res.body as OrderBody;
    const authz = (await c.post(order.authorizations[0]!, null)).body as AuthzBody;
    const http01 = authz.challenges.find((x) => x.type === "http-01")!;
    const path = `/.well-known/acme-challenge/${http01.token}`;
    // Claimed as if by a replica that stopped mid-validation, just now: a POST starts nothing.
    const db = ca.ca.services.store.queryBuilder<AcmeDatabase>();
    const id = http01.url.split("/").at(-1)!;
    await db
      .updateTable("acme_challenges")
      .set({ status: "processing", updated_at: new Date().toISOString() })
      .where("id", "=", id)
      .execute();
    responder.set(http01.token, await c.keyAuthorization(http01.token));
    const nonces = await Promise.all([c.newNonce(), c.newNonce()]);
    const both = await Promise.all(nonces.map((nonce) => c.post(http01.url, {}, { nonce })));
    expect(both.map((r) => (r.body as ChallengeBody).status)).toEqual(["processing", "processing"]);
    await new Promise((r) => setTimeout(r, 300));
    expect(responder.requests.filter((r) => r.path === path)).toHaveLength(0);
    // Long enough ago (3 validation timeouts): two concurrent POSTs, one validation.
    await db
      .updateTable("acme_challenges")
      .set({ updated_at: new Date(Date.now() - 10_000).toISOString() })
      .where("id", "=", id)
      .execute();
    const again = await Promise.all([c.newNonce(), c.newNonce()]);
    await Promise.all(again.map((nonce) => c.post(http01.url, {}, { nonce })));
    const done = await until<AuthzBody>(c, order.authorizations[0]!, (b) => b.status !== "pending");
    expect(done.status).toBe("valid");
    expect(responder.requests.filter((r) => r.path === path)).toHaveLength(1);
  });

  it("the account's order list: newest first, 100 a page, Link rel=next with a cursor", async () => {
    const c = await account();
    const accountId = c.kid!.split("/").at(-1)!;
    // More orders than the rate limit lets one create: stored directly.
    const db = ca.ca.services.store.queryBuilder<AcmeDatabase>();
    const base = Date.now() - 60_000;
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const id = newAcmeId();
      ids.push(id);
      const at = new Date(base + Math.floor(i / 2) * 100).toISOString(); // pairs share a time
      await db
        .insertInto("acme_orders")
        .values({
          id,
          account_id: accountId,
          status: "pending",
          identifiers: JSON.stringify([{ type: "ip", value: "127.0.0.1" }]),
          profile: "server",
          not_before: null,
          not_after: null,
          expires_at: new Date(Date.now() + 3_600_000).toISOString(),
          request_id: null,
          error: null,
          replaces: null,
          created_at: at,
          updated_at: at,
        })
        .execute();
    }
    const first = await c.post(`${c.kid}/orders`, null);
    const page1 = (first.body as { orders: string[] }).orders;
    expect(page1).toHaveLength(100);
    const next = /<([^>]+)>;rel="next"/.exec(first.headers.get("link") ?? "")?.[1];
    expect(next).toMatch(/\/orders\?cursor=[A-Za-z0-9_-]+$/);
    const second = await c.post(next!, null);
    const page2 = (second.body as { orders: string[] }).orders;
    expect(page2).toHaveLength(50);
    expect(second.headers.get("link") ?? "").not.toMatch(/rel="next"/);
    const all = [...page1, ...page2].map((u) => u.split("/").at(-1)!);
    expect(new Set(all).size).toBe(150);
    expect(new Set(all)).toEqual(new Set(ids));
    // Newest first.
    const created = new Map(ids.map((id, i) => [id, Math.floor(i / 2)]));
    const times = all.map((id) => created.get(id)!);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(problemType(await c.post(`${c.kid}/orders?cursor=bm90LWEtY3Vyc29y`, null))).toBe("malformed");
  });
});
