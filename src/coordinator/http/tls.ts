// How the coordinator listens (docs/tls.md): three modes on one port.
// - plain: HTTP only (no TLS configured).
// - static: TLS only (`tca serve --tls-cert F --tls-key F`), the PEM chain and key read at start and
//   again on SIGHUP (`setSecureContext`); a key that does not match the certificate, or a
//   certificate that cannot be read, has expired or is not yet valid, is refused with a message.
// - auto: one TCP listener that looks at the first byte of each connection: 0x16 is a TLS
//   handshake record (RFC 8446 §5.1, ContentType handshake = 22) and goes to the TLS server,
//   anything else to plain HTTP. Until the coordinator has installed its own certificate
//   (src/coordinator/self-tls.ts) TLS handshakes are closed at once, so clients that probe for TLS
//   stay on plain HTTP. Once TLS is on, plain HTTP serves only the public routes and the custodians'
//   signed envelopes (plainHttpRestriction below); everything else is a 403 HTTPS_REQUIRED.
// The limits of src/coordinator/http/limits.ts (timeouts, connection cap) apply in every mode and to
// every connection; a TLS handshake must finish within the headers timeout.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo, type Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "pino";
import type { RequestHandler } from "express";
import { applyServerLimits, type HttpLimits } from "./limits.ts";

export type TlsMode = "plain" | "static" | "auto";

/** A certificate chain (PEM, leaf first) and its private key (PEM). */
export interface KeyAndChain {
  keyPem: string;
  chainPem: string;
}

/** A problem with TLS material: unreadable, expired, or a key that is not the certificate's. */
export class TlsMaterialError extends Error {
  override readonly name = "TlsMaterialError";
}

