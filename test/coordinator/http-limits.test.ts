// Limits and clean input (docs/security-model.md): strict query integers, JSON-only bodies (415), messages
// that name the actual problem, 429 + Retry-After per IP and per token, the connection cap and the
// headers timeout. Each coordinator here is in-process on loopback with its own limits.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { loadCaConfig } from "../../src/config/load.ts";
import { startCoordinator, type RunningCoordinator } from "../../src/coordinator/server.ts";
import {
  applyServerLimits,
  BucketTable,
  DEFAULT_HTTP_LIMITS,
  parseBucket,
  type HttpLimits,
} from "../../src/coordinator/http/limits.ts";
import { limitOptions } from "../../src/cli/commands/serve.ts";
import { useCoordinator } from "../helpers/coordinator.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const EXAMPLE_CONFIG = new URL("../../ca-config/ca.yaml", import.meta.url).pathname;
const dirs: string[] = [];
const running: RunningCoordinator[] = [];
afterAll(async () => {
  for (const c of running) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function coordinatorWith(limits: Partial<HttpLimits>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "tca-limits-"));
  dirs.push(dir);
  const c = await startCoordinator({
    config: loadCaConfig(EXAMPLE_CONFIG),
    database: join(dir, "coordinator.db"),
    port: 0,
    logger: pino({ level: "silent" }),
    limits,
  });
  running.push(c);
  return c.url;
}

const problem = async (r: Response) => (await r.json()) as { detail: string; code: string; status: number };

