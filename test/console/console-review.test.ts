// The web console's HTTP rules, in process without a browser (docs/console.md): the audit page's
// verdict kept per chain head and checked over a bounded prefix with the true tail shown, a second
// console cookie refusing the session and cleared everywhere, the __Host- cookie over TLS, 400
// pages that do not echo unknown parameters, and console pages charged to the token's rate limit.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import express from "express";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { AuditCheckCache, type AuditHead } from "../../src/console/audit-check.ts";
import { sessionToken, setSession, clearEverySession, HOST_COOKIE } from "../../src/console/session.ts";
import { auditHead } from "../../src/coordinator/audit/log.ts";
import type { AuditVerdict } from "../../src/protocol/audit.ts";
import { makeCsr, startHttpCa, type InProcessCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const running: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const c of running) await c.close();
});

const admin = { cookie: `tca_console=${EXAMPLE_ADMIN_TOKEN}` };

describe("the audit page's verdict", () => {
  const verdict = (checked: number): AuditVerdict => ({ ok: true, checked, certificates: 0, checkpoints: 0 });

  it("is computed once per head, shared by concurrent loads, and again at most every 30 s", async () => {
    let now = 1_000_000;
    let computed = 0;
    let release: () => void = () => {};
    const cache = new AuditCheckCache({
      now: () => now,
      minIntervalMs: 30_000,
      compute: async (head: AuditHead) => {
        computed++;
        await new Promise<void>((r) => (release = r));
        return { verdict: verdict(head.seq), read: head.seq };
      },
    });
    const h1 = { seq: 10, hash: "a".repeat(64) };
    const first = cache.get(h1);
    const second = cache.get(h1);
    await Promise.resolve();
    release();
    expect(await first).toBe(await second);
    expect(computed).toBe(1);
    // The same head: kept however old.
    now += 3_600_000;
    expect((await cache.get(h1)).head).toEqual(h1);
    expect(computed).toBe(1);
    // A moved head long after the last check: computed again.
    const h2 = { seq: 11, hash: "b".repeat(64) };
    const again = cache.get(h2);
    await Promise.resolve();
    release();
    expect((await again).verdict.checked).toBe(11);
    expect(computed).toBe(2);
    // A moved head within 30 s of that: the last verdict stands.
    now += 29_000;
    const h3 = { seq: 12, hash: "c".repeat(64) };
    expect((await cache.get(h3)).head).toEqual(h2);
    expect(computed).toBe(2);
    now += 1_000;
    const later = cache.get(h3);
    await Promise.resolve();
    release();
    expect((await later).head).toEqual(h3);
    expect(computed).toBe(3);
  });

  it("checks the first N entries, says so, and shows the chain's true tail", async () => {
    const { ca, coordinator, url } = await startHttpCa({ ceremony: true, console: { auditCheckLimit: 3 } });
    running.push(coordinator);
    await request(ca, url);
    const head = (await auditHead(ca.services.store))!;
    expect(head.seq).toBeGreaterThan(3);
    const res = await fetch(`${url}/ui/audit`, { headers: admin });
    const page = await res.text();
    expect(res.status).toBe(200);
    expect(page).toContain("verified");
    expect(page).toContain(
      `Checked the first 3 of ${head.seq} entries; run <code>tca audit verify</code> for all.`,
    );
    // The table's first row is the head, not the last entry checked.
    expect(/<tbody>\s*<tr>\s*<td data-label="#">(\d+)<\/td>/.exec(page)?.[1]).toBe(String(head.seq));
  }, 120_000);
});

async function request(ca: InProcessCa, url: string): Promise<void> {
  const r = await fetch(`${url}/api/v1/requests`, {
    method: "POST",
    headers: { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ csr: await makeCsr(["audit.example.internal"]), profile: "server" }),
  });
  expect(r.status, await r.clone().text()).toBe(202);
  void ca;
}