export interface LeafSummary {
  serial: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * Checks that `chainPem` starts with a certificate valid at `now` whose public key is the one of
 * `keyPem`. `what` names the files in messages. Returns the leaf's summary.
 */
export function checkKeyAndChain(
  m: KeyAndChain,
  what: { cert: string; key: string },
  now = Date.now(),
): LeafSummary {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(m.chainPem);
  } catch (e) {
    throw new TlsMaterialError(`${what.cert} holds no readable PEM certificate: ${(e as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(m.keyPem);
  } catch (e) {
    throw new TlsMaterialError(`${what.key} holds no readable PEM private key: ${(e as Error).message}`);
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now)
    throw new TlsMaterialError(
      `the certificate in ${what.cert} (${leaf.subject}) expired on ${notAfter.toISOString()}`,
    );
  if (notBefore.getTime() > now)
    throw new TlsMaterialError(
      `the certificate in ${what.cert} (${leaf.subject}) is not valid before ${notBefore.toISOString()}`,
    );
  if (!leaf.checkPrivateKey(key))
    throw new TlsMaterialError(
      `the key in ${what.key} does not match the certificate in ${what.cert} (${leaf.subject.replace(/\n/g, ", ")}, serial ${leaf.serialNumber}): give the key this certificate was issued for`,
    );
  return { serial: leaf.serialNumber, subject: leaf.subject.replace(/\n/g, ", "), notBefore, notAfter };
}

/** Reads and checks a static certificate chain and key (files as given to `tca serve`). */
export function readStaticTls(
  certFile: string,
  keyFile: string,
  now = Date.now(),
): KeyAndChain & LeafSummary {
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch (e) {
      throw new TlsMaterialError(
        `cannot read the ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  };
  const m = { chainPem: read(certFile, "certificate chain"), keyPem: read(keyFile, "private key") };
  return { ...m, ...checkKeyAndChain(m, { cert: certFile, key: keyFile }, now) };
}

const contextOf = (m: KeyAndChain): SecureContextOptions => ({ key: m.keyPem, cert: m.chainPem });

export interface Listener {
  readonly mode: TlsMode;
  /** Whether this listener now serves TLS (static: always; auto: once a certificate is installed). */
  readonly tlsActive: boolean;
  /** Installs a new certificate and key for the connections that follow (auto and static). */
  install(m: KeyAndChain): void;
  /** Resolves once TLS is active. */
  whenTlsActive(): Promise<void>;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, closes idle connections, and cuts the rest after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

/**
 * A listener for `app` in one of the three modes. `initial` is the static certificate (static mode
 * only; auto mode starts without one).
 */
export function createListener(
  app: http.RequestListener,
  limits: HttpLimits,
  mode: TlsMode,
  log: Logger,
  initial?: KeyAndChain,
): Listener {
  let active = mode === "static";
  let onActive: (() => void)[] = [];
  const activated = () => {
    for (const f of onActive) f();
    onActive = [];
  };
  const servers: http.Server[] = [];
  let secure: https.Server | undefined;
  let plain: http.Server | undefined;
  let outer: net.Server;
  if (mode === "plain") {
    plain = http.createServer(app);
    outer = plain;
  } else if (mode === "static") {
    if (!initial) throw new Error("static TLS needs a certificate and key");
    // A handshake that does not finish is cut like headers that do not arrive (slow-loris). Node
    // reads handshakeTimeout only from the options at creation (default 120 s).
    secure = https.createServer({ ...contextOf(initial), handshakeTimeout: limits.headersTimeoutMs }, app);
    outer = secure;
  } else {
    plain = http.createServer(app);
    // No certificate yet: any handshake fails (and its socket is closed) until install().
    secure = https.createServer({ handshakeTimeout: limits.headersTimeoutMs }, app);
    outer = net.createServer((socket) => route(socket));
    outer.maxConnections = limits.maxConnections;
  }
  if (plain) servers.push(plain);
  if (secure) {
    servers.push(secure as unknown as http.Server);
    secure.on("tlsClientError", (err: Error, s: Socket) => {
      log.debug({ err: err.message, remote: s.remoteAddress }, "TLS handshake failed");
      s.destroy();
    });
  }
  // Timeouts and the connection cap on every server; in auto mode the cap counts on the TCP listener.
  for (const s of servers) applyServerLimits(s, limits);

  /** Auto mode: hand a new connection to the TLS or the plain HTTP server by its first byte. */
  function route(socket: Socket): void {
    // A client that connects and sends nothing is cut like one that sends no headers.
    socket.setTimeout(limits.headersTimeoutMs, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.once("readable", () => {
      const first = socket.read(1) as Buffer | null;
      if (!first) return void socket.destroy();
      socket.setTimeout(0);
      socket.unshift(first);
      if (first[0] === 0x16) {
        if (!active) return void socket.destroy(); // no certificate yet: stay on plain HTTP
        secure!.emit("connection", socket);
      } else plain!.emit("connection", socket);
    });
  }

  return {
    mode,
    get tlsActive() {
      return active;
    },
    install(m: KeyAndChain) {
      if (!secure) throw new Error("this listener serves plain HTTP only");
      secure.setSecureContext(contextOf(m));
      if (!active) {
        active = true;
        activated();
      }
    },
    whenTlsActive: () => (active ? Promise.resolve() : new Promise<void>((r) => onActive.push(r))),
    listen: (port, host) =>
      new Promise<AddressInfo>((resolve, reject) => {
        outer.once("error", reject);
        outer.listen(port, host, () => {
          outer.removeListener("error", reject);
          // Servers fed by the auto listener never listen themselves: start their timeout checks
          // (Node's connection tracking starts on "listening").
          if (mode === "auto") for (const s of servers) s.emit("listening");
          resolve(outer.address() as AddressInfo);
        });
      }),
    close: async (graceMs) => {
      const closed = new Promise<void>((resolve) => outer.close(() => resolve()));
      if (mode === "auto") for (const s of servers) s.close(); // stops their timers; never listened
      for (const s of servers) s.closeIdleConnections();
      // Long-polls would hold the close for up to their wait: cut them after a moment.
      const cut = setTimeout(() => {
        for (const s of servers) s.closeAllConnections();
      }, graceMs);
      await closed;
      clearTimeout(cut);
    },
  };
}

/** The routes plain HTTP still serves once TLS is on (docs/tls.md). */
const PLAIN_GET = new Set([
  "/ca.pem",
  "/ca.crt",
  "/crl",
  "/crl.pem",
  "/api/v1/health",
  "/api/v1/health/live",
  "/api/v1/openapi.json",
]);
// OCSP (docs/ocsp.md): relying parties ask over http://, as the AIA's OCSP URL says (RFC 5019 §5).
const PLAIN_OCSP_GET = /^\/ocsp\/./;
// Not the exchange: its answer lists requests to review, so it is a read (docs/security-model.md).
const PLAIN_POST = /^\/api\/v1\/(custodians\/heartbeat|ceremonies\/[^/]+\/messages)$/;

/**
 * Express middleware for auto mode: once TLS is active, a request over plain HTTP gets only the
 * public routes (CA certificate, CRL and OCSP for relying parties, which fetch them over http:// as
 * the AIA and CRL distribution point URLs say; health; OpenAPI) and the custodians' signed envelopes
 * (authenticated and, for DKG shares, encrypted on their own). Anything else — tokens, CSRs, reads —
 * is a 403 problem+json with code HTTPS_REQUIRED naming the https:// URL; so is any request that
 * carries credentials (an Authorization header), even to a public route, so that a client set up
 * with an http:// URL and a token learns at once that it sends the token in clear.
 */
export function plainHttpRestriction(tlsActive: () => boolean): RequestHandler {
  return (req, res, next) => {
    if (!tlsActive() || (req.socket as Socket & { encrypted?: boolean }).encrypted) return next();
    const path = req.path;
    const credentials = req.get("authorization") !== undefined;
    if (!credentials && (req.method === "GET" || req.method === "HEAD") && PLAIN_GET.has(path)) return next();
    if (!credentials && (req.method === "GET" || req.method === "HEAD") && PLAIN_OCSP_GET.test(path))
      return next();
    if (!credentials && req.method === "POST" && (PLAIN_POST.test(path) || path === "/ocsp")) return next();
    const host = req.get("host") ?? "";
    const url = /^[A-Za-z0-9.:[\]-]{1,300}$/.test(host) ? `https://${host}${req.originalUrl}` : "https://";
    // ACME clients read RFC 8555 error types (docs/acme.md); a browser on the console is sent to https.
    if (path.startsWith("/acme/"))
      return void res
        .status(403)
        .type("application/problem+json")
        .send(
          JSON.stringify({
            type: "urn:ietf:params:acme:error:unauthorized",
            detail: `this ACME server is served over HTTPS only: use ${url}`,
            status: 403,
          }),
        );
    if (path.startsWith("/ui/") && (req.method === "GET" || req.method === "HEAD") && url !== "https://")
      return void res.redirect(308, url);
    res
      .status(403)
      .type("application/problem+json")
      .json({
        type: "https://tca.dev/problems/https-required",
        title: "HTTPS required",
        status: 403,
        detail: `this coordinator serves ${req.method} ${path} over HTTPS only: use ${url}`,
        code: "HTTPS_REQUIRED",
        https: url,
      });
  };
}
