// docs/architecture.md §3.10: a property-based hostile-input suite (fast-check) against the live HTTP API of
// a coordinator with a real CA (in-process DKG and root, docs/api.md routes served over loopback).
// Mutated CSRs and signed envelopes, random bodies, content types, headers, query strings and
// paths: every case must end in a 4xx problem+json (RFC 9457) or, for the rare input that is
// legitimately valid, a 2xx; never a 5xx, never a crash, nothing stored for what was refused, and
// the process's memory bounded. Prints how many cases it tried and the statuses it saw.
import { signReadHeader } from "../../src/protocol/signed-read.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { sealEnvelope, type SignedEnvelope, type Signer } from "../../src/protocol/envelope.ts";
import type { ApprovalStatement } from "../../src/protocol/approval.ts";
import { sealHeartbeat } from "../../src/protocol/heartbeat.ts";
import { fromPem } from "../../src/x509/der.ts";
import { approval, makeCsr, type InProcessCa, startHttpCa } from "../helpers/in-process-ca.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const NAMES = ["alice", "bob", "carol"];
let coordinator: RunningCoordinator;
let ca: InProcessCa;
let url: string;
/** A valid pending request (for approvals), its accepted approval from alice, valid CSRs. */
let pending: { id: string; tbsSha256: string };
let acceptedApproval: SignedEnvelope;
let csrDer: Uint8Array;
let csrPem: string;
let rssBefore: number;
let heapBefore: number;
let ceremonyId: string;

const statuses = new Map<number, number>();
let cases = 0;
/** 2xx answers to submissions and approvals: the only inputs allowed to store anything. */
let acceptedSubmissions = 0;

beforeAll(async () => {
  const h = await startHttpCa({ names: NAMES, ceremony: true });
  ({ ca, coordinator, url } = h);
  ceremonyId = h.ceremonyId!;
  csrPem = await makeCsr();
  csrDer = fromPem(csrPem, ["CERTIFICATE REQUEST"]);
  const r = await post("/api/v1/requests", requester(), JSON.stringify({ csr: csrPem, profile: "server" }));
  expect(r.status).toBe(202);
  const id = ((await r.json()) as { id: string }).id;
  const view = await ca.services.requests.view(id, {});
  pending = { id, tbsSha256: (view as unknown as { tbsSha256: string }).tbsSha256 };
  expect(pending.tbsSha256).toMatch(/^[0-9a-f]{64}$/);
  acceptedApproval = approval(ca, "alice", pending);
  const a = await post(`/api/v1/requests/${id}/approvals`, json(), JSON.stringify(acceptedApproval));
  expect(a.status).toBe(202);
  collect();
  rssBefore = process.memoryUsage().rss;
  heapBefore = process.memoryUsage().heapUsed;
}, 120_000);

afterAll(async () => {
  const histogram = [...statuses.entries()]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}×${n}`)
    .join(" ");
  console.log(`hostile-input: ${cases} cases tried; statuses: ${histogram}`);
  await coordinator?.close();
});

// --- HTTP ------------------------------------------------------------------------------------

type Headers = Record<string, string>;
const requester = (type = "application/json"): Headers => ({
  authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}`,
  "content-type": type,
});
const json = (): Headers => ({ "content-type": "application/json" });

const bodyInit = (b: string | Uint8Array): string | Uint8Array<ArrayBuffer> =>
  typeof b === "string" ? b : new Uint8Array(b);

function post(path: string, headers: Headers, body: string | Uint8Array): Promise<Response> {
  return fetch(`${url}${path}`, { method: "POST", headers, body: bodyInit(body) });
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

/**
 * One case: never a 5xx; a 4xx is problem+json with type, title, status and detail; a 2xx only
 * when the caller says the input may be valid. Returns the status.
 */
async function check(res: Response, what: string, mayBeValid = false): Promise<number> {
  cases++;
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  const text = await res.text();
  const where = `${what} → ${res.status} ${text.slice(0, 300)}`;
  expect(res.status, where).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.headers.get("content-type"), where).toMatch(/^application\/problem\+json/);
    const p = JSON.parse(text) as Problem;
    expect(typeof p.type, where).toBe("string");
    expect(typeof p.title, where).toBe("string");
    expect(typeof p.detail, where).toBe("string");
    expect(p.status, where).toBe(res.status);
  } else {
    expect(mayBeValid, `unexpected success: ${where}`).toBe(true);
  }
  return res.status;
}

