// The one HTTP client against real loopback servers: failover on connection failures and
// 502/503/504, never on 4xx or 500; sticky to the URL that answered; no duplicate of a request
// that is not idempotent once it was sent; one retry of a reset kept-alive connection.
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  BaseUrlError,
  HttpClient,
  HttpError,
  parseBaseUrls,
  plainHttpTokenProblem,
} from "../../src/protocol/http-client.ts";
import { closeAll, dropAfterBody, json, problem, refusedUrl, silent, startServer } from "./http-servers.ts";

const Ok = z.object({ ok: z.literal(true), who: z.string() });

afterEach(closeAll);

async function caught(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HttpError);
    return e as HttpError;
  }
  throw new Error("expected the request to fail");
}

describe("parseBaseUrls", () => {
  it("splits comma-separated lists, trims, drops duplicates", () => {
    expect(parseBaseUrls(["http://a:1, https://b:2", "http://a:1/", "http://c:3"])).toEqual([
      "http://a:1",
      "https://b:2",
      "http://c:3",
    ]);
    expect(parseBaseUrls("http://a:1")).toEqual(["http://a:1"]);
  });
  it("names the URL that is not http(s)", () => {
    expect(() => parseBaseUrls("http://a:1,ftp://b")).toThrow(/"ftp:\/\/b" is not an http/);
    expect(() => parseBaseUrls("http://a:1,nonsense")).toThrow(/"nonsense" is not a URL/);
    expect(() => parseBaseUrls(" , ")).toThrow(BaseUrlError);
  });
});

describe("failover", () => {
  it("uses the second URL when the first refuses the connection, and stays with it", async () => {
    const down = await refusedUrl();
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient([down, b.url]);
    expect(await client.json("GET", "/x", Ok)).toEqual({ ok: true, who: "b" });
    expect(client.baseUrl).toBe(b.url);
    expect(await client.json("GET", "/y", Ok)).toEqual({ ok: true, who: "b" });
    expect(b.hits).toEqual(["GET /x", "GET /y"]);
  });

  it("is sticky: after a failover the next request goes straight to the URL that answered", async () => {
    const a = await startServer(problem(503, "UNAVAILABLE", "initializing"));
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient(`${a.url},${b.url}`);
    await client.json("GET", "/1", Ok);
    await client.json("GET", "/2", Ok);
    await client.json("GET", "/3", Ok);
    expect(a.hits).toEqual(["GET /1"]);
    expect(b.hits).toEqual(["GET /1", "GET /2", "GET /3"]);
  });

  it("moves on after 502, 503 and 504", async () => {
    for (const status of [502, 503, 504]) {
      const a = await startServer(problem(status, "UNAVAILABLE", "down"));
      const b = await startServer(json(200, { ok: true, who: "b" }));
      const client = new HttpClient([a.url, b.url]);
      expect((await client.json("GET", "/x", Ok)).who).toBe("b");
      expect(a.hits.length).toBe(1);
    }
  });

  it("does not fail over on a 4xx or a 500: the request reached a coordinator", async () => {
    for (const [status, code] of [
      [404, "NOT_FOUND"],
      [409, "CONFLICT"],
      [500, "INTERNAL"],
    ] as const) {
      const a = await startServer(problem(status, code, `said ${status}`));
      const b = await startServer(json(200, { ok: true, who: "b" }));
      const client = new HttpClient([a.url, b.url]);
      const e = await caught(client.json("GET", "/x", Ok));
      expect(e.kind).toBe("status");
      expect(e.status).toBe(status);
      expect(e.code).toBe(code);
      expect(e.detail).toBe(`said ${status}`);
      expect(e.url).toBe(a.url);
      expect(e.message).toBe(`coordinator answered ${status} to GET /x: said ${status}`);
      expect(b.hits).toEqual([]);
    }
  });

  it("moves on when a coordinator does not answer in time", async () => {
    const a = await startServer(silent);
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient([a.url, b.url]);
    expect((await client.json("GET", "/x", Ok, { timeoutMs: 300 })).who).toBe("b");
    expect(a.hits).toEqual(["GET /x"]);
  });

  it("lists every URL it tried when none can be reached", async () => {
    const one = await refusedUrl();
    const two = await refusedUrl();
    const client = new HttpClient([one, two]);
    const e = await caught(client.json("GET", "/x", Ok));
    expect(e.kind).toBe("unreachable");
    expect(e.status).toBeUndefined();
    expect(e.tried).toEqual([one, two]);
    expect(e.message).toMatch(
      new RegExp(`^cannot reach the coordinator \\(tried ${one}, ${two}\\): .*ECONNREFUSED`),
    );
  });

  it("reports the last gateway answer when every URL answered 503", async () => {
    const a = await startServer(problem(503, "UNAVAILABLE", "initializing"));
    const b = await startServer(problem(503, "UNAVAILABLE", "initializing"));
    const e = await caught(new HttpClient([a.url, b.url]).json("GET", "/x", Ok));
    expect(e.kind).toBe("status");
    expect(e.status).toBe(503);
    expect(e.tried).toEqual([a.url, b.url]);
  });

  it("starts the round at the sticky URL and wraps around", async () => {
    const a = await startServer(json(200, { ok: true, who: "a" }));
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const c = await startServer(problem(503, "UNAVAILABLE", "x"));
    const client = new HttpClient([c.url, b.url, a.url]);
    expect((await client.json("GET", "/1", Ok)).who).toBe("b");
    await b.close();
    expect((await client.json("GET", "/2", Ok)).who).toBe("a");
    expect(client.baseUrl).toBe(a.url);
    expect(c.hits).toEqual(["GET /1"]);
  });
});

