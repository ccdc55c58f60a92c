// The coordinator's listener (src/coordinator/http/tls.ts): auto mode tells TLS from plain HTTP by
// the first byte, closes handshakes until a certificate is installed, keeps the connection cap and
// the timeouts on every connection; the material checks name what is wrong.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import express from "express";
import pino from "pino";
import { Sandbox } from "../helpers/processes.ts";
import { DEFAULT_HTTP_LIMITS } from "../../src/coordinator/http/limits.ts";
import {
  checkKeyAndChain,
  createListener,
  plainHttpRestriction,
  type KeyAndChain,
  type Listener,
} from "../../src/coordinator/http/tls.ts";

const sb = new Sandbox();
afterAll(() => sb.cleanup());
let a: KeyAndChain;
let b: KeyAndChain;
let listener: Listener | undefined;

function selfSigned(dir: string, name: string, days = "1"): KeyAndChain {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key].concat(
      ["-out", cert, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", days],
    ),
    { stdio: "pipe" },
  );
  return { keyPem: readFileSync(key, "utf8"), chainPem: readFileSync(cert, "utf8") };
}

beforeAll(() => {
  const dir = sb.tempDir("tca-tls-listener-");
  a = selfSigned(dir, "a");
  b = selfSigned(dir, "b");
});
afterEach(async () => {
  await listener?.close(0);
  listener = undefined;
});

async function autoListener(limits = {}): Promise<{ port: number; l: Listener }> {
  const app = express();
  const l = createListener(app, { ...DEFAULT_HTTP_LIMITS, ...limits }, "auto", pino({ level: "silent" }));
  app.use(plainHttpRestriction(() => l.tlsActive));
  app.get("/api/v1/health", (req, res) =>
    res.json({ tls: Boolean((req.socket as { encrypted?: boolean }).encrypted) }),
  );
  app.get("/private", (_req, res) => res.json({ ok: true }));
  listener = l;
  const { port } = await l.listen(0, "127.0.0.1");
  return { port, l };
}

/** One TLS handshake trusting `ca`: "ok", or the error's code/message. */
function handshake(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: "127.0.0.1", port, ca });
    s.once("secureConnect", () => (s.destroy(), resolve("ok")));
    s.once("error", (e: Error & { code?: string }) => resolve(e.code ?? e.message));
  });
}

const closed = (s: Socket): Promise<string> =>
  new Promise((resolve) => {
    let data = "";
    s.on("data", (d: Buffer) => (data += d.toString()));
    s.on("error", () => undefined);
    s.once("close", () => resolve(data));
  });

describe("auto listener", () => {
  it("plain HTTP only until a certificate is installed; then both on one port, plain HTTP restricted", async () => {
    const { port, l } = await autoListener();
    const plain = `http://127.0.0.1:${port}`;
    expect(await (await fetch(`${plain}/private`)).json()).toEqual({ ok: true });
    expect(await handshake(port, a.chainPem)).not.toBe("ok"); // closed: no certificate yet
    expect(l.tlsActive).toBe(false);
    const active = l.whenTlsActive();
    l.install(a);
    await active;
    expect(await handshake(port, a.chainPem)).toBe("ok");
    expect(await (await fetch(`${plain}/api/v1/health`)).json()).toEqual({ tls: false });
    const refused = await fetch(`${plain}/private`, { headers: { host: `127.0.0.1:${port}` } });
    expect(refused.status).toBe(403);
    const p = (await refused.json()) as { code: string; detail: string };
    expect(p.code).toBe("HTTPS_REQUIRED");
    expect(p.detail).toContain(`https://127.0.0.1:${port}/private`);
    // Credentials over plain HTTP are refused even on a public route, so a client set up with an
    // http:// URL and a token learns at once; the exchange (a read) is refused too.
    const withToken = await fetch(`${plain}/api/v1/health`, {
      headers: { authorization: "Bearer x".repeat(3) },
    });
    expect(withToken.status).toBe(403);
    const exchange = await fetch(`${plain}/api/v1/custodians/exchange`, { method: "POST", body: "{}" });
    expect(exchange.status).toBe(403);
    // ACME clients get an RFC 8555 error type; a browser on the console is redirected to https.
    const acme = await fetch(`${plain}/acme/new-order`, { method: "POST", body: "{}" });
    expect(acme.status).toBe(403);
    expect(((await acme.json()) as { type: string }).type).toBe("urn:ietf:params:acme:error:unauthorized");
    const ui = await fetch(`${plain}/ui/certificates`, { redirect: "manual" });
    expect(ui.status).toBe(308);
    expect(ui.headers.get("location")).toBe(`https://127.0.0.1:${port}/ui/certificates`);
    // A new certificate is served to the connections that follow.
    l.install(b);
    expect(await handshake(port, b.chainPem)).toBe("ok");
    expect(await handshake(port, a.chainPem)).not.toBe("ok");
  });

  it("keeps the connection cap and cuts a connection that sends nothing", async () => {
    const { port } = await autoListener({ maxConnections: 2, headersTimeoutMs: 300 });
    const held = [netConnect(port, "127.0.0.1"), netConnect(port, "127.0.0.1")];
    await Promise.all(held.map((s) => new Promise((r) => s.once("connect", r))));
    // The cap: a third connection is closed without an answer even though it sends a request.
    const third = netConnect(port, "127.0.0.1");
    third.write("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await closed(third)).toBe("");
    // The silent ones are cut by the headers timeout (nothing was ever sent).
    expect(await Promise.all(held.map(closed))).toEqual(["", ""]);
  });

  it("cuts a TLS handshake that does not finish within the headers timeout (auto and static)", async () => {
    const partialHello = (port: number) => {
      const s = netConnect(port, "127.0.0.1");
      s.once("connect", () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])));
      return closed(s);
    };
    const { port, l } = await autoListener({ headersTimeoutMs: 300 });
    l.install(a);
    // Without the cut this would wait for Node's default handshake timeout (120 s) and time out.
    expect(await partialHello(port)).toBe("");
    await listener?.close(0);
    const app = express();
    const stat = createListener(
      app,
      { ...DEFAULT_HTTP_LIMITS, headersTimeoutMs: 300 },
      "static",
      pino({ level: "silent" }),
      a,
    );
    listener = stat;
    const { port: p2 } = await stat.listen(0, "127.0.0.1");
    expect(await partialHello(p2)).toBe("");
  }, 20_000);
});

describe("certificate and key checks", () => {
  it("names an expired certificate, one not yet valid, a mismatched key and unreadable PEM", () => {
    const files = { cert: "c.pem", key: "k.pem" };
    const year = 365 * 86_400_000;
    expect(checkKeyAndChain(a, files).serial).toMatch(/^[0-9A-F]+$/);
    expect(() => checkKeyAndChain(a, files, Date.now() + year)).toThrow(
      /certificate in c\.pem .* expired on/,
    );
    expect(() => checkKeyAndChain(a, files, Date.now() - year)).toThrow(/is not valid before/);
    expect(() => checkKeyAndChain({ keyPem: b.keyPem, chainPem: a.chainPem }, files)).toThrow(
      /the key in k\.pem does not match the certificate in c\.pem/,
    );
    expect(() => checkKeyAndChain({ keyPem: a.keyPem, chainPem: "nope" }, files)).toThrow(
      /c\.pem holds no readable PEM certificate/,
    );
    expect(() => checkKeyAndChain({ keyPem: "nope", chainPem: a.chainPem }, files)).toThrow(
      /k\.pem holds no readable PEM private key/,
    );
  });
});
