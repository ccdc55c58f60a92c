// Challenge responders on loopback, playing the ACME client's side of http-01 (RFC 8555 §8.3) and
// tls-alpn-01 (RFC 8737 §3) for tests: each listens on 127.0.0.1, port 0, and answers what set()
// told it to.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { isIP } from "node:net";
import { createSecureContext, createServer as createTlsServer, type SecureContext } from "node:tls";
import * as x509 from "@peculiar/x509";
import {
  ACME_TLS_ALPN_PROTOCOL,
  acmeIdentifierExtnValue,
  ID_PE_ACME_IDENTIFIER,
  reverseDnsName,
} from "../../src/acme/validation/tls-alpn-01.ts";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface Http01Responder {
  port: number;
  /** Serves `keyAuthorization` at /.well-known/acme-challenge/`token`. */
  set(token: string, keyAuthorization: string): void;
  remove(token: string): void;
  /** The requests received, in order (method, path, headers), for tests to check the Host header. */
  requests: Array<{ method: string; path: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** An http-01 responder: 200 with the key authorization for a known token, 404 otherwise. */
export async function startHttp01Responder(): Promise<Http01Responder> {
  const answers = new Map<string, string>();
  const requests: Http01Responder["requests"] = [];
  const server = createHttpServer((req, res) => {
    const path = req.url ?? "";
    requests.push({ method: req.method ?? "", path, headers: req.headers });
    const m = path.match(/^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/);
    const answer = m && req.method === "GET" ? answers.get(m[1]!) : undefined;
    if (answer === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no such challenge\n");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(answer);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as { port: number }).port,
    set: (token, keyAuthorization) => void answers.set(token, keyAuthorization),
    remove: (token) => void answers.delete(token),
    requests,
    close: () => new Promise<void>((r) => server.close(() => r()).closeAllConnections()),
  };
}

/** How a tls-alpn-01 validation certificate is made; the defaults are what RFC 8737 §3 requires. */
export interface ValidationCertOptions {
  /** The acmeIdentifier extension marked critical (default true). */
  critical?: boolean;
  /** The subjectAltNames: default, the one name (a dNSName, or an iPAddress for an IP). */
  sans?: Array<{ type: "dns" | "ip"; value: string }>;
  /** Leave out the acmeIdentifier extension. */
  withoutAcmeIdentifier?: boolean;
}

export interface TlsAlpnResponder {
  port: number;
  /**
   * Serves a validation certificate for `name` (a DNS name, or an IP address, found by its
   * reverse-DNS SNI name as RFC 8738 §6 says) holding SHA-256 of `keyAuthorization`.
   */
  set(name: string, keyAuthorization: string, o?: ValidationCertOptions): Promise<void>;
  remove(name: string): void;
  /** The SNI names of the handshakes received, in order. */
  servernames: string[];
  close(): Promise<void>;
}

/**
 * A tls-alpn-01 responder: TLS on 127.0.0.1, ALPN `alpnProtocols` (default ["acme-tls/1"]; [] for a
 * server that offers none), a self-signed certificate per SNI name with the acmeIdentifier extension.
 */
export async function startTlsAlpnResponder(o: { alpnProtocols?: string[] } = {}): Promise<TlsAlpnResponder> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const keyDer = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${keyDer.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END PRIVATE KEY-----\n`;
  const contexts = new Map<string, SecureContext>();
  const servernames: string[] = [];
  const alpn = o.alpnProtocols ?? [ACME_TLS_ALPN_PROTOCOL];
  const server = createTlsServer({
    ...(alpn.length > 0 ? { ALPNProtocols: alpn } : {}),
    SNICallback: (servername, cb) => {
      servernames.push(servername);
      const ctx = contexts.get(servername.toLowerCase());
      if (ctx) cb(null, ctx);
      else cb(new Error(`no validation certificate for ${servername}`));
    },
  });
  // A handshake the responder refuses is the test's business, not an uncaught error.
  server.on("tlsClientError", () => undefined);
  server.on("secureConnection", (socket) => socket.on("error", () => undefined).end());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));

  const sniOf = (name: string): string => (isIP(name) ? reverseDnsName(name) : name.toLowerCase());
  return {
    port: (server.address() as { port: number }).port,
    servernames,
    async set(name, keyAuthorization, c = {}) {
      const sans = c.sans ?? [{ type: isIP(name) ? ("ip" as const) : ("dns" as const), value: name }];
      const now = Date.now();
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: "01",
        name: "CN=ACME tls-alpn-01 challenge",
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 86_400_000),
        keys,
        signingAlgorithm: alg,
        extensions: [
          new x509.SubjectAlternativeNameExtension(sans),
          ...(c.withoutAcmeIdentifier
            ? []
            : [
                new x509.Extension(
                  ID_PE_ACME_IDENTIFIER,
                  c.critical ?? true,
                  new Uint8Array(acmeIdentifierExtnValue(keyAuthorization)),
                ),
              ]),
        ],
      });
      contexts.set(sniOf(name), createSecureContext({ key: keyPem, cert: cert.toString("pem") }));
    },
    remove: (name) => void contexts.delete(sniOf(name)),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
