// The HTTP client over TLS against real loopback servers with certificates made here by openssl
// (docs/tls.md): verified against the CA it is given, never unverified; a certificate from another
// CA is refused before any request goes out; an http:// URL moves to https:// once the coordinator
// serves a verified certificate there, and a TLS failure after that never falls back to plain
// HTTP; a 403 HTTPS_REQUIRED probes and retries once over https; a custodian trusts its pinned
// root plus $TCA_CA_FILE.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError } from "../../src/config/errors.ts";
import { connectCustodian, custodianTrust } from "../../src/custodian/connect.ts";
import { HttpClient, HttpError } from "../../src/protocol/http-client.ts";
import {
  closeTlsServers,
  makeCa,
  removeCertDirs,
  startHttps,
  startSniffing,
  type TestCa,
} from "./tls-servers.ts";

const Answer = z.object({ ok: z.literal(true), encrypted: z.boolean(), path: z.string() });

let ca: TestCa;
let other: TestCa;
let third: TestCa;
let work: string;

beforeAll(() => {
  ca = makeCa("tca test root");
  other = makeCa("someone else's root");
  third = makeCa("a third root");
  work = mkdtempSync(join(tmpdir(), "tca-tls-test-"));
});
afterEach(closeTlsServers);
afterAll(() => {
  removeCertDirs();
  rmSync(work, { recursive: true, force: true });
});

async function caught(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HttpError);
    return e as HttpError;
  }
  throw new Error("expected the request to fail");
}

