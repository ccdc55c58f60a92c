// The web console (docs/console.md) in a real browser: playwright-core driving Debian's chromium
// (/usr/bin/chromium, never a downloaded one) against a coordinator with in-process custodians.
// Login (refused, then admin), the inventory with its filters, a certificate issued while the page
// is open appearing without a reload, a revoked one shown as revoked, a requester seeing only its
// own, a request's approvals, a 390 px wide screen without sideways scrolling, the strict headers
// and the CSRF checks. Screenshots go to test-results/console/; with TCA_UPDATE_SCREENSHOT=1 the
// README's docs/console.png is written again.
import "reflect-metadata";
import { mkdirSync, copyFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { approval, exchangeUntil, makeCsr, startHttpCa, type InProcessCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = new URL("../../test-results/console/", import.meta.url).pathname;
const README_SHOT = new URL("../../docs/console.png", import.meta.url).pathname;
const OTHER_TOKEN = "console-other-requester-token-0123";

let coordinator: RunningCoordinator;
let ca: InProcessCa;
let url: string;
let browser: Browser;
const issued: { id: string; serial: string; name: string; owner: string }[] = [];
/** Errors the pages reported (a CSP violation is one). */
const pageErrors: string[] = [];

async function issue(name: string, owner: "dev" | "other" = "dev", profile = "server") {
  const r = await fetch(`${url}/api/v1/requests`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${owner === "dev" ? EXAMPLE_REQUESTER_TOKEN : OTHER_TOKEN}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ csr: await makeCsr([name]), profile }),
  });
  expect(r.status, await r.clone().text()).toBe(202);
  const { id, serial } = (await r.json()) as { id: string; serial: string };
  const view = await ca.services.requests.view(id);
  for (const who of ["alice", "bob"]) await ca.services.requests.decide(id, approval(ca, who, view));
  await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
  const c = { id, serial, name, owner };
  issued.push(c);
  return c;
}

