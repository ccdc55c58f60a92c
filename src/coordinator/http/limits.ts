// Limits on what one client can make a coordinator do: socket timeouts, a connection cap, and
// token-bucket rate limits per client IP and per bearer token (429 with Retry-After, RFC 9110
// §10.2.3 and RFC 6585 §4). Buckets live in each replica's memory: a client spread over k replicas
// gets up to k times the rate, which is what a rate limit in front of a CA is for (stopping a flood
// from one source), not an exact quota. Documented in the README (API and security model).
import type { Server } from "node:http";
import { createHash } from "node:crypto";
import type { RequestHandler } from "express";
import { CoordinatorError } from "../errors.ts";
import { sendProblem } from "./problem.ts";
import { bearerToken } from "./auth.ts";
import { MAX_WAIT_SECONDS } from "./query.ts";

/** `ratePerSecond` tokens are added each second up to `burst`; a request takes one. */
export interface Bucket {
  ratePerSecond: number;
  burst: number;
}

export interface HttpLimits {
  /** Time to receive a request's headers (slow-loris): Node's default is 60 s. */
  headersTimeoutMs: number;
  /** Time to receive a whole request; kept above the longest long-poll (`?wait=60`) with a margin. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** How often Node looks for connections past headersTimeout/requestTimeout. */
  connectionsCheckingIntervalMs: number;
  /** Open connections at most; further ones are closed at once (Node's `server.maxConnections`). */
  maxConnections: number;
  /** Per client IP, for every route except the custodians' (their messages are signed). */
  perIp: Bucket;
  /** Per client IP when the client is on loopback (127.0.0.0/8, ::1): `tca dev`, tests, a local proxy. */
  perLoopbackIp: Bucket;
  /** Per bearer token (requesters and admins), wherever they come from. */
  perToken: Bucket;
  /** Per client IP on the custodians' routes (exchange, heartbeat, ceremony messages): a sane cap only. */
  perCustodianIp: Bucket;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: (MAX_WAIT_SECONDS + 30) * 1000,
  keepAliveTimeoutMs: 10_000,
  connectionsCheckingIntervalMs: 2_000,
  maxConnections: 1024,
  perIp: { ratePerSecond: 100, burst: 1_000 },
  perLoopbackIp: { ratePerSecond: 2_000, burst: 20_000 },
  perToken: { ratePerSecond: 500, burst: 5_000 },
  perCustodianIp: { ratePerSecond: 1_000, burst: 10_000 },
};

/** Parses "RATE[:BURST]" (requests per second, decimal digits); BURST defaults to 10 × RATE. */
export function parseBucket(text: string, what: string): Bucket {
  const m = /^([0-9]{1,9})(?::([0-9]{1,9}))?$/.exec(text);
  const rate = m ? Number(m[1]) : 0;
  const burst = m?.[2] !== undefined ? Number(m[2]) : rate * 10;
  if (!m || rate < 1 || burst < 1)
    throw new Error(`${what}: expected RATE[:BURST] in requests per second, e.g. 100:1000, got "${text}"`);
  return { ratePerSecond: rate, burst };
}

/** Applies the socket limits. Call right after the server is created, before it starts listening. */
export function applyServerLimits(server: Server, l: HttpLimits): void {
  if (l.requestTimeoutMs <= MAX_WAIT_SECONDS * 1000)
    throw new Error(`requestTimeout must exceed the longest long-poll (${MAX_WAIT_SECONDS} s)`);
  server.headersTimeout = Math.min(l.headersTimeoutMs, l.requestTimeoutMs);
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  // Read when the server starts listening (Node's setupConnectionsTracking), so set it before.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    l.connectionsCheckingIntervalMs;
  server.maxConnections = l.maxConnections;
}

