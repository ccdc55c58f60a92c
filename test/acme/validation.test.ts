// Challenge validation against real servers on loopback: http-01 and tls-alpn-01 responders
// (test/helpers/acme-responders.ts), pebble-challtestsrv as the DNS server for dns-01 and for the
// A/AAAA lookups of the other two, and servers that misbehave (redirect, huge body, silence).
import { randomBytes } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AcmeValidationOptions, ChallengeToValidate } from "../../src/acme/context.ts";
import { newAcmeId } from "../../src/acme/paths.ts";
import type { AcmeErrorType, Identifier } from "../../src/acme/protocol.ts";
import { dns01TxtValue } from "../../src/acme/validation/dns-01.ts";
import { HTTP01_MAX_BODY_BYTES, trimTrailingWhitespace } from "../../src/acme/validation/http-01.ts";
import { validateChallenge } from "../../src/acme/validation/index.ts";
import { reverseDnsName } from "../../src/acme/validation/tls-alpn-01.ts";
import {
  startHttp01Responder,
  startTlsAlpnResponder,
  type Http01Responder,
  type TlsAlpnResponder,
} from "../helpers/acme-responders.ts";
import { startChallTestSrv, type ChallTestSrv } from "../helpers/challtestsrv.ts";

let http: Http01Responder;
let tls: TlsAlpnResponder;
let tlsNoAlpn: TlsAlpnResponder;
let tlsH2Only: TlsAlpnResponder;
let dns: ChallTestSrv;
/** A port nothing listens on (a server was bound there and closed). */
let closedPort: number;
/** Accepts connections and never answers. */
let silent: NetServer;
const silentSockets = new Set<Socket>();
/** A UDP port that receives DNS queries and never answers. */
let silentUdp: UdpSocket;
let silentUdpPort: number;
/** Plays odd http-01 servers: /redirect, /huge, /spaces. */
let odd: HttpServer;

function challenge(
  type: ChallengeToValidate["type"],
  identifier: Identifier | string,
): ChallengeToValidate & {
  token: string;
} {
  const token = newAcmeId();
  return {
    type,
    token,
    keyAuthorization: `${token}.${randomBytes(32).toString("base64url")}`,
    identifier: typeof identifier === "string" ? { type: "dns", value: identifier } : identifier,
  };
}

const opts = (o: Partial<AcmeValidationOptions> = {}): AcmeValidationOptions => ({
  httpPort: http.port,
  tlsPort: tls.port,
  timeoutMs: 5_000,
  ...o,
});

async function fails(
  c: ChallengeToValidate,
  o: AcmeValidationOptions,
  type: AcmeErrorType,
  detail?: RegExp,
): Promise<string> {
  const r = await validateChallenge(c, o);
  if (r.ok) throw new Error(`${c.type} for ${c.identifier.value} validated; expected ${type}`);
  expect(r.problem.type, r.problem.message).toBe(type);
  expect(r.problem.identifier).toEqual(c.identifier);
  if (detail) expect(r.problem.message).toMatch(detail);
  // Details stay short: what came back is cut (never a whole body).
  expect(r.problem.message.length).toBeLessThan(600);
  return r.problem.message;
}

async function passes(c: ChallengeToValidate, o: AcmeValidationOptions): Promise<void> {
  const r = await validateChallenge(c, o);
  expect(r.ok ? "valid" : `${r.problem.type}: ${r.problem.message}`).toBe("valid");
}

const listenLocal = (s: HttpServer | NetServer): Promise<number> =>
  new Promise((r) => s.listen(0, "127.0.0.1", () => r((s.address() as { port: number }).port)));

beforeAll(async () => {
  [http, tls, tlsNoAlpn, tlsH2Only, dns] = await Promise.all([
    startHttp01Responder(),
    startTlsAlpnResponder(),
    startTlsAlpnResponder({ alpnProtocols: [] }),
    startTlsAlpnResponder({ alpnProtocols: ["h2", "http/1.1"] }),
    startChallTestSrv(),
  ]);
  const probe = createNetServer();
  closedPort = await listenLocal(probe);
  await new Promise<void>((r) => probe.close(() => r()));
  silent = createNetServer((s) => {
    silentSockets.add(s);
    s.on("close", () => silentSockets.delete(s));
  });
  await listenLocal(silent);
  silentUdp = createSocket("udp4");
  silentUdpPort = await new Promise<number>((r) =>
    silentUdp.bind(0, "127.0.0.1", () => r(silentUdp.address().port)),
  );
  odd = createHttpServer((req, res) => {
    if (req.url?.includes("redirect"))
      res.writeHead(302, { location: "http://169.254.169.254/latest" }).end();
    else if (req.url?.includes("huge")) res.writeHead(200).end("A".repeat(4 * 1024 * 1024));
    // What makes a backtracking trailing-whitespace regex quadratic: a long run of spaces, then more.
    else if (req.url?.includes("spaces")) res.writeHead(200).end(`${" ".repeat(64 * 1024)}x`);
    else res.writeHead(404).end();
  });
  await listenLocal(odd);
});