describe("spread", () => {
  it("starts long-running clients at a random URL, so they share the replicas; others at the first", () => {
    const urls = ["http://a.example", "http://b.example", "http://c.example"];
    const firsts = new Set(Array.from({ length: 60 }, () => new HttpClient(urls, { spread: true }).baseUrl));
    expect(firsts.size).toBeGreaterThan(1); // all 60 on one URL: probability 3 × (1/3)^60
    expect(new Set(Array.from({ length: 5 }, () => new HttpClient(urls).baseUrl))).toEqual(
      new Set([urls[0]]),
    );
  });
});

describe("no duplicates", () => {
  it("does not resend a non-idempotent POST that reached a server which then dropped the connection", async () => {
    const a = await startServer(dropAfterBody);
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient([a.url, b.url]);
    const e = await caught(client.json("POST", "/api/v1/requests", Ok, { body: { csr: "x" } }));
    expect(e.kind).toBe("unreachable");
    expect(e.maybeProcessed).toBe(true);
    expect(e.message).toMatch(/may have been processed/);
    expect(a.hits).toEqual(["POST /api/v1/requests"]);
    expect(b.hits).toEqual([]);
  });

  it("sends a non-idempotent POST elsewhere when the first URL refused the connection", async () => {
    const down = await refusedUrl();
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient([down, b.url]);
    await client.json("POST", "/api/v1/requests", Ok, { body: { csr: "x" } });
    expect(b.hits).toEqual(["POST /api/v1/requests"]);
    expect(b.bodies).toEqual(['{"csr":"x"}']);
  });

  it("treats a port fetch will not use (port 1) as a coordinator that is down: nothing was sent", async () => {
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient(["http://127.0.0.1:1", b.url]);
    await client.json("POST", "/api/v1/requests", Ok, { body: {} });
    expect(b.hits).toEqual(["POST /api/v1/requests"]);
    const e = await caught(new HttpClient("http://127.0.0.1:1").json("POST", "/p", Ok, { body: {} }));
    expect(e.message).toMatch(/^cannot reach the coordinator \(tried http:\/\/127.0.0.1:1\): .*bad port/);
    expect(e.maybeProcessed).toBe(false);
  });

  it("never sends a non-idempotent POST elsewhere after a 502, 503 or 504 (a proxy may have passed it on)", async () => {
    for (const status of [502, 503, 504]) {
      const g = await startServer(problem(status, "GATEWAY", "upstream"));
      const c = await startServer(json(200, { ok: true, who: "c" }));
      const e = await caught(new HttpClient([g.url, c.url]).json("POST", "/p", Ok, { body: {} }));
      expect(e.status).toBe(status);
      expect(e.maybeProcessed).toBe(true);
      expect(c.hits).toEqual([]);
    }
  });

  it("sends an idempotent POST to the next coordinator after a dropped connection", async () => {
    const a = await startServer(dropAfterBody);
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const client = new HttpClient([a.url, b.url]);
    await client.json("POST", "/api/v1/custodians/exchange", Ok, { body: { e: 1 }, idempotent: true });
    expect(b.hits).toEqual(["POST /api/v1/custodians/exchange"]);
    // The first one got it too (twice: the reset retry on the same URL, then moved on).
    expect(a.hits.length).toBeGreaterThanOrEqual(1);
  });

  it("retries an idempotent request once on the same URL after a reset (a closed kept-alive connection)", async () => {
    const a = await startServer((req, res, _body, hit) => {
      if (hit === 1) return req.socket.destroy();
      json(200, { ok: true, who: "a" })(req, res, "", hit);
    });
    const client = new HttpClient(a.url);
    expect((await client.json("GET", "/x", Ok)).who).toBe("a");
    expect(a.hits).toEqual(["GET /x", "GET /x"]);
  });

  it("does not retry a non-idempotent request after a reset, even on a single URL", async () => {
    const a = await startServer((req, res, _body, hit) => {
      if (hit === 1) return req.socket.destroy();
      json(200, { ok: true, who: "a" })(req, res, "", hit);
    });
    const e = await caught(new HttpClient(a.url).json("POST", "/p", Ok, { body: {} }));
    expect(e.maybeProcessed).toBe(true);
    expect(a.hits).toEqual(["POST /p"]);
  });

  it("does not fail over once the caller aborts", async () => {
    const a = await startServer(silent);
    const b = await startServer(json(200, { ok: true, who: "b" }));
    const stop = new AbortController();
    const p = new HttpClient([a.url, b.url]).json("GET", "/x", Ok, { signal: stop.signal });
    setTimeout(() => stop.abort(), 100);
    const e = await caught(p);
    expect(e.kind).toBe("unreachable");
    expect(b.hits).toEqual([]);
  });
});