describe("console sessions and input", () => {
  let url: string;
  let coordinator: RunningCoordinator;
  beforeAll(async () => {
    ({ coordinator, url } = await startHttpCa({ console: true }));
    running.push(coordinator);
  });

  it("counts two console cookies as no session, says so, and clears the cookie at every console path", async () => {
    const one = await fetch(`${url}/ui/crl`, { headers: admin, redirect: "manual" });
    expect(one.status).toBe(200);
    const tossed = { cookie: `tca_console=${EXAMPLE_REQUESTER_TOKEN}; ${admin.cookie}` };
    for (const path of ["/ui/crl", "/ui/login"]) {
      const res = await fetch(`${url}${path}`, { headers: tossed, redirect: "manual" });
      expect(await res.text(), path).toContain("A second console cookie was found");
      const cleared = res.headers
        .getSetCookie()
        .filter((c) => c.startsWith("tca_console=;") && /Expires=Thu, 01 Jan 1970/.test(c))
        .map((c) => /Path=([^;]*)/.exec(c)?.[1]);
      for (const p of [
        "/ui",
        "/ui/",
        "/",
        "/ui/certificates",
        "/ui/requests",
        "/ui/audit",
        "/ui/assets",
        path,
      ])
        expect(cleared, `${path}: ${p}`).toContain(p);
    }
    const hx = await fetch(`${url}/ui/certificates/table`, {
      headers: { ...tossed, "hx-request": "true" },
      redirect: "manual",
    });
    expect(hx.status).toBe(401);
    expect(hx.headers.get("hx-redirect")).toBe("/ui/login");
    expect(hx.headers.getSetCookie().some((c) => c.includes("Path=/ui/certificates/table"))).toBe(true);
  });

  it("names no unknown query parameter on a 400 page", async () => {
    const res = await fetch(`${url}/ui/certificates?injected_words_here=1`, { headers: admin });
    const page = await res.text();
    expect(res.status).toBe(400);
    expect(page).toContain("unknown parameter");
    expect(page).not.toContain("injected_words_here");
    const bad = await (await fetch(`${url}/ui/certificates?status=nonsense`, { headers: admin })).text();
    expect(bad).toContain("status");
  });
});

describe("console rate limits", () => {
  it("charges console pages to the cookie's token bucket, shared with its API calls", async () => {
    const { coordinator, url } = await startHttpCa({
      console: true,
      limits: { perToken: { ratePerSecond: 1, burst: 5 } },
    });
    running.push(coordinator);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++)
      statuses.push((await fetch(`${url}/ui/crl`, { headers: admin, redirect: "manual" })).status);
    expect(statuses).toContain(429);
    const api = await fetch(`${url}/api/v1/certificates`, {
      headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    });
    expect(api.status).toBe(429);
    expect(((await api.json()) as { detail: string }).detail).toContain("token");
  });
});

describe("the session cookie over TLS", () => {
  let base: string;
  beforeAll(async () => {
    // X-Forwarded-Proto stands in for TLS here: req.secure is what the session reads.
    const app = express();
    app.set("trust proxy", true);
    app.post("/ui/login", (req, res) => {
      setSession(req, res, EXAMPLE_ADMIN_TOKEN);
      res.end();
    });
    app.get("/ui/whoami", (req, res) => {
      const s = sessionToken(req);
      if (s.tossed) clearEverySession(req, res);
      res.json(s);
    });
    const server: Server = await new Promise((r) => {
      const s = app.listen(0, "127.0.0.1", () => r(s));
    });
    running.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  it("is __Host-tca_console: Secure, Path=/, no Domain; a plain tca_console is not read", async () => {
    const tls = { "x-forwarded-proto": "https" };
    const set = (await fetch(`${base}/ui/login`, { method: "POST", headers: tls })).headers.getSetCookie();
    expect(set).toHaveLength(1);
    expect(set[0]).toMatch(new RegExp(`^${HOST_COOKIE}=${EXAMPLE_ADMIN_TOKEN}; `));
    expect(set[0]).toMatch(/; Path=\/;/);
    expect(set[0]).toMatch(/; Secure/);
    expect(set[0]).toMatch(/; HttpOnly/);
    expect(set[0]).toMatch(/; SameSite=Strict/);
    expect(set[0]).not.toMatch(/Domain=/i);
    const who = async (cookie: string, headers: Record<string, string> = tls) =>
      (await fetch(`${base}/ui/whoami`, { headers: { ...headers, cookie } })).json();
    expect(await who(`tca_console=${EXAMPLE_REQUESTER_TOKEN}`)).toEqual({ tossed: false });
    expect(
      await who(`tca_console=${EXAMPLE_REQUESTER_TOKEN}; ${HOST_COOKIE}=${EXAMPLE_ADMIN_TOKEN}`),
    ).toEqual({
      token: EXAMPLE_ADMIN_TOKEN,
      tossed: false,
    });
    // Over plain HTTP, the Path=/ui cookie.
    const plain = (await fetch(`${base}/ui/login`, { method: "POST" })).headers.getSetCookie();
    expect(plain[0]).toMatch(/^tca_console=.*; Path=\/ui;/);
    expect(plain[0]).not.toMatch(/Secure/);
    expect(await who(`tca_console=${EXAMPLE_REQUESTER_TOKEN}`, {})).toEqual({
      token: EXAMPLE_REQUESTER_TOKEN,
      tossed: false,
    });
  });
});