/** What the store holds that a refused input must not add to. */
async function storedCounts(): Promise<{
  requests: number;
  approvals: number;
  revocations: number;
  dkgRound1: number;
  dkgAbort: number;
}> {
  const store = coordinator.services.store;
  return {
    requests: (await store.listRequests({ limit: 1_000_000 })).length,
    approvals: (await store.listApprovals(pending.id)).length,
    revocations: (await store.listRevocations()).length,
    dkgRound1: (await store.listMessages(ceremonyId, "dkg/round1")).length,
    dkgAbort: (await store.listMessages(ceremonyId, "dkg/abort")).length,
  };
}

/** A full collection when node runs with --expose-gc, so the numbers show retained memory. */
const collect = (): void => (globalThis as { gc?: () => void }).gc?.();

async function stillAlive(): Promise<void> {
  const r = await fetch(`${url}/api/v1/health/live`);
  expect(r.status).toBe(200);
}

// --- Arbitraries -----------------------------------------------------------------------------

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const pemOf = (der: Uint8Array, label = "CERTIFICATE REQUEST") =>
  `-----BEGIN ${label}-----\n${b64(der).replace(/(.{64})/g, "$1\n")}\n-----END ${label}-----\n`;

/** A CSR in some form, mutated or not; `intact` marks the forms that are the valid CSR itself. */
const csrMutation: fc.Arbitrary<{ kind: string; bytes: () => Uint8Array; intact: boolean }> = fc.oneof(
  fc.constantFrom("pem", "der").map((k) => ({
    kind: `intact-${k}`,
    intact: true,
    bytes: () => (k === "pem" ? Buffer.from(csrPem) : csrDer),
  })),
  fc
    .record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }), pem: fc.boolean() })
    .map(({ at, bit, pem }) => ({
      kind: "bit-flip",
      intact: false,
      bytes: () => {
        const d = Buffer.from(csrDer);
        d[at % d.length]! ^= 1 << bit;
        return pem ? Buffer.from(pemOf(d)) : d;
      },
    })),
  fc.record({ at: fc.nat(), pem: fc.boolean() }).map(({ at, pem }) => ({
    kind: "truncated",
    intact: false,
    bytes: () => {
      const d = csrDer.subarray(0, at % csrDer.length);
      return pem ? Buffer.from(pemOf(d)) : d;
    },
  })),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => ({
    kind: "trailing-bytes",
    intact: false,
    bytes: () => Buffer.concat([csrDer, extra]),
  })),
  fc.constantFrom("CERTIFICATE", "PRIVATE KEY", "NEW CERTIFICATE REQUEST X", "", "X509 CRL").map((label) => ({
    kind: `armor:${label}`,
    intact: false,
    bytes: () => Buffer.from(pemOf(csrDer, label)),
  })),
  fc.string({ maxLength: 200 }).map((s) => ({
    kind: "garbage-pem",
    intact: false,
    bytes: () =>
      Buffer.from(`-----BEGIN CERTIFICATE REQUEST-----\n${s}\n-----END CERTIFICATE REQUEST-----\n`),
  })),
  fc.uint8Array({ maxLength: 512 }).map((b) => ({ kind: "random-bytes", intact: false, bytes: () => b })),
  fc.constantFrom(0, 1, 70_000).map((n) => ({
    kind: `size-${n}`,
    intact: false,
    bytes: () => Buffer.alloc(n, 0x41),
  })),
  // A DER SEQUENCE claiming a huge length, and deep nesting.
  fc
    .constantFrom(
      [0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
      [0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      Array.from({ length: 4000 }, () => [0x30, 0x80]).flat(),
    )
    .map((b) => ({ kind: "bad-der", intact: false, bytes: () => Uint8Array.from(b) })),
);

const profileArb = fc.oneof(
  fc.constantFrom("server", "client", "intermediate", "Server", "", "nope", "a".repeat(40), "server\n"),
  fc.string({ maxLength: 20 }),
);
const validityArb = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom("24", "0", "-1", "1e3", "0x10", "2.5", "999999999", "24&validityHours=48", " 24", "abc"),
);
const validityJsonArb = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom<unknown>(24, 0, -1, 1e3, 2.5, 1e308, "24", null, [], {}, Number.MAX_SAFE_INTEGER + 2),
);

