// The bench harness's own parts (docs/benchmarks.md): the single-key floor issues real certificates
// over the same HTTP contract as the coordinator, the load generator counts what it saw, and the
// procfs / Prometheus readers parse what Linux and prom-client write. No timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { parseCaConfig } from "../../src/config/load.ts";
import { startFloor, type FloorCa } from "../../bench/floor.ts";
import { generateCsrs, makeCsr } from "../../bench/lib/csr.ts";
import { runLoad } from "../../bench/lib/load.ts";
import { HttpClient, parsePrometheus, percentile } from "../../bench/lib/http.ts";
import { cpuMsBetween, parseStat, processTree, snapshot, statusKiB } from "../../bench/lib/procs.ts";
import { parseCsr } from "../../src/x509/csr.ts";
import { ROOT } from "../helpers/processes.ts";

const TOKEN = "bench-harness-test-token-0123456789";

describe("single-key floor", () => {
  let floor: FloorCa;
  beforeAll(async () => {
    const raw = parseYaml(readFileSync(join(ROOT, "ca-config/ca.yaml"), "utf8")) as Record<string, unknown>;
    raw.requesters = [
      {
        name: "dev",
        tokenSha256: createHash("sha256").update(TOKEN).digest("hex"),
        profiles: ["server", "client"],
        allowedNames: ["*"],
      },
    ];
    floor = await startFloor(parseCaConfig(toYaml(raw)));
  });
  afterAll(async () => {
    await floor?.close();
  });

  it("issues a verifiable certificate per CSR through submit + certificate?wait", async () => {
    const csrs = generateCsrs(0, 5, "floor-test");
    const r = await runLoad({ url: floor.url, token: TOKEN, csrs, concurrency: 2, maxSeconds: 60 });
    expect(r).toMatchObject({ target: 5, submitted: 5, issued: 5, failed: 0, stuck: 0, timedOut: false });
    expect(r.latencyMs.p50).toBeGreaterThan(0);

    const client = new HttpClient(1);
    try {
      const sub = await client.request("POST", `${floor.url}/api/v1/requests`, {
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ csr: makeCsr("svc-x.floor-test.internal"), profile: "server" }),
      });
      expect(sub.status).toBe(202);
      const { id } = JSON.parse(sub.body) as { id: string };
      const chain = await client.request("GET", `${floor.url}/api/v1/requests/${id}/certificate?wait=5`);
      expect(chain.status).toBe(200);
      const [leafPem, rootPem] = chain.body.split(/(?<=-----END CERTIFICATE-----\n)/);
      const leaf = new X509Certificate(leafPem!);
      const root = new X509Certificate(rootPem!);
      expect(rootPem).toBe(floor.rootPem);
      expect(leaf.verify(root.publicKey)).toBe(true);
      expect(leaf.subjectAltName).toBe("DNS:svc-x.floor-test.internal");
      expect(leaf.issuer).toBe(root.subject);

      // Same refusals as the coordinator: no token, and a name the policy refuses.
      const anon = await client.request("POST", `${floor.url}/api/v1/requests`, {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ csr: makeCsr("a.floor-test.internal"), profile: "server" }),
      });
      expect(anon.status).toBe(401);
      const bad = await client.request("POST", `${floor.url}/api/v1/requests`, {
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ csr: "not a csr", profile: "server" }),
      });
      expect(bad.status).toBe(422);
    } finally {
      client.close();
    }
  });

  it("the load generator reports refusals as failures, not as issued", async () => {
    const r = await runLoad({
      url: floor.url,
      token: "wrong-token-wrong-token-wrong",
      csrs: generateCsrs(0, 3, "floor-test"),
      concurrency: 1,
      maxSeconds: 30,
    });
    expect(r).toMatchObject({ submitted: 0, issued: 0, failed: 3, errors: { "submit 401": 3 } });
  });
});

describe("bench readers", () => {
  it("CSRs carry the name as CN and DNS SAN and pass the CA's CSR checks", () => {
    const csr = parseCsr(makeCsr("svc-7.bench.internal"));
    expect(csr.subjectString).toBe("CN=svc-7.bench.internal");
    expect(csr.sans).toEqual([{ type: "dns", value: "svc-7.bench.internal" }]);
    expect(csr.keyType).toBe("ec-p256");
  });

  it("parses /proc/PID/stat, also with spaces and parentheses in the command name", () => {
    const fields = ["S", "42", ...Array(9).fill("0"), "150", "25", ...Array(30).fill("0")];
    expect(parseStat(7, `7 (node (tca) x) ${fields.join(" ")}`)).toEqual({ pid: 7, ppid: 42, cpuTicks: 175 });
    const self = snapshot(process.pid, "self");
    expect(self.byLabel.get("self")?.pid).toBe(process.pid);
    expect(processTree(process.pid)[0]).toBe(process.pid);
    expect(statusKiB(process.pid, "VmHWM")).toBeGreaterThan(1000);
    const later = { byLabel: new Map([["self", { pid: process.pid, cpuTicks: 1e9 }]]) };
    expect(cpuMsBetween(self, later).get("self")).toBeGreaterThan(0);
  });

  it("reads Prometheus text and nearest-rank percentiles", () => {
    const s = parsePrometheus(
      '# HELP x y\nhttp_requests_total{method="GET",route="/api/v1/requests/:id"} 3\ntca_requests{status="pending"} 0\nup 1\n',
    );
    expect(s).toEqual([
      { name: "http_requests_total", labels: { method: "GET", route: "/api/v1/requests/:id" }, value: 3 },
      { name: "tca_requests", labels: { status: "pending" }, value: 0 },
      { name: "up", labels: {}, value: 1 },
    ]);
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect([percentile(v, 50), percentile(v, 95), percentile(v, 99), percentile(v, 100)]).toEqual([
      50, 95, 99, 100,
    ]);
    expect(percentile([], 50)).toBeUndefined();
  });
});