afterAll(async () => {
  for (const s of silentSockets) s.destroy();
  await Promise.all([
    http?.close(),
    tls?.close(),
    tlsNoAlpn?.close(),
    tlsH2Only?.close(),
    dns?.stop(),
    new Promise((r) => silent?.close(r)),
    new Promise<void>((r) => (silentUdp ? silentUdp.close(() => r()) : r())),
    new Promise((r) => odd?.close(r)),
  ]);
});

const port = (s: HttpServer | NetServer): number => (s.address() as { port: number }).port;

describe("http-01", () => {
  it("is valid when the responder serves the key authorization, with the name in the Host header", async () => {
    const c = challenge("http-01", "localhost");
    http.set(c.token, c.keyAuthorization);
    await passes(c, opts());
    const seen = http.requests.find((r) => r.path.endsWith(c.token));
    expect(seen?.method).toBe("GET");
    expect(seen?.headers.host).toBe(`localhost:${http.port}`);
  });

  it("ignores trailing whitespace (RFC 8555 §8.3)", async () => {
    const c = challenge("http-01", "localhost");
    http.set(c.token, `${c.keyAuthorization} \r\n\n`);
    await passes(c, opts());
  });

  it("validates an IP identifier at that address (RFC 8738 §3)", async () => {
    const c = challenge("http-01", { type: "ip", value: "127.0.0.1" });
    http.set(c.token, c.keyAuthorization);
    await passes(c, opts());
  });

  it("refuses a wrong key authorization: incorrectResponse, saying what came back and what was expected", async () => {
    const c = challenge("http-01", "localhost");
    http.set(c.token, `${c.token}.wrong-thumbprint`);
    const d = await fails(c, opts(), "incorrectResponse");
    expect(d).toContain(`http://localhost:${http.port}/.well-known/acme-challenge/${c.token}`);
    expect(d).toContain(`127.0.0.1:${http.port}`);
    expect(d).toContain(`${c.token}.wrong-thumbprint`);
    expect(d).toContain(c.keyAuthorization);
  });

  it("refuses a 404", async () => {
    const c = challenge("http-01", "localhost");
    await fails(c, opts(), "incorrectResponse", /answered 404/);
  });

  it("does not follow a redirect, and says so", async () => {
    const c = challenge("http-01", "localhost");
    c.token = `redirect${c.token}`;
    await fails(
      c,
      opts({ httpPort: port(odd) }),
      "incorrectResponse",
      /302.*169\.254\.169\.254.*redirects are not followed/,
    );
  });

  it("reads at most 1 KiB of a huge body and echoes none of it beyond a snippet", async () => {
    const c = challenge("http-01", "localhost");
    c.token = `huge${c.token}`;
    const d = await fails(
      c,
      opts({ httpPort: port(odd) }),
      "incorrectResponse",
      new RegExp(`${HTTP01_MAX_BODY_BYTES} bytes read`),
    );
    expect(d).not.toContain("A".repeat(120));
  });

  it("a body of 64 KiB of spaces then x: incorrectResponse, with a short detail", async () => {
    expect(HTTP01_MAX_BODY_BYTES).toBeLessThanOrEqual(1024);
    const c = challenge("http-01", "localhost");
    c.token = `spaces${c.token}`;
    const d = await fails(
      c,
      opts({ httpPort: port(odd) }),
      "incorrectResponse",
      new RegExp(`${HTTP01_MAX_BODY_BYTES} bytes read`),
    );
    expect(d).not.toContain(" ".repeat(120));
  });

  it("trims trailing whitespace in linear time, even after a long run of it", () => {
    expect(trimTrailingWhitespace("abc \t\r\n \n")).toBe("abc");
    expect(trimTrailingWhitespace(" a\tb ")).toBe(" a\tb");
    expect(trimTrailingWhitespace("\u00a0x\u00a0")).toBe("\u00a0x\u00a0"); // only §8.3's four
    expect(trimTrailingWhitespace(" \r\n\t")).toBe("");
    // 1 MiB of whitespace then one other character: a backtracking /[ \t\r\n]+$/ takes hours here.
    const t0 = performance.now();
    const adversarial = `${" \t\r\n".repeat(256 * 1024)}x`;
    expect(trimTrailingWhitespace(adversarial)).toBe(adversarial);
    expect(trimTrailingWhitespace(`${adversarial}${" ".repeat(1024 * 1024)}`)).toBe(adversarial);
    expect(performance.now() - t0).toBeLessThan(1_000); // a loose sanity bound
  });

  it("nothing listening: connection", async () => {
    const c = challenge("http-01", "localhost");
    await fails(c, opts({ httpPort: closedPort }), "connection", /connection refused/);
  });

  it("a server that accepts and never answers: connection, within the timeout", async () => {
    const c = challenge("http-01", "localhost");
    const t0 = Date.now();
    await fails(c, opts({ httpPort: port(silent), timeoutMs: 700 }), "connection", /no answer within 700 ms/);
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});

describe("lookups through the configured resolver", () => {
  const onlyInTestDns = "only-in-challtestsrv.tca-validation.test";

  it("A and AAAA go to the configured DNS server: a name only it knows resolves to 127.0.0.1", async () => {
    const c = challenge("http-01", onlyInTestDns);
    http.set(c.token, c.keyAuthorization);
    await passes(c, opts({ resolver: dns.resolver }));
    // The system resolver does not know it.
    await fails(c, opts(), "dns", new RegExp(`the system resolver found no address for ${onlyInTestDns}`));
  });

  it("tls-alpn-01 looks its address up there too", async () => {
    const c = challenge("tls-alpn-01", onlyInTestDns);
    await tls.set(onlyInTestDns, c.keyAuthorization);
    await passes(c, opts({ resolver: dns.resolver }));
  });

  it("an address from the DNS server where nothing listens: connection, naming the address", async () => {
    const name = "elsewhere.tca-validation.test";
    await dns.addA(name, ["127.0.0.2"]);
    const c = challenge("http-01", name);
    http.set(c.token, c.keyAuthorization);
    await fails(c, opts({ resolver: dns.resolver }), "connection", /127\.0\.0\.2/);
  });

  it("falls back to the IPv6 address when the IPv4 one refuses the connection", async () => {
    const name = "dual.tca-validation.test";
    await dns.addA(name, ["127.0.0.2"]);
    await dns.addAaaa(name, ["::1"]);
    const v6 = await startHttp01OnV6();
    try {
      const c = challenge("http-01", name);
      v6.set(c.token, c.keyAuthorization);
      await passes(c, opts({ resolver: dns.resolver, httpPort: v6.port }));
    } finally {
      await v6.close();
    }
  });

  it("SERVFAIL: dns", async () => {
    const name = "broken.tca-validation.test";
    await dns.setServfail(name);
    await fails(challenge("http-01", name), opts({ resolver: dns.resolver }), "dns", /SERVFAIL/);
  });

  it("a DNS server that cannot be reached: dns", async () => {
    const c = challenge("http-01", onlyInTestDns);
    await fails(c, opts({ resolver: `127.0.0.1:${closedPort}` }), "dns", /could not be reached/);
  });

  it("a DNS server that never answers: dns, within the timeout", async () => {
    const c = challenge("dns-01", onlyInTestDns);
    const t0 = Date.now();
    await fails(
      c,
      opts({ resolver: `127.0.0.1:${silentUdpPort}`, timeoutMs: 700 }),
      "dns",
      /in time|within 700 ms/,
    );
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});

/** An http-01 responder on ::1 with the same port number semantics (port 0). */
async function startHttp01OnV6(): Promise<{
  port: number;
  set(t: string, k: string): void;
  close(): Promise<void>;
}> {
  const answers = new Map<string, string>();
  const s = createHttpServer((req, res) => {
    const a = answers.get((req.url ?? "").split("/").pop() ?? "");
    if (a) res.writeHead(200).end(a);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => s.listen(0, "::1", () => r()));
  return {
    port: port(s),
    set: (t, k) => void answers.set(t, k),
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

describe("dns-01", () => {
  it("is valid with the TXT record at _acme-challenge.<name>", async () => {
    const c = challenge("dns-01", "dns01.tca-validation.test");
    await dns.setTxt("_acme-challenge.dns01.tca-validation.test", "some other record");
    await dns.setTxt("_acme-challenge.dns01.tca-validation.test", dns01TxtValue(c.keyAuthorization));
    await passes(c, opts({ resolver: dns.resolver }));
  });

  it("a wrong value: incorrectResponse, naming the record and what was expected", async () => {
    const c = challenge("dns-01", "wrong.tca-validation.test");
    await dns.setTxt("_acme-challenge.wrong.tca-validation.test", "not-the-digest");
    const d = await fails(c, opts({ resolver: dns.resolver }), "incorrectResponse");
    expect(d).toContain("_acme-challenge.wrong.tca-validation.test");
    expect(d).toContain("not-the-digest");
    expect(d).toContain(dns01TxtValue(c.keyAuthorization));
    expect(d).toContain(dns.resolver);
  });

  it("no TXT record: dns (nothing was published there, which the user fixes in DNS)", async () => {
    const c = challenge("dns-01", "none.tca-validation.test");
    await fails(
      c,
      opts({ resolver: dns.resolver }),
      "dns",
      /no TXT record for _acme-challenge\.none\.tca-validation\.test/,
    );
  });

  it("a cleared record is gone", async () => {
    const c = challenge("dns-01", "cleared.tca-validation.test");
    await dns.setTxt("_acme-challenge.cleared.tca-validation.test", dns01TxtValue(c.keyAuthorization));
    await passes(c, opts({ resolver: dns.resolver }));
    await dns.clearTxt("_acme-challenge.cleared.tca-validation.test");
    await fails(c, opts({ resolver: dns.resolver }), "dns");
  });

  it("refuses an IP identifier (RFC 8738 §7)", async () => {
    const c = challenge("dns-01", { type: "ip", value: "127.0.0.1" });
    await fails(c, opts({ resolver: dns.resolver }), "unsupportedIdentifier");
  });
});

describe("tls-alpn-01", () => {
  it("is valid with the acme-tls/1 certificate for the name", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", c.keyAuthorization);
    await passes(c, opts());
    expect(tls.servernames).toContain("localhost");
  });

  it("validates an IP identifier: reverse-DNS SNI and an iPAddress SAN (RFC 8738 §6)", async () => {
    const c = challenge("tls-alpn-01", { type: "ip", value: "127.0.0.1" });
    await tls.set("127.0.0.1", c.keyAuthorization);
    await passes(c, opts());
    expect(tls.servernames).toContain("1.0.0.127.in-addr.arpa");
  });

  it("a certificate for another key authorization: incorrectResponse", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", `${c.token}.another-thumbprint`);
    await fails(c, opts(), "incorrectResponse", /acmeIdentifier extension holds/);
  });

  it("no acme-tls/1 ALPN: tls", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tlsNoAlpn.set("localhost", c.keyAuthorization);
    await fails(
      c,
      opts({ tlsPort: tlsNoAlpn.port }),
      "tls",
      /did not negotiate the acme-tls\/1 ALPN protocol/,
    );
  });

  it("a server with other ALPN protocols only: tls", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tlsH2Only.set("localhost", c.keyAuthorization);
    await fails(c, opts({ tlsPort: tlsH2Only.port }), "tls");
  });

  it("the acmeIdentifier extension not critical: refused", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", c.keyAuthorization, { critical: false });
    await fails(c, opts(), "incorrectResponse", /not marked critical/);
  });

  it("no acmeIdentifier extension: refused", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", c.keyAuthorization, { withoutAcmeIdentifier: true });
    await fails(c, opts(), "incorrectResponse", /0 acmeIdentifier extensions/);
  });

  it("a SAN for another name: refused", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", c.keyAuthorization, { sans: [{ type: "dns", value: "other.example" }] });
    await fails(c, opts(), "incorrectResponse", /other\.example.*expected dNSName localhost/);
  });

  it("a second SAN: refused", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", c.keyAuthorization, {
      sans: [
        { type: "dns", value: "localhost" },
        { type: "dns", value: "extra.example" },
      ],
    });
    await fails(c, opts(), "incorrectResponse", /2 subjectAltNames/);
  });

  it("the SAN compares without regard to case", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await tls.set("localhost", c.keyAuthorization, { sans: [{ type: "dns", value: "LocalHost" }] });
    await passes(c, opts());
  });

  it("no certificate for the SNI name: tls", async () => {
    const c = challenge("tls-alpn-01", { type: "ip", value: "127.0.0.1" });
    tls.remove("127.0.0.1");
    await fails(c, opts(), "tls", /handshake failed/);
  });

  it("nothing listening: connection", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    await fails(c, opts({ tlsPort: closedPort }), "connection", /connection refused/);
  });

  it("a server that accepts and never answers: connection, within the timeout", async () => {
    const c = challenge("tls-alpn-01", "localhost");
    const t0 = Date.now();
    await fails(c, opts({ tlsPort: port(silent), timeoutMs: 700 }), "connection", /no answer within 700 ms/);
    expect(Date.now() - t0).toBeLessThan(1_500);
  });
});

describe("reverse-DNS names (RFC 8738 §6)", () => {
  it("IPv4 and IPv6", () => {
    expect(reverseDnsName("192.0.2.5")).toBe("5.2.0.192.in-addr.arpa");
    expect(reverseDnsName("2001:db8::1")).toBe(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
  });
});

describe("malformed input", () => {
  it("a token that is not base64url never reaches a URL", async () => {
    const c = challenge("http-01", "localhost");
    c.token = "../../etc/passwd";
    await fails(c, opts(), "malformed");
  });
});