describe("https:// coordinators", () => {
  it("a certificate that chains to the given CA is accepted", async () => {
    const server = await startHttps(ca.issue());
    const client = new HttpClient(server.url, { tls: { ca: ca.certPem } });
    expect(await client.json("GET", "/api/v1/health", Answer)).toMatchObject({ encrypted: true });
    expect(server.hits).toEqual([{ method: "GET", url: "/api/v1/health", encrypted: true }]);
  });

  it("a certificate from another CA is CERTIFICATE_REFUSED in one clear line, and no request reaches the server", async () => {
    const server = await startHttps(other.issue());
    const client = new HttpClient(server.url, { tls: { ca: ca.certPem } });
    const e = await caught(client.json("POST", "/api/v1/requests", Answer, { body: { csr: "secret" } }));
    expect(e.kind).toBe("unreachable");
    expect(e.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(e.message).not.toMatch(/\n/);
    expect(e.message).toMatch(
      /^the coordinator's TLS certificate was refused \([A-Z_]+: [^)]+\): it must chain to the CA root this client trusts — pass --ca-file or set TCA_CA_FILE \(tried https:\/\/127\.0\.0\.1:\d+\)$/,
    );
    expect(e.maybeProcessed).toBe(false);
    expect(server.hits).toEqual([]);
  });

  it("a certificate for another host is refused, saying so", async () => {
    const server = await startHttps(ca.issue("DNS:elsewhere.example"));
    const e = await caught(new HttpClient(server.url, { tls: { ca: ca.certPem } }).text("GET", "/ca.pem"));
    expect(e.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(e.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID.*it must name the host in the coordinator's URL/);
    expect(server.hits).toEqual([]);
  });

  it("without a CA, Node's built-in roots refuse a private CA's certificate (never unverified)", async () => {
    const server = await startHttps(ca.issue());
    const e = await caught(new HttpClient(server.url).text("GET", "/api/v1/health"));
    expect(e.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(e.message).toMatch(/pass --ca-file or set TCA_CA_FILE/);
    expect(server.hits).toEqual([]);
  });

  it("a refused certificate is what the error names, even when another replica was merely down", async () => {
    const bad = await startHttps(other.issue());
    const client = new HttpClient([bad.url, "https://127.0.0.1:1"], { tls: { ca: ca.certPem } });
    const e = await caught(client.text("GET", "/api/v1/health"));
    expect(e.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(e.tried).toHaveLength(2);
  });
});

describe("upgrading http:// to https:// (a coordinator that issued itself a certificate)", () => {
  it("goes plain while there is no TLS, over TLS once it is served, and never back to plain HTTP when TLS breaks", async () => {
    const s = await startSniffing(ca.issue(), other.issue());
    // probeIntervalMs 0: every request probes first, so the switch is seen at the very next request.
    const client = new HttpClient(s.url, { tls: { ca: ca.certPem, upgrade: true, probeIntervalMs: 0 } });
    const get = (path: string) => client.json("GET", path, Answer);

    expect(await get("/one")).toMatchObject({ encrypted: false });
    expect(await get("/two")).toMatchObject({ encrypted: false });
    expect(client.usesTls()).toBe(false);

    s.switchTls("on");
    expect(await get("/three")).toMatchObject({ encrypted: true });
    expect(client.usesTls()).toBe(true);
    expect(await get("/four")).toMatchObject({ encrypted: true });
    expect(s.hits.map((h) => `${h.url} ${h.encrypted ? "tls" : "plain"}`)).toEqual([
      "/one plain",
      "/two plain",
      "/three tls",
      "/four tls",
    ]);

    // Someone in the middle now answers TLS with another CA's certificate: refused, nothing sent.
    s.switchTls("wrong-cert");
    const refused = await caught(get("/five"));
    expect(refused.info.failure).toBe("CERTIFICATE_REFUSED");
    // …or cuts TLS off entirely: the request fails; it does not go out over plain HTTP instead.
    s.switchTls("closed");
    const cut = await caught(get("/six"));
    expect(cut.kind).toBe("unreachable");
    expect(cut.info.failure).not.toBe("CERTIFICATE_REFUSED");
    expect(cut.message).toContain(`tried ${s.url.replace("http:", "https:")}`);
    expect(s.hits.map((h) => h.url)).toEqual(["/one", "/two", "/three", "/four"]);
  });

  it("a probe that meets another CA's certificate is refused, not taken as 'no TLS here'", async () => {
    const s = await startSniffing(ca.issue(), other.issue());
    s.switchTls("wrong-cert");
    const client = new HttpClient(s.url, { tls: { ca: ca.certPem, upgrade: true } });
    const e = await caught(client.text("GET", "/api/v1/requests"));
    expect(e.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(s.hits).toEqual([]);
  });

  it("a 403 HTTPS_REQUIRED probes at once and sends the request once more over https", async () => {
    const s = await startSniffing(ca.issue(), other.issue());
    s.plainAllowed = (path) => path === "/ca.pem";
    // No probing by time: only the 403 can move this client to TLS.
    const client = new HttpClient(s.url, {
      tls: { ca: ca.certPem, upgrade: true, probeIntervalMs: Number.POSITIVE_INFINITY },
    });
    expect(await client.json("GET", "/before", Answer)).toMatchObject({ encrypted: false });

    s.tls = "on"; // kept-alive plain connections stay open: the next request goes plain, as it would
    const seen: string[] = [];
    const a = await client.json("POST", "/api/v1/requests", Answer, {
      body: { x: 1 },
      idempotent: false,
      headers: (method, url) => {
        seen.push(`${method} ${url.href}`);
        return {};
      },
    });
    expect(a).toMatchObject({ encrypted: true, path: "/api/v1/requests" });
    expect(s.hits.map((h) => `${h.method} ${h.url} ${h.encrypted ? "tls" : "plain"}`)).toEqual([
      "GET /before plain",
      "POST /api/v1/requests plain",
      "POST /api/v1/requests tls",
    ]);
    // The per-attempt headers (a signed read) were computed again for the https URL.
    expect(seen).toEqual([
      `POST ${s.url}/api/v1/requests`,
      `POST ${s.url.replace("http:", "https:")}/api/v1/requests`,
    ]);
    expect(client.usesTls()).toBe(true);
  });

  it("a 403 HTTPS_REQUIRED fails closed when the probe meets another CA's certificate, or no TLS", async () => {
    const s = await startSniffing(ca.issue(), other.issue());
    s.plainAllowed = (path) => path === "/before";
    const client = new HttpClient(s.url, {
      tls: { ca: ca.certPem, upgrade: true, probeIntervalMs: Number.POSITIVE_INFINITY },
    });
    expect(await client.json("GET", "/before", Answer)).toMatchObject({ encrypted: false });

    s.tls = "wrong-cert"; // plain HTTP says HTTPS_REQUIRED, but what answers TLS is someone else
    const refused = await caught(client.text("GET", "/api/v1/requests"));
    expect(refused.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(refused.message).toMatch(/^the coordinator's TLS certificate was refused/);

    s.tls = "closed"; // or nothing answers TLS at all: the 403 stands
    const denied = await caught(client.text("GET", "/api/v1/requests"));
    expect(denied.status).toBe(403);
    expect(denied.code).toBe("HTTPS_REQUIRED");
    expect(client.usesTls()).toBe(false);
    expect(s.hits.map((h) => `${h.url} ${h.encrypted ? "tls" : "plain"}`)).toEqual([
      "/before plain",
      "/api/v1/requests plain",
      "/api/v1/requests plain",
    ]);
  });

  it("without upgrade, a 403 HTTPS_REQUIRED is an error whose message names the https URL", async () => {
    const s = await startSniffing(ca.issue(), other.issue());
    s.plainAllowed = () => false;
    s.switchTls("on");
    const e = await caught(
      new HttpClient(s.url, { tls: { ca: ca.certPem } }).text("GET", "/api/v1/requests"),
    );
    expect(e.status).toBe(403);
    expect(e.code).toBe("HTTPS_REQUIRED");
    expect(e.message).toContain(`${s.url.replace("http:", "https:")}/api/v1/requests`);
    expect(s.hits).toHaveLength(1);
  });
});

describe("connectCustodian: what a custodian trusts", () => {
  it("its pinned root (HOME/ca.pem) plus $TCA_CA_FILE, with upgrade on because a root is pinned", async () => {
    const home = mkdtempSync(join(work, "home-"));
    const caCertPath = join(home, "ca.pem");
    writeFileSync(caCertPath, ca.certPem);
    const extra = join(work, "extra.pem");
    writeFileSync(extra, other.certPem);
    const pinned = await startHttps(ca.issue());
    const viaFile = await startHttps(other.issue());
    const stranger = await startHttps(third.issue());
    const env = { TCA_CA_FILE: extra };

    const trust = custodianTrust({ home: { caCertPath }, env });
    expect(trust?.upgrade).toBe(true);
    for (const s of [pinned, viaFile]) {
      const c = connectCustodian({ urls: s.url, home: { caCertPath }, env });
      await c.http.text("GET", "/api/v1/health");
      expect(s.hits).toHaveLength(1);
    }
    const e = await caught(
      connectCustodian({ urls: stranger.url, home: { caCertPath }, env }).http.text("GET", "/api/v1/health"),
    );
    expect(e.info.failure).toBe("CERTIFICATE_REFUSED");
    expect(e.message).toMatch(/pinned at the key ceremony \(HOME\/ca\.pem\) or to \$TCA_CA_FILE/);
    expect(stranger.hits).toEqual([]);

    // The pinned root alone: the CA file's server is now a stranger.
    const e2 = await caught(
      connectCustodian({ urls: viaFile.url, home: { caCertPath }, env: {} }).http.text("GET", "/x"),
    );
    expect(e2.info.failure).toBe("CERTIFICATE_REFUSED");
  });

  it("an http:// URL from the ceremony moves to https:// once the coordinator serves a certificate from the pinned root", async () => {
    const home = mkdtempSync(join(work, "home-"));
    const caCertPath = join(home, "ca.pem");
    writeFileSync(caCertPath, ca.certPem);
    const s = await startSniffing(ca.issue(), other.issue());
    s.switchTls("on");
    const c = connectCustodian({ urls: s.url, home: { caCertPath }, env: {} });
    expect(await c.http.json("GET", "/api/v1/requests", Answer)).toMatchObject({ encrypted: true });
    expect(s.hits).toEqual([{ method: "GET", url: "/api/v1/requests", encrypted: true }]);
  });

  it("before the ceremony (no pinned root): $TCA_CA_FILE alone verifies https:// but does not upgrade http://", () => {
    const extra = join(work, "only.pem");
    writeFileSync(extra, other.certPem);
    const noRoot = { caCertPath: join(work, "absent", "ca.pem") };
    expect(custodianTrust({ home: noRoot, env: { TCA_CA_FILE: extra } })).toMatchObject({ upgrade: false });
    expect(custodianTrust({ home: noRoot, env: {} })).toBeUndefined();
  });

  it("a $TCA_CA_FILE that is missing or not PEM certificates is refused naming it", () => {
    const missing = join(work, "missing.pem");
    expect(() => custodianTrust({ env: { TCA_CA_FILE: missing } })).toThrow(ConfigError);
    expect(() => custodianTrust({ env: { TCA_CA_FILE: missing } })).toThrow(
      `$TCA_CA_FILE: cannot read ${missing}: no such file`,
    );
    const key = join(work, "key.pem");
    writeFileSync(key, "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n");
    expect(() => custodianTrust({ env: { TCA_CA_FILE: key } })).toThrow(
      `$TCA_CA_FILE: ${key} holds no PEM certificate (-----BEGIN CERTIFICATE-----), only PRIVATE KEY`,
    );
    const junk = join(work, "junk.pem");
    writeFileSync(junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    expect(() => custodianTrust({ env: { TCA_CA_FILE: junk } })).toThrow(
      /certificate 1 of 1 is not a valid X\.509/,
    );
  });
});