describe("strict input", () => {
  const ca = useCoordinator("tca-strict-input-");

  it("query integers are decimal digits only: hex, exponents, signs, spaces and decimals are 400", async () => {
    // Reads need credentials (docs/security-model.md): these read as the admin.
    const admin = { headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` } };
    expect((await fetch(`${ca.url}/api/v1/changes?wait=0`, admin)).status).toBe(200);
    expect((await fetch(`${ca.url}/api/v1/changes?after=3&wait=0`, admin)).status).toBe(200);
    for (const q of [
      "wait=0x10",
      "wait=1e1",
      "wait=%2010",
      "wait=+5",
      "wait=-0",
      "wait=2.5",
      "after=0x1&wait=0",
      "wait=0&wait=1",
      "wait=31",
      "after=1e3&wait=0",
    ]) {
      const r = await fetch(`${ca.url}/api/v1/changes?${q}`, admin);
      expect(r.status, q).toBe(400);
      expect((await problem(r)).detail, q).toMatch(/query parameter (wait|after)/);
    }
    for (const path of [
      "/api/v1/requests/x/certificate",
      "/api/v1/requests/x",
      "/api/v1/ceremonies/x/messages?type=dkg%2Fround1&",
    ]) {
      const sep = path.includes("?") ? "" : "?";
      const r = await fetch(`${ca.url}${path}${sep}wait=0x10`, admin);
      expect(r.status, path).toBe(400);
      expect((await problem(r)).detail).toMatch(/wait must be a whole number written in decimal digits/);
    }
  });

  it("a revoke whose body is not JSON is 415 (never read as reason unspecified)", async () => {
    for (const [type, body] of [
      ["text/plain", '{"reason":"keyCompromise"}'],
      ["application/x-www-form-urlencoded", "reason=keyCompromise"],
    ] as const) {
      const r = await fetch(`${ca.url}/api/v1/certificates/0a0b0c0d0e0f101112/revoke`, {
        method: "POST",
        headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}`, "content-type": type },
        body,
      });
      expect(r.status, type).toBe(415);
      expect((await problem(r)).detail).toMatch(/Content-Type: application\/json/);
    }
    // An empty body (fetch sends Content-Length: 0), or a JSON one, reaches the revocation itself:
    // here, an unknown serial.
    const empty = await fetch(`${ca.url}/api/v1/certificates/0a0b0c0d0e0f101112/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    });
    expect(empty.status).toBe(404);
    const json = await fetch(`${ca.url}/api/v1/certificates/0a0b0c0d0e0f101112/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "keyCompromise" }),
    });
    expect(json.status).toBe(404);
  });

  it("a raw submission is told what is wrong with it: a bad validityHours is not a missing profile", async () => {
    const raw = (query: string) =>
      fetch(`${ca.url}/api/v1/requests?${query}`, {
        method: "POST",
        headers: { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}`, "content-type": "application/pkcs10" },
        body: "-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n",
      });
    for (const bad of ["abc", "0x10", "0", "1e3", "999999999"]) {
      const r = await raw(`profile=server&validityHours=${bad}`);
      expect(r.status, bad).toBe(400);
      const detail = (await problem(r)).detail;
      expect(detail, bad).toMatch(/query parameter validityHours/);
      expect(detail, bad).not.toMatch(/needs \?profile/);
    }
    expect((await problem(await raw("validityHours=24"))).detail).toMatch(/needs \?profile=NAME/);
    expect((await problem(await raw("profile=server&colour=red"))).detail).toMatch(
      /unknown query parameter colour/,
    );
    // JSON: a number, never a string that Number() would read.
    const json = await fetch(`${ca.url}/api/v1/requests`, {
      method: "POST",
      headers: { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ csr: "x", profile: "server", validityHours: "0x10" }),
    });
    expect(json.status).toBe(400);
    expect((await problem(json)).detail).toMatch(/validityHours/);
  });
});

describe("rate limits", () => {
  it("per IP: 429 with Retry-After and a problem body once the bucket is empty; custodian routes keep their own cap", async () => {
    const url = await coordinatorWith({ perLoopbackIp: { ratePerSecond: 1, burst: 3 } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${url}/api/v1/health/live`)).status);
    expect(statuses).toEqual([200, 200, 200]);
    const r = await fetch(`${url}/api/v1/health/live`);
    expect(r.status).toBe(429);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(r.headers.get("content-type")).toMatch(/application\/problem\+json/);
    const p = await problem(r);
    expect(p).toMatchObject({ status: 429, code: "TOO_MANY_REQUESTS" });
    expect(p.detail).toMatch(/too many requests from this address/);
    // The custodians' signed routes have their own (high) cap: a heartbeat is read and judged.
    const hb = await fetch(`${url}/api/v1/custodians/heartbeat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(hb.status).toBe(400);
  });

  it("per token: one token's flood does not hold up another token", async () => {
    const url = await coordinatorWith({ perToken: { ratePerSecond: 1, burst: 2 } });
    const list = (token: string) =>
      fetch(`${url}/api/v1/requests?status=pending`, { headers: { authorization: `Bearer ${token}` } });
    expect((await list(EXAMPLE_REQUESTER_TOKEN)).status).not.toBe(429);
    expect((await list(EXAMPLE_REQUESTER_TOKEN)).status).not.toBe(429);
    const third = await list(EXAMPLE_REQUESTER_TOKEN);
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("1");
    expect((await problem(third)).detail).toMatch(/from this token/);
    expect((await list(EXAMPLE_ADMIN_TOKEN)).status).not.toBe(429);
  });

  it("token buckets refill at the rate, name the wait, and stay bounded in number", () => {
    let now = 0;
    const t = new BucketTable({ ratePerSecond: 2, burst: 2 }, 3, () => now);
    expect([t.take("a"), t.take("a")]).toEqual([0, 0]);
    expect(t.take("a")).toBe(1);
    now = 500; // one token back
    expect(t.take("a")).toBe(0);
    expect(t.take("a")).toBe(1);
    const slow = new BucketTable({ ratePerSecond: 1, burst: 1 }, 10, () => now);
    slow.take("x");
    for (let i = 0; i < 3; i++) slow.take("x");
    expect(slow.take("x")).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 50; i++) t.take(`k${i}`);
    expect(t.size).toBeLessThanOrEqual(3);
  });

  it("tca serve parses its limit flags strictly", () => {
    expect(limitOptions({ maxConnections: "10", rateLimitIp: "5", rateLimitToken: "7:9" })).toEqual({
      maxConnections: 10,
      perIp: { ratePerSecond: 5, burst: 50 },
      perToken: { ratePerSecond: 7, burst: 9 },
    });
    for (const bad of ["0x10", "1e2", "", "-1", "5:0", "0"])
      expect(() => parseBucket(bad, "--rate-limit-ip"), bad).toThrow(/RATE\[:BURST\]/);
    expect(() => limitOptions({ maxConnections: "0x10", rateLimitIp: "5", rateLimitToken: "5" })).toThrow(
      /--max-connections/,
    );
  });
});

describe("sockets", () => {
  const raw = (url: string): Promise<Socket> => {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const s = connect(Number(u.port), u.hostname, () => resolve(s));
      s.once("error", reject);
    });
  };
  const closed = (s: Socket) =>
    new Promise<string>((resolve) => {
      let data = "";
      s.on("data", (d) => (data += d.toString()));
      s.on("error", () => undefined);
      s.once("close", () => resolve(data));
    });
  const answered = (s: Socket) =>
    new Promise<string>((resolve) => s.once("data", (d) => resolve(d.toString())));

  it("connections beyond the cap are closed at once", async () => {
    const url = await coordinatorWith({ maxConnections: 2 });
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await raw(url);
      s.write("GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(await answered(s)).toMatch(/^HTTP\/1\.1 200/);
      held.push(s);
    }
    const third = await raw(url);
    const gone = closed(third);
    third.write("GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await gone).toBe(""); // dropped without an answer
    for (const s of held) s.destroy();
  });

  it("a client that never finishes its headers is cut off (slow loris)", async () => {
    const url = await coordinatorWith({ headersTimeoutMs: 300, connectionsCheckingIntervalMs: 100 });
    const s = await raw(url);
    const gone = closed(s);
    s.write("GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n");
    expect(await gone).toMatch(/^HTTP\/1\.1 408/);
  });

  it("the request timeout stays above the longest long-poll (?wait=60)", () => {
    const server = createServer();
    expect(() => applyServerLimits(server, { ...DEFAULT_HTTP_LIMITS, requestTimeoutMs: 60_000 })).toThrow(
      /longest long-poll/,
    );
    applyServerLimits(server, DEFAULT_HTTP_LIMITS);
    expect(server.requestTimeout).toBeGreaterThan(60_000);
    expect(server.headersTimeout).toBe(DEFAULT_HTTP_LIMITS.headersTimeoutMs);
    expect(server.keepAliveTimeout).toBe(DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs);
    expect(server.maxConnections).toBe(1024);
  });
});