/** Query values that are hostile to strict integer parsing; "0" is the only valid wait here. */
const queryValue = fc.oneof(
  fc.constantFrom(
    "0",
    "0x10",
    "1e3",
    "-1",
    "-0",
    "+5",
    "2.5",
    "99999999999999999999",
    "%20",
    "",
    "NaN",
    "Infinity",
  ),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);
const queryKey = fc.oneof(
  fc.constantFrom("wait", "since", "after", "status", "type", "profile", "validityHours", "limit"),
  fc.string({ minLength: 1, maxLength: 8 }).map(encodeURIComponent),
);
const queryString = fc
  .array(fc.tuple(queryKey, queryValue), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&"));

const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    `Bearer ${EXAMPLE_REQUESTER_TOKEN}`,
    `Bearer ${EXAMPLE_ADMIN_TOKEN}`,
    `bearer ${EXAMPLE_REQUESTER_TOKEN}`,
    `Bearer  ${EXAMPLE_REQUESTER_TOKEN}`,
    `Basic ${Buffer.from("admin:admin").toString("base64")}`,
    "Bearer ",
    "Bearer short",
    `Bearer ${"a".repeat(600)}`,
    `Bearer ${EXAMPLE_REQUESTER_TOKEN}x`,
    "Bearer %00%00%00%00%00%00%00%00",
  ),
  fc.stringMatching(/^[ -~]{0,80}$/),
);
const contentType = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=latin1",
    "application/problem+json",
    "application/pkcs10",
    "application/x-pem-file",
    "application/octet-stream",
    "text/plain",
    "text/html",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/*",
    "*/*",
    ";;;",
  ),
  fc.stringMatching(/^[!-~]{0,40}$/),
);
const bodyArb: fc.Arbitrary<string | Uint8Array | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? "null"),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
  fc.constantFrom(
    "{",
    '{"__proto__":{"status":500}}',
    '{"constructor":{"prototype":{"x":1}}}',
    "[".repeat(5000),
    '{"a":'.repeat(2000),
    '"\\ud800"',
    "\u0000",
  ),
);

