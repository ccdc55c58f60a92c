// http_requests_total{method, route} on /metrics (docs/benchmarks.md): `npm run bench` divides it by the
// certificates issued. The route label is the matched pattern, never the raw URL.
import { describe, expect, it } from "vitest";
import { useCoordinator } from "../helpers/coordinator.ts";
import { EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";

/** Reads need credentials (docs/security-model.md); /metrics is the admin's. */
const admin = { headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` } };

/** `http_requests_total` samples as "METHOD route" → value. */
function httpCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^http_requests_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out.set(`${labels.method} ${labels.route}`, Number(m[2]));
  }
  return out;
}

describe("http_requests_total", () => {
  const coordinator = useCoordinator("tca-http-metrics-");

  it("counts requests by method and matched route pattern, whatever their status", async () => {
    const ids = ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"];
    for (const id of ids)
      expect((await fetch(`${coordinator.url}/api/v1/requests/${id}`, admin)).status).toBe(404);
    await (await fetch(`${coordinator.url}/api/v1/health`)).text(); // 200 or 503 (no CA key yet)
    expect((await fetch(`${coordinator.url}/no/such/path/${ids[0]}`)).status).toBe(404);
    const unauthenticated = await fetch(`${coordinator.url}/api/v1/requests`, { method: "POST" });
    expect(unauthenticated.status).toBe(401);

    // A response's "close" may land a moment after its client read it: scrape until it shows.
    let text = "";
    let counts = new Map<string, number>();
    for (let i = 0; i < 50 && (counts.get("POST /api/v1/requests") ?? 0) < 1; i++) {
      text = await (await fetch(`${coordinator.url}/metrics`, admin)).text();
      counts = httpCounts(text);
      if ((counts.get("POST /api/v1/requests") ?? 0) < 1) await new Promise((r) => setTimeout(r, 20));
    }
    expect(text).toContain("# TYPE http_requests_total counter");
    expect(counts.get("GET /api/v1/requests/:id")).toBe(2);
    expect(counts.get("GET /api/v1/health")).toBe(1);
    expect(counts.get("GET unmatched")).toBe(1);
    expect(counts.get("POST /api/v1/requests")).toBe(1);
    // Raw URLs never become labels: the label set stays bounded.
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toContain("/no/such/path");

    const again = httpCounts(await (await fetch(`${coordinator.url}/metrics`, admin)).text());
    expect(again.get("GET /metrics")).toBeGreaterThanOrEqual(1);
  });
});