/** Token buckets by key, bounded in number: a full bucket is the same as none and is dropped. */
export class BucketTable {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly bucket: Bucket,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`: 0 if allowed, else the seconds until one is available. */
  take(key: string): number {
    const now = this.now();
    const { ratePerSecond: rate, burst } = this.bucket;
    const b = this.#buckets.get(key);
    let tokens = burst;
    if (b) tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    if (tokens < 1) {
      if (b) {
        b.tokens = tokens;
        b.at = now;
      }
      return Math.max(1, Math.ceil((1 - tokens) / rate));
    }
    if (b) {
      b.tokens = tokens - 1;
      b.at = now;
    } else {
      if (this.#buckets.size >= this.maxKeys) this.#evict(now);
      this.#buckets.set(key, { tokens: tokens - 1, at: now });
    }
    return 0;
  }

  get size(): number {
    return this.#buckets.size;
  }

  #evict(now: number): void {
    const { ratePerSecond: rate, burst } = this.bucket;
    for (const [k, b] of this.#buckets)
      if (b.tokens + ((now - b.at) / 1000) * rate >= burst) this.#buckets.delete(k);
    // Still full: drop the oldest keys (Map order is insertion order). Bounded memory beats
    // remembering every stranger; the per-IP limit still applies to whoever sends new keys.
    for (const k of this.#buckets.keys()) {
      if (this.#buckets.size < this.maxKeys) break;
      this.#buckets.delete(k);
    }
  }
}

/**
 * The console's session cookie (src/console/session.ts, docs/console.md) holds a bearer token: pages
 * under /ui/ are charged to that token like API calls. Elsewhere cookies are not read.
 */
const CONSOLE_COOKIE = /^(?:__Host-)?tca_console$/;
function consoleToken(req: Parameters<RequestHandler>[0]): string | undefined {
  if (!req.path.startsWith("/ui/")) return undefined;
  for (const part of (req.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && CONSOLE_COOKIE.test(part.slice(0, i).trim())) return part.slice(i + 1).trim() || undefined;
  }
  return undefined;
}

const isLoopback = (ip: string): boolean =>
  ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");

/** The custodians' routes: signed envelopes, limited per IP by a high cap only. */
const CUSTODIAN_ROUTE = /^\/api\/v1\/(custodians\/|ceremonies\/[^/]+\/messages$)/;

/** Express middleware: 429 problem+json with Retry-After when a client's bucket is empty. */
export function rateLimit(l: HttpLimits): RequestHandler {
  const ips = new BucketTable(l.perIp);
  const loopback = new BucketTable(l.perLoopbackIp);
  const custodians = new BucketTable(l.perCustodianIp);
  const tokens = new BucketTable(l.perToken);
  const refuse = (res: Parameters<RequestHandler>[1], seconds: number, who: string) => {
    res.set("Retry-After", String(seconds));
    // ACME clients read RFC 8555 error types (§6.7), not tca's codes (docs/acme.md).
    if (res.req.path.startsWith("/acme/"))
      return void res
        .status(429)
        .type("application/problem+json")
        .send(
          JSON.stringify({
            type: "urn:ietf:params:acme:error:rateLimited",
            detail: `too many requests from this ${who}: retry in ${seconds} s`,
            status: 429,
          }),
        );
    sendProblem(
      res,
      new CoordinatorError("TOO_MANY_REQUESTS", `too many requests from this ${who}: retry in ${seconds} s`, {
        retryAfter: seconds,
      }),
    );
  };
  return (req, res, next) => {
    const ip = req.socket.remoteAddress ?? "unknown";
    const table = CUSTODIAN_ROUTE.test(req.path) ? custodians : isLoopback(ip) ? loopback : ips;
    const wait = table.take(ip);
    if (wait > 0) return refuse(res, wait, "address");
    const token = bearerToken(req) ?? consoleToken(req);
    if (token) {
      const key = createHash("sha256").update(token).digest("base64url");
      const tokenWait = tokens.take(key);
      if (tokenWait > 0) return refuse(res, tokenWait, "token");
    }
    next();
  };
}
