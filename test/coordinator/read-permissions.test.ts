// Authenticated reads (docs/security-model.md, "Who can read what"): each route against
// each kind of reader, over HTTP, on a coordinator with a real CA (in-process DKG and root). Two
// requesters, an admin, the custodians' signed reads (src/protocol/signed-read.ts), and strangers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { connectCustodian } from "../../src/custodian/connect.ts";
import { signReadHeader, verifySignedRead } from "../../src/protocol/signed-read.ts";
import { RequestViewSchema } from "../../src/protocol/approval.ts";
import { z } from "zod";
import { approval, exchangeUntil, makeCsr, type InProcessCa, startHttpCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const NAMES = ["alice", "bob", "carol"];
const OTHER_TOKEN = "second-requester-token-0123456789";
let coordinator: RunningCoordinator;
let ca: InProcessCa;
let url: string;
let ceremonyId: string;
/** A's request (issued), B's request (pending), and the signing job of A's. */
let mine: { id: string; tbsSha256: string };
let theirs: { id: string; tbsSha256: string };
let jobId: string;

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const A = bearer(EXAMPLE_REQUESTER_TOKEN);
const B = bearer(OTHER_TOKEN);
const ADMIN = bearer(EXAMPLE_ADMIN_TOKEN);
const signed = (who: string, path: string, now = Date.now(), method = "GET") => ({
  authorization: signReadHeader(ca.signers.get(who)!, method, path, now),
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers });
async function problem(res: Response): Promise<{ status: number; detail: string; code: string }> {
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  return (await res.json()) as { status: number; detail: string; code: string };
}

beforeAll(async () => {
  // ca-config/ca.yaml with fresh custodian identities and a second requester ("other").
  const h = await startHttpCa({
    names: NAMES,
    extraRequesters: [{ name: "other", token: OTHER_TOKEN }],
    ceremony: true,
  });
  ({ ca, coordinator, url } = h);
  ceremonyId = h.ceremonyId!;

  const submit = async (headers: Record<string, string>) => {
    const r = await fetch(`${url}/api/v1/requests`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ csr: await makeCsr(), profile: "server" }),
    });
    expect(r.status).toBe(202);
    const id = ((await r.json()) as { id: string }).id;
    return { id, tbsSha256: (await ca.services.requests.view(id)).tbsSha256 };
  };
  mine = await submit(A);
  theirs = await submit(B);
  for (const who of ["alice", "bob"]) await ca.services.requests.decide(mine.id, approval(ca, who, mine));
  await exchangeUntil(ca, async () => (await ca.services.requests.view(mine.id)).status === "issued");
  jobId = (await ca.services.requests.view(mine.id)).signing!.job;
}, 120_000);

afterAll(async () => {
  await coordinator?.close();
});

const PUBLIC = [
  "/ca.pem",
  "/ca.crt",
  "/crl",
  "/crl.pem",
  "/api/v1/health",
  "/api/v1/health/live",
  "/api/v1/openapi.json",
];
const protectedRoutes = () => [
  "/api/v1/requests",
  `/api/v1/requests/${mine.id}`,
  `/api/v1/requests/${mine.id}/certificate`,
  `/api/v1/ceremonies/${ceremonyId}`,
  `/api/v1/ceremonies/${ceremonyId}/messages?type=dkg/round1`,
  `/api/v1/signing/jobs/${jobId}`,
  "/api/v1/changes?wait=0",
  "/metrics",
];

describe("anonymous", () => {
  it("gets 200 on each public route", async () => {
    for (const p of PUBLIC) expect((await get(p)).status, p).toBe(200);
  });

  it("gets 401 problem+json with WWW-Authenticate on each protected route", async () => {
    for (const p of protectedRoutes()) {
      const res = await get(p);
      expect(res.status, p).toBe(401);
      expect(res.headers.get("www-authenticate"), p).toMatch(/Bearer realm="tca", TCA-Signed realm="tca"/);
      expect((await problem(res)).code).toBe("UNAUTHORIZED");
    }
  });

  it("gets 401 for a wrong token, never anonymous access", async () => {
    const res = await get("/api/v1/requests", bearer("not-a-real-token-at-all"));
    expect(res.status).toBe(401);
    expect((await problem(res)).detail).toBe("the token is not valid");
  });

  it("sees health without the per-custodian and per-replica detail", async () => {
    const h = (await (await get("/api/v1/health")).json()) as Record<string, unknown>;
    expect(h.status).toBe("ok");
    expect(h).not.toHaveProperty("custodians");
    expect(h).not.toHaveProperty("replicas");
    expect(h.summary).toMatchObject({ custodians: { total: 3 }, replicas: { total: 1 } });
  });
});