/** Paths of every route (docs/api.md, /api/v1/openapi.json) with hostile ids, and made-up ones. */
const segment = fc.oneof(
  fc.constantFrom(
    "current",
    "x",
    "0",
    "..",
    "%2e%2e",
    "%zz",
    "%",
    "%00",
    "a".repeat(300),
    "0a0b0c0d0e0f101112",
  ),
  fc.string({ minLength: 1, maxLength: 16 }).map(encodeURIComponent),
  fc.stringMatching(/^[0-9a-f]{1,40}$/),
);
const pathArb = fc.oneof(
  fc.constantFrom(
    "/api/v1/health",
    "/api/v1/health/live",
    "/metrics",
    "/api/v1/changes",
    "/api/v1/custodians/heartbeat",
    "/api/v1/openapi.json",
    "/ca.pem",
    "/ca.crt",
    "/crl",
    "/crl.pem",
    "/api/v1/ceremonies",
    "/api/v1/custodians/exchange",
    "/api/v1/requests",
  ),
  segment.map((id) => `/api/v1/ceremonies/${id}`),
  segment.map((id) => `/api/v1/ceremonies/${id}/messages`),
  segment.map((id) => `/api/v1/signing/jobs/${id}`),
  segment.map((id) => `/api/v1/requests/${id}`),
  segment.map((id) => `/api/v1/requests/${id}/certificate`),
  segment.map((id) => `/api/v1/requests/${id}/approvals`),
  segment.map((id) => `/api/v1/certificates/${id}/revoke`),
  fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/api/v1/${s.join("/")}`),
);
/** Long-polls wait unless told `wait=0`: the generated queries carry no other valid wait. */
const LONG_POLLS = [/^\/api\/v1\/changes$/, /\/messages$/, /^\/api\/v1\/requests\/[^/]+(\/certificate)?$/];

// --- Envelopes -------------------------------------------------------------------------------

const decode = (e: SignedEnvelope) =>
  JSON.parse(Buffer.from(e.payload, "base64url").toString("utf8")) as Record<string, unknown>;
const encode = (h: unknown) => Buffer.from(JSON.stringify(h)).toString("base64url");
const stranger = (name: string): Signer => ({ name, signingSecret: new Uint8Array(randomBytes(32)) });

type EnvelopeMutation = (e: SignedEnvelope) => unknown;
const envelopeMutation: fc.Arbitrary<{ kind: string; apply: EnvelopeMutation }> = fc.oneof(
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => ({
    kind: "payload-bit-flip",
    apply: (e: SignedEnvelope) => {
      const p = Buffer.from(e.payload, "base64url");
      p[at % p.length]! ^= 1 << bit;
      return { ...e, payload: p.toString("base64url") };
    },
  })),
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => ({
    kind: "signature-bit-flip",
    apply: (e: SignedEnvelope) => {
      const s = Buffer.from(e.signature, "base64url");
      s[at % s.length]! ^= 1 << bit;
      return { ...e, signature: s.toString("base64url") };
    },
  })),
  fc
    .record({
      field: fc.constantFrom(
        "v",
        "type",
        "sender",
        "recipient",
        "scope",
        "caKeyId",
        "seq",
        "id",
        "issuedAt",
        "body",
      ),
      value: fc.jsonValue({ maxDepth: 2 }),
    })
    .map(({ field, value }) => ({
      kind: `unsigned-field:${field}`,
      apply: (e: SignedEnvelope) => ({ ...e, payload: encode({ ...decode(e), [field]: value }) }),
    })),
  fc.constantFrom("alice", "bob", "mallory", "coordinator").map((name) => ({
    kind: `stranger-key:${name}`,
    apply: (e: SignedEnvelope) => {
      const h = decode(e);
      return sealEnvelope(stranger(name), {
        type: h.type as "approval",
        recipient: h.recipient as string,
        scope: h.scope as string,
        caKeyId: h.caKeyId as string | null,
        body: h.body,
      });
    },
  })),
  fc
    .record({
      extra: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), {
        minKeys: 1,
        maxKeys: 2,
      }),
    })
    .map(({ extra }) => ({ kind: "outer-fields", apply: (e: SignedEnvelope) => ({ ...e, ...extra }) })),
  fc.constantFrom<unknown>(null, [], "x", 1, {}, { payload: "", signature: "" }).map((v) => ({
    kind: "not-an-envelope",
    apply: () => v,
  })),
);

/** Alice's approval re-signed with her real key but wrong in one field: refused, never stored. */
const resignedApproval = fc.constantFrom(
  { scope: "another-request" },
  { tbsSha256: "0".repeat(64) },
  { requestId: "other" },
  { configDigest: "0".repeat(64) },
  { caKeyId: "1".repeat(64) },
  { builderVersion: "0" },
  { expiresAt: new Date(Date.now() - 1000).toISOString() },
  { issuedAt: new Date(Date.now() + 86_400_000).toISOString() },
  { domain: "tca/other" },
  { decision: "reject" as const },
);

/** Runs per property unit (about 12 cases per unit in all); TCA_HOSTILE_RUNS raises it for a soak. */
const RUNS = Number(process.env.TCA_HOSTILE_RUNS ?? 500);

describe("hostile input against the live HTTP API", () => {
  it("mutated CSRs, as JSON and raw bodies, with random profile and validityHours: 4xx unless valid", async () => {
    const before = await storedCounts();
    await fc.assert(
      fc.asyncProperty(
        csrMutation,
        profileArb,
        validityArb,
        validityJsonArb,
        fc.constantFrom(
          "json",
          "application/pkcs10",
          "application/x-pem-file",
          "application/octet-stream",
          "text/plain",
        ),
        async (m, profile, validity, validityJson, form) => {
          const bytes = m.bytes();
          let res: Response;
          let valid: boolean;
          if (form === "json") {
            const csr = m.kind === "intact-der" ? b64(bytes) : Buffer.from(bytes).toString("utf8");
            const body: Record<string, unknown> = { csr, profile };
            if (validityJson !== undefined) body.validityHours = validityJson;
            res = await post("/api/v1/requests", requester(), JSON.stringify(body));
            valid =
              m.kind === "intact-pem" &&
              ["server", "client"].includes(profile) &&
              // 24 and 1e3 (= 1000) hours are within the server and client profiles' 2160.
              (validityJson === undefined || validityJson === 24 || validityJson === 1000);
          } else {
            const q = `profile=${encodeURIComponent(profile)}${validity === undefined ? "" : `&validityHours=${validity}`}`;
            res = await post(`/api/v1/requests?${q}`, requester(form), bytes);
            valid =
              m.intact &&
              ["server", "client"].includes(profile) &&
              (validity === undefined || validity === "24");
          }
          const status = await check(res, `${m.kind} ${form} profile=${JSON.stringify(profile)}`, valid);
          if (status < 300) acceptedSubmissions++;
        },
      ),
      { numRuns: RUNS * 3 },
    );
    await stillAlive();
    const after = await storedCounts();
    expect(after.requests - before.requests).toBe(acceptedSubmissions);
    expect(after.approvals).toBe(before.approvals);
  }, 120_000);

  it("mutated approvals, heartbeats, exchange batches and DKG messages: refused, nothing stored", async () => {
    const before = await storedCounts();
    const instance = randomBytes(16).toString("hex");
    await fc.assert(
      fc.asyncProperty(
        envelopeMutation,
        fc.constantFrom("approval", "heartbeat", "exchange", "ceremony", "resigned-approval", "replay"),
        resignedApproval,
        async (m, route, override) => {
          const fresh = approval(ca, "alice", pending);
          switch (route) {
            case "approval": {
              const res = await post(
                `/api/v1/requests/${pending.id}/approvals`,
                json(),
                JSON.stringify(m.apply(fresh)),
              );
              await check(res, `approval ${m.kind}`);
              return;
            }
            case "resigned-approval": {
              // A decision that contradicts alice's recorded approval is a 409 conflict at best.
              const bad = approval(ca, "alice", pending, "approve", override as Partial<ApprovalStatement>);
              const res = await post(`/api/v1/requests/${pending.id}/approvals`, json(), JSON.stringify(bad));
              await check(res, `resigned approval ${JSON.stringify(override)}`);
              return;
            }
            case "replay": {
              // The approval already accepted, sent again: idempotent (2xx) or refused, never a new row.
              const res = await post(
                `/api/v1/requests/${pending.id}/approvals`,
                json(),
                JSON.stringify(acceptedApproval),
              );
              await check(res, "replayed approval", true);
              return;
            }
            case "heartbeat": {
              const hb = sealHeartbeat(ca.signers.get("bob")!, ca.caKeyId, { role: "agent", instance });
              const res = await post("/api/v1/custodians/heartbeat", json(), JSON.stringify(m.apply(hb)));
              await check(res, `heartbeat ${m.kind}`);
              return;
            }
            case "ceremony": {
              const env = sealEnvelope(ca.signers.get("carol")!, {
                type: "dkg/round1",
                recipient: "coordinator",
                scope: "current",
                caKeyId: null,
                body: { commitment: [] },
              });
              const res = await post(
                "/api/v1/ceremonies/current/messages",
                json(),
                JSON.stringify(m.apply(env)),
              );
              await check(res, `ceremony message ${m.kind}`);
              return;
            }
            case "exchange": {
              const body = {
                custodian: "alice",
                instance,
                envelopes: [m.apply(fresh)],
                wait: 0,
                review: false,
              };
              const signedBy = ca.custodians.get("alice")!.signer;
              const path = "/api/v1/custodians/exchange";
              const auth = signReadHeader(signedBy, "POST", new URL(url + path));
              const res = await post(path, { ...json(), authorization: auth }, JSON.stringify(body));
              // A well-formed batch is answered 200 with a refusal per item; a malformed one is a 4xx.
              if (res.status === 200) {
                cases++;
                statuses.set(200, (statuses.get(200) ?? 0) + 1);
                const out = (await res.json()) as { results: { ok: boolean; status: number }[] };
                expect(out.results.length, m.kind).toBe(1);
                expect(out.results[0]!.ok, m.kind).toBe(false);
                expect(out.results[0]!.status, m.kind).toBeGreaterThanOrEqual(400);
                expect(out.results[0]!.status, m.kind).toBeLessThan(500);
              } else await check(res, `exchange ${m.kind}`);
              return;
            }
          }
        },
      ),
      { numRuns: RUNS * 3 },
    );
    await stillAlive();
    expect(await storedCounts()).toEqual(before);
  }, 120_000);

  it("random methods, paths, query strings, headers, content types and bodies: never a 5xx", async () => {
    const before = await storedCounts();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"),
        pathArb,
        queryString,
        authorization,
        contentType,
        bodyArb,
        fc.dictionary(fc.stringMatching(/^x-[a-z]{1,10}$/), fc.stringMatching(/^[ -~]{0,40}$/), {
          maxKeys: 3,
        }),
        async (method, path, query, auth, type, body, extra) => {
          let q = query;
          if (method === "GET" && LONG_POLLS.some((re) => re.test(path)) && !/(^|&)wait=/.test(q))
            q = q ? `${q}&wait=0` : "wait=0";
          const headers: Headers = { ...extra };
          if (auth !== undefined) headers.authorization = auth;
          if (type !== undefined) headers["content-type"] = type;
          const withBody = method !== "GET" && method !== "HEAD" && body !== undefined;
          let res: Response;
          try {
            res = await fetch(`${url}${path}${q ? `?${q}` : ""}`, {
              method,
              headers,
              ...(withBody ? { body: bodyInit(body) } : {}),
            });
          } catch (e) {
            // The client refused to send it (an invalid header value): not a server case.
            if (e instanceof TypeError && !/fetch failed/.test(e.message)) return;
            throw e;
          }
          // Reads of public things and of existing objects are legitimately 2xx; HEAD and OPTIONS
          // answer like GET or 404 with no body to check.
          const mayBeValid = method === "GET" || method === "HEAD" || method === "OPTIONS";
          if (method === "HEAD") {
            cases++;
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            expect(res.status, `HEAD ${path}?${q}`).toBeLessThan(500);
            return;
          }
          await check(res, `${method} ${path}?${q} ${type ?? ""} auth=${auth ?? ""}`, mayBeValid);
        },
      ),
      { numRuns: RUNS * 6 },
    );
    await stillAlive();
    expect(await storedCounts()).toEqual(before);
  }, 120_000);

  it("memory stays bounded and the coordinator still answers", async () => {
    await stillAlive();
    collect();
    const growth = process.memoryUsage().rss - rssBefore;
    const heap = process.memoryUsage().heapUsed - heapBefore;
    console.log(
      `hostile-input: RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB, heap ${(heap / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(200 * 2 ** 20);
    // Retained heap (measurable only after a full collection): nothing per refused case is kept.
    if ((globalThis as { gc?: unknown }).gc) expect(heap).toBeLessThan(64 * 2 ** 20);
  });
});