describe("answers", () => {
  it("parses JSON with the schema, and reports an answer that does not fit", async () => {
    const a = await startServer(json(200, { ok: false }));
    const e = await caught(new HttpClient(a.url).json("GET", "/x", Ok));
    expect(e.kind).toBe("malformed");
    expect(e.message).toBe("coordinator sent an unexpected answer to GET /x");
  });

  it("returns text as is, sends the token and the JSON body", async () => {
    let auth: string | undefined;
    let type: string | undefined;
    const a = await startServer((req, res) => {
      auth = req.headers.authorization;
      type = req.headers["content-type"];
      res.writeHead(200, { "content-type": "application/pem-certificate-chain" });
      res.end("-----BEGIN CERTIFICATE-----\n");
    });
    const text = await new HttpClient(a.url).text("POST", "/t", { body: { a: 1 }, token: "tok" });
    expect(text).toBe("-----BEGIN CERTIFICATE-----\n");
    expect(auth).toBe("Bearer tok");
    expect(type).toBe("application/json");
    expect(a.bodies).toEqual(['{"a":1}']);
  });
});

describe("bearer tokens and plain HTTP", () => {
  it("refuses an http:// URL off this host, allows loopback, https:// and the explicit override", () => {
    expect(plainHttpTokenProblem(["http://ca.example.internal:8443"])).toMatch(
      /refusing to send the token in clear to http:\/\/ca\.example\.internal:8443/,
    );
    expect(plainHttpTokenProblem(["https://ca.example.internal", "http://10.0.0.5:8443"])).toMatch(
      /10\.0\.0\.5/,
    );
    for (const ok of [
      "http://127.0.0.1:8443",
      "http://127.5.0.1",
      "http://localhost:1",
      "http://[::1]:8443",
      "https://x.example",
    ])
      expect(plainHttpTokenProblem([ok]), ok).toBeUndefined();
    expect(
      plainHttpTokenProblem(["http://ca.example.internal"], { TCA_ALLOW_PLAIN_HTTP: "1" }),
    ).toBeUndefined();
  });
});