describe("a requester", () => {
  it("sees its own request and chain, and its list holds only its own", async () => {
    const v = await get(`/api/v1/requests/${mine.id}`, A);
    expect(v.status).toBe(200);
    expect(((await v.json()) as { requester: string }).requester).toBe("dev");
    const chain = await get(`/api/v1/requests/${mine.id}/certificate`, A);
    expect(chain.status).toBe(200);
    expect(await chain.text()).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const list = (await (await get("/api/v1/requests", A)).json()) as { requests: { id: string }[] };
    expect(list.requests.map((r) => r.id)).toEqual([mine.id]);
    const other = (await (await get("/api/v1/requests", B)).json()) as { requests: { id: string }[] };
    expect(other.requests.map((r) => r.id)).toEqual([theirs.id]);
  });

  it("gets 404 for another requester's request and chain, as for one that does not exist", async () => {
    for (const p of [`/api/v1/requests/${theirs.id}`, `/api/v1/requests/${theirs.id}/certificate`]) {
      const res = await get(p, A);
      expect(res.status, p).toBe(404);
      expect((await problem(res)).detail).toBe(`no request ${theirs.id}`);
    }
    const missing = await get(`/api/v1/requests/00000000-0000-4000-8000-000000000000`, A);
    expect((await problem(missing)).detail).toBe("no request 00000000-0000-4000-8000-000000000000");
    expect((await get(`/api/v1/requests/${mine.id}`, B)).status).toBe(404);
  });

  it("reads the change feed, but gets 403 on ceremonies, signing jobs and /metrics", async () => {
    expect((await get("/api/v1/changes?wait=0", A)).status).toBe(200);
    for (const p of [`/api/v1/ceremonies/${ceremonyId}`, `/api/v1/signing/jobs/${jobId}`, "/metrics"]) {
      const res = await get(p, A);
      expect(res.status, p).toBe(403);
      expect((await problem(res)).code).toBe("FORBIDDEN");
    }
  });
});

describe("an admin", () => {
  it("reads everything, every request and /metrics", async () => {
    for (const p of protectedRoutes()) expect((await get(p, ADMIN)).status, p).toBe(200);
    const list = (await (await get("/api/v1/requests", ADMIN)).json()) as { requests: { id: string }[] };
    expect(list.requests.map((r) => r.id).sort()).toEqual([mine.id, theirs.id].sort());
    expect(await (await get("/metrics", ADMIN)).text()).toMatch(/^# HELP /m);
    const h = (await (await get("/api/v1/health", ADMIN)).json()) as { custodians: { name: string }[] };
    expect(h.custodians.map((c) => c.name)).toEqual(NAMES);
  });
});

describe("a custodian's signed read", () => {
  it("reads requests, ceremonies, signing jobs and the change feed, not /metrics", async () => {
    for (const p of protectedRoutes().filter((x) => x !== "/metrics"))
      expect((await get(p, signed("bob", p))).status, p).toBe(200);
    const list = (await (await get("/api/v1/requests", signed("bob", "/api/v1/requests"))).json()) as {
      requests: unknown[];
    };
    expect(list.requests).toHaveLength(2);
    expect((await get("/metrics", signed("bob", "/metrics"))).status).toBe(403);
    const h = (await (await get("/api/v1/health", signed("carol", "/api/v1/health"))).json()) as {
      custodians: unknown[];
    };
    expect(h.custodians).toHaveLength(3);
  });

  it("is what connectCustodian sends when given the identity", async () => {
    const client = connectCustodian({ urls: url, identity: ca.signers.get("alice")! });
    const { requests } = await client.get(
      "/api/v1/requests?status=issued",
      z.object({ requests: z.array(RequestViewSchema) }),
    );
    expect(requests.map((r) => r.id)).toEqual([mine.id]);
    const anonymous = connectCustodian({ urls: url });
    await expect(anonymous.get("/api/v1/requests", z.unknown())).rejects.toThrow(/401|credentials/);
  });

  it("is needed for the exchange, whose answer lists the requests to review, and must name its signer", async () => {
    const path = "/api/v1/custodians/exchange";
    const body = (custodian: string) =>
      JSON.stringify({
        custodian,
        instance: randomBytes(16).toString("hex"),
        envelopes: [],
        wait: 0,
        review: true,
      });
    const post = (headers: Record<string, string>, custodian: string) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: body(custodian),
      });
    // Anonymous, or a requester or admin token: no custodian's review list.
    for (const h of [{}, A, ADMIN]) {
      const res = await post(h, "alice");
      expect([401, 403]).toContain(res.status);
      expect((await problem(res)).detail).toMatch(/custodian exchange/);
    }
    // Signed by bob, asking for alice's work: 403.
    const asOther = await post(signed("bob", path, Date.now(), "POST"), "alice");
    expect(asOther.status).toBe(403);
    expect((await problem(asOther)).detail).toMatch(/signed by bob, not by alice/);
    // Signed by each custodian for itself: its review list. A pending request goes first to t of
    // the n custodians (docs/signing-pipeline.md), so B's pending request is in some of them.
    const listed = new Set<string>();
    for (const name of NAMES) {
      const ok = await post(signed(name, path, Date.now(), "POST"), name);
      expect(ok.status).toBe(200);
      for (const r of ((await ok.json()) as { requests: { id: string }[] }).requests) listed.add(r.id);
    }
    expect([...listed]).toContain(theirs.id);
  });

  it("is refused when replayed (the same header twice)", async () => {
    const h = signed("alice", "/api/v1/requests");
    expect((await get("/api/v1/requests", h)).status).toBe(200);
    const again = await get("/api/v1/requests", h);
    expect(again.status).toBe(401);
    expect(again.headers.get("www-authenticate")).toMatch(/TCA-Signed/);
    expect((await problem(again)).detail).toBe("this signed read was already used");
  });

  it("is refused when stale or from the future beyond 60 s", async () => {
    const stale = await get("/api/v1/requests", signed("alice", "/api/v1/requests", Date.now() - 120_000));
    expect(stale.status).toBe(401);
    expect((await problem(stale)).detail).toMatch(/from alice was issued 120 s ago \(allowed: ±60 s\)/);
    const ahead = await get("/api/v1/requests", signed("alice", "/api/v1/requests", Date.now() + 120_000));
    expect(ahead.status).toBe(401);
    expect((await problem(ahead)).detail).toMatch(/ahead of the coordinator's clock/);
  });

  it("is refused for another path, query or method", async () => {
    const res = await get(`/api/v1/requests/${theirs.id}`, signed("alice", `/api/v1/requests/${mine.id}`));
    expect(res.status).toBe(401);
    expect((await problem(res)).detail).toBe(
      `the signed read from alice is for GET /api/v1/requests/${mine.id}, not this request`,
    );
    const q = await get("/api/v1/requests?status=pending", signed("alice", "/api/v1/requests"));
    expect((await problem(q)).detail).toMatch(/is for GET \/api\/v1\/requests, not this request/);
    const m = await get("/api/v1/requests", signed("alice", "/api/v1/requests", Date.now(), "POST"));
    expect((await problem(m)).detail).toMatch(/is for POST/);
  });

  it("is refused when signed by a key not in the roster, or with a bad signature", async () => {
    const mallory = { name: "mallory", signingSecret: new Uint8Array(randomBytes(32)) };
    const unknown = await get("/api/v1/requests", {
      authorization: signReadHeader(mallory, "GET", "/api/v1/requests"),
    });
    expect(unknown.status).toBe(401);
    expect((await problem(unknown)).detail).toBe('"mallory" is not a custodian in the roster');
    // A key not in the roster claiming a roster name.
    const impostor = { name: "alice", signingSecret: new Uint8Array(randomBytes(32)) };
    const bad = await get("/api/v1/requests", {
      authorization: signReadHeader(impostor, "GET", "/api/v1/requests"),
    });
    expect(bad.status).toBe(401);
    expect((await problem(bad)).detail).toBe("the signed read claiming to be from alice has a bad signature");
    const malformed = await get("/api/v1/requests", { authorization: "TCA-Signed nonsense" });
    expect(malformed.status).toBe(401);
    expect((await problem(malformed)).detail).toMatch(/not <payload>\.<signature>/);
  });
});