async function newPage(
  o: { width?: number; height?: number } = {},
): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({
    viewport: { width: o.width ?? 1280, height: o.height ?? 900 },
    colorScheme: "light",
  });
  const page = await ctx.newPage();
  page.on("console", (m) => {
    // Pages answered 401/403/404 on purpose below are logged as failed loads: not errors here.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return { ctx, page };
}

async function login(page: Page, token: string) {
  await page.goto(`${url}/ui/login`);
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
}

const tableRows = (page: Page) => page.locator("#inventory tbody tr");

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  ({ ca, coordinator, url } = await startHttpCa({
    ceremony: true,
    console: true,
    extraRequesters: [{ name: "other", token: OTHER_TOKEN }],
  }));
  await issue("api.example.internal");
  await issue("db.example.internal");
  await issue("cache.example.internal", "other");
  await issue("worker.example.internal", "dev", "client");
  const rev = await fetch(`${url}/api/v1/certificates/${issued[1]!.serial}/revoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "keyCompromise" }),
  });
  expect(rev.status, await rev.clone().text()).toBe(200);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await coordinator?.close();
});

describe("the web console", () => {
  it("asks for a token, refuses a wrong one, and sends a stranger to the login page", async () => {
    const { ctx, page } = await newPage();
    await page.goto(`${url}/ui/certificates`);
    expect(new URL(page.url()).pathname).toBe("/ui/login");
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Log in");
    await login(page, "not-a-token-of-this-ca-0123456789");
    expect(new URL(page.url()).pathname).toBe("/ui/login");
    expect(await page.getByRole("alert").textContent()).toContain("not valid");
    expect((await ctx.cookies()).filter((c) => c.name === "tca_console")).toEqual([]);
    await page.screenshot({ path: `${SHOTS}login-refused.png`, fullPage: true });
    await ctx.close();
  });

  it("logs an admin in: every issued certificate, status as text, filters that narrow", async () => {
    const { ctx, page } = await newPage();
    await login(page, EXAMPLE_ADMIN_TOKEN);
    expect(new URL(page.url()).pathname).toBe("/ui/certificates");
    const cookie = (await ctx.cookies()).find((c) => c.name === "tca_console")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/ui" });
    await expect.poll(() => tableRows(page).count()).toBe(issued.length);
    for (const c of issued) await page.getByText(c.name, { exact: true }).waitFor();
    const revokedRow = tableRows(page).filter({ hasText: "db.example.internal" });
    expect(await revokedRow.locator(".status").textContent()).toBe("revoked");
    expect(await revokedRow.textContent()).toContain("keyCompromise");
    await page.screenshot({ path: `${SHOTS}certificates.png`, fullPage: true });
    if (process.env.TCA_UPDATE_SCREENSHOT === "1") copyFileSync(`${SHOTS}certificates.png`, README_SHOT);

    await page.getByLabel("Status").selectOption("revoked");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/status=revoked/);
    await expect.poll(() => tableRows(page).count()).toBe(1);
    expect(await tableRows(page).first().textContent()).toContain("db.example.internal");

    await page.goto(`${url}/ui/certificates`);
    await page.getByLabel("Name contains").fill("cache");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/q=cache/);
    await expect.poll(() => tableRows(page).count()).toBe(1);
    expect(await tableRows(page).first().textContent()).toContain("other");
    await ctx.close();
  });

  it("shows a certificate issued while the page is open, without a reload", async () => {
    const { ctx, page } = await newPage();
    await login(page, EXAMPLE_ADMIN_TOKEN);
    await expect.poll(() => tableRows(page).count()).toBe(issued.length);
    // A mark on this document: a reload would lose it.
    await page.evaluate(() => ((window as unknown as { mark: number }).mark = 42));
    const fresh = await issue("fresh.example.internal");
    await page.getByText(fresh.name, { exact: true }).waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => (window as unknown as { mark?: number }).mark)).toBe(42);
    expect(await tableRows(page).first().textContent()).toContain(fresh.name);
    await page.screenshot({ path: `${SHOTS}live-update.png`, fullPage: true });
    await ctx.close();
  });

  it("shows a requester only its own certificates, and no custodian or audit pages", async () => {
    const { ctx, page } = await newPage();
    await login(page, OTHER_TOKEN);
    const own = issued.filter((c) => c.owner === "other");
    await expect.poll(() => tableRows(page).count()).toBe(own.length);
    expect(await page.locator("#inventory").textContent()).not.toContain("api.example.internal");
    expect(await page.getByLabel("Requester").count()).toBe(0);
    expect(await page.getByRole("link", { name: "Custodians" }).count()).toBe(0);
    const other = await page.goto(`${url}/ui/requests/${issued[0]!.id}`);
    expect(other!.status()).toBe(404);
    const custodians = await page.goto(`${url}/ui/custodians`);
    expect(custodians!.status()).toBe(403);
    await page.goto(`${url}/ui/requests/${own[0]!.id}`);
    await page.getByRole("heading", { name: "Approvals and rejections" }).waitFor();
    await ctx.close();
  });

  it("shows a request's approvals with custodian and time, and its signing", async () => {
    const { ctx, page } = await newPage();
    await login(page, EXAMPLE_ADMIN_TOKEN);
    await page.getByRole("link", { name: issued[0]!.serial }).click();
    await page.waitForURL(`**/ui/requests/${issued[0]!.id}`);
    const approvals = page.locator("section", {
      has: page.getByRole("heading", { name: "Approvals and rejections" }),
    });
    for (const who of ["alice", "bob"]) {
      const row = approvals.locator("tbody tr").filter({ hasText: who });
      expect(await row.textContent()).toContain("approved");
      expect(await row.locator("time").first().getAttribute("datetime")).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    }
    expect(await page.locator("section", { hasText: "Signing" }).last().textContent()).toContain("Events");
    await page.screenshot({ path: `${SHOTS}request.png`, fullPage: true });
    for (const [path, heading] of [
      ["/ui/custodians", "Custodians"],
      ["/ui/crl", "Certificate revocation list"],
      ["/ui/charts", "Charts"],
      ["/ui/audit", "Audit chain"],
    ] as const) {
      const res = await page.goto(`${url}${path}`);
      expect(res!.status(), path).toBe(200);
      await page.getByRole("heading", { level: 1, name: heading }).waitFor();
      await page.screenshot({ path: `${SHOTS}${path.slice(4)}.png`, fullPage: true });
    }
    await page.goto(`${url}/ui/crl`);
    await expect.poll(async () => (await page.content()).includes("keyCompromise")).toBe(true);
    await page.goto(`${url}/ui/custodians`);
    for (const who of ca.names) await page.getByRole("cell", { name: who, exact: true }).waitFor();
    await page.goto(`${url}/ui/charts`);
    expect(await page.locator("svg[role=img]").count()).toBe(2);
    // The audit chain, read and verified by the coordinator (docs/audit.md).
    await page.goto(`${url}/ui/audit`);
    expect(await page.getByRole("status").textContent()).toContain("verified");
    expect(await page.locator("tbody").textContent()).toContain(issued[0]!.id);
    await ctx.close();
  });

  it("fits a 390 px wide screen without sideways scrolling", async () => {
    const { ctx, page } = await newPage({ width: 390, height: 844 });
    await login(page, EXAMPLE_ADMIN_TOKEN);
    await expect.poll(() => tableRows(page).count()).toBeGreaterThan(0);
    for (const path of ["/ui/certificates", `/ui/requests/${issued[0]!.id}`, "/ui/charts", "/ui/crl"]) {
      await page.goto(`${url}${path}`);
      const { scroll, width } = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        width: window.innerWidth,
      }));
      expect(scroll, path).toBeLessThanOrEqual(width);
    }
    await page.goto(`${url}/ui/certificates`);
    await page.screenshot({ path: `${SHOTS}narrow.png`, fullPage: true });
    await ctx.close();
  });

  it("logs out: the cookie is gone and the pages ask for a token again", async () => {
    const { ctx, page } = await newPage();
    await login(page, EXAMPLE_ADMIN_TOKEN);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL("**/ui/login");
    expect((await ctx.cookies()).filter((c) => c.name === "tca_console")).toEqual([]);
    await page.goto(`${url}/ui/certificates`);
    expect(new URL(page.url()).pathname).toBe("/ui/login");
    await ctx.close();
  });

  it("loaded nothing the CSP refused, and no script failed", () => {
    expect(pageErrors).toEqual([]);
  });
});

describe("console HTTP rules", () => {
  it("sends the strict headers on every page and asset", async () => {
    for (const path of ["/ui/login", "/ui/assets/htmx.min.js", "/ui/assets/console.css", "/ui/nope"]) {
      const res = await fetch(`${url}${path}`);
      expect(res.headers.get("content-security-policy"), path).toContain(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
      );
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    }
  });

  it("refuses a login or logout POST from another origin or without one", async () => {
    const body = new URLSearchParams({ token: EXAMPLE_ADMIN_TOKEN });
    const post = (path: string, headers: Record<string, string>) =>
      fetch(`${url}${path}`, { method: "POST", body, headers, redirect: "manual" });
    expect((await post("/ui/login", {})).status).toBe(403);
    const cross = await post("/ui/login", { origin: "https://evil.example" });
    expect(cross.status).toBe(403);
    expect(cross.headers.get("set-cookie")).toBeNull();
    const site = await post("/ui/login", { origin: url, "sec-fetch-site": "cross-site" });
    expect(site.status).toBe(403);
    const same = await post("/ui/login", { origin: url });
    expect(same.status).toBe(303);
    expect(same.headers.get("set-cookie")).toMatch(/HttpOnly/i);
    expect((await post("/ui/logout", { origin: "https://evil.example" })).status).toBe(403);
  });

  it("changes nothing: a POST elsewhere under /ui/ is not a route", async () => {
    const res = await fetch(`${url}/ui/certificates`, {
      method: "POST",
      headers: { origin: url },
      redirect: "manual",
    });
    expect([303, 404]).toContain(res.status);
  });
});