describe("signed-read module", () => {
  it("round-trips, and binds method, path, time and sender", () => {
    const roster = new Map([
      [
        "alice",
        Buffer.from(ed25519.getPublicKey(ca.signers.get("alice")!.signingSecret)).toString("base64url"),
      ],
    ]);
    const now = Date.now();
    const h = signReadHeader(
      ca.signers.get("alice")!,
      "get",
      new URL("http://x/api/v1/requests?status=issued"),
      now,
    );
    const p = verifySignedRead(h, { method: "GET", path: "/api/v1/requests?status=issued", roster, now });
    expect(p).toMatchObject({ v: 1, sender: "alice", method: "GET", path: "/api/v1/requests?status=issued" });
    expect(p.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(() => verifySignedRead(h, { method: "GET", path: "/api/v1/requests", roster, now })).toThrow(
      /not this request/,
    );
    expect(() =>
      verifySignedRead(h, {
        method: "GET",
        path: "/api/v1/requests?status=issued",
        roster,
        now: now + 61_000,
      }),
    ).toThrow(/61 s ago/);
    expect(() =>
      verifySignedRead(h, { method: "GET", path: "/api/v1/requests?status=issued", roster: new Map(), now }),
    ).toThrow(/not a custodian/);
  });
});

describe("a relayed decision", () => {
  it("shows the request only to a custodian's signed read or an admin; anyone else learns the status", async () => {
    // Runs last: one approval of B's request (t = 2, so it stays pending).
    const env = JSON.stringify(approval(ca, "alice", theirs));
    const path = `/api/v1/requests/${theirs.id}/approvals`;
    const post = (headers: Record<string, string>) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: env,
      });
    const anonymous = await post({});
    expect(anonymous.status).toBe(202);
    expect(await anonymous.json()).toEqual({ id: theirs.id, status: "pending", missing: 1 });
    // The same envelope again (idempotent), relayed by a requester: still no request data.
    expect(Object.keys((await (await post(A)).json()) as object).sort()).toEqual(["id", "missing", "status"]);
    const signedBy = await post(signed("carol", path, Date.now(), "POST"));
    expect(signedBy.status).toBe(202);
    expect((await signedBy.json()) as { csr?: string; tbsSha256?: string }).toMatchObject({
      id: theirs.id,
      tbsSha256: theirs.tbsSha256,
    });
  });
});
