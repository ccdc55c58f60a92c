// Certificates and loopback servers for the HTTP client's TLS tests: private CAs made with the
// openssl CLI, server certificates with IP SAN 127.0.0.1, an https server, and a server that tells
// TLS from plain HTTP by the first byte (0x16 = a TLS handshake record, RFC 8446 §5.1) the way
// `tca serve --tls auto` does, with its TLS side switched on, off or broken by the test.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { openssl } from "../helpers/openssl.ts";

export interface TestCa {
  certPem: string;
  /** Issues a server certificate for 127.0.0.1 (IP SAN) or the given SAN. */
  issue(san?: string): { certPem: string; keyPem: string };
}

const dirs: string[] = [];

export function removeCertDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A CA made with openssl: self-signed P-256 root with basicConstraints CA:TRUE. */
export function makeCa(name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "tca-tls-"));
  dirs.push(dir);
  const key = join(dir, "ca.key");
  const cert = join(dir, "ca.pem");
  openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]); // prettier-ignore
  let n = 0;
  return {
    certPem: readFileSync(cert, "utf8"),
    issue(san = "IP:127.0.0.1") {
      n++;
      const k = join(dir, `s${n}.key`);
      const csr = join(dir, `s${n}.csr`);
      const crt = join(dir, `s${n}.pem`);
      const ext = join(dir, `s${n}.ext`);
      writeFileSync(
        ext,
        `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`,
      );
      openssl([
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", k, "-out", csr, "-subj", "/CN=coordinator",
      ]); // prettier-ignore
      openssl([
        "x509", "-req", "-in", csr, "-CA", cert, "-CAkey", key, "-CAcreateserial",
        "-out", crt, "-days", "1", "-extfile", ext,
      ]); // prettier-ignore
      return { certPem: readFileSync(crt, "utf8"), keyPem: readFileSync(k, "utf8") };
    },
  };
}

export interface Hit {
  method: string;
  url: string;
  /** Whether the request came over TLS (what the coordinator reads from `req.socket.encrypted`). */
  encrypted: boolean;
}

type Handler = (req: IncomingMessage, res: ServerResponse, encrypted: boolean) => void;

const ok: Handler = (req, res, encrypted) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ ok: true, encrypted, path: req.url }));
};

const open: Server[] = [];

function listen(server: Server): Promise<number> {
  open.push(server);
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
}

export async function closeTlsServers(): Promise<void> {
  await Promise.all(
    open.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
          s.close(() => r());
        }),
    ),
  );
}

/** An https server; counts the HTTP requests that reached it and the handshakes that failed. */
export async function startHttps(
  cert: { certPem: string; keyPem: string },
  handler: Handler = ok,
): Promise<{ url: string; hits: Hit[]; tlsErrors: number }> {
  const state = { hits: [] as Hit[], tlsErrors: 0 };
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    state.hits.push({ method: req.method ?? "", url: req.url ?? "", encrypted: true });
    handler(req, res, true);
  });
  server.on("tlsClientError", () => state.tlsErrors++);
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}`,
    get hits() {
      return state.hits;
    },
    get tlsErrors() {
      return state.tlsErrors;
    },
  };
}

export type TlsSide =
  /** Plain HTTP only: a TLS ClientHello goes to the HTTP parser, which answers 400 and closes. */
  | "off"
  /** TLS with `cert`; plain HTTP as well. */
  | "on"
  /** TLS with a certificate of another CA. */
  | "wrong-cert"
  /** TLS handshakes are cut off (the connection is closed). */
  | "closed";

export interface SniffingServer {
  /** The plain http:// URL (the same port serves TLS when the TLS side is on). */
  url: string;
  hits: Hit[];
  tls: TlsSide;
  /** Sets the TLS side and drops every open connection, so the next request connects anew. */
  switchTls(side: TlsSide): void;
  /** With a TLS side (not "off"), plain HTTP answers 403 HTTPS_REQUIRED except on these paths. */
  plainAllowed: ((path: string) => boolean) | undefined;
}

/** One port, plain HTTP and TLS told apart by the first byte, as `tca serve --tls auto` does. */
export async function startSniffing(
  cert: { certPem: string; keyPem: string },
  wrong: { certPem: string; keyPem: string },
): Promise<SniffingServer> {
  const sockets = new Set<Socket>();
  const s: SniffingServer = {
    url: "",
    hits: [],
    tls: "off",
    switchTls(side) {
      s.tls = side;
      for (const so of sockets) so.destroy();
    },
    plainAllowed: undefined,
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const encrypted = (req.socket as TLSSocket).encrypted === true;
    s.hits.push({ method: req.method ?? "", url: req.url ?? "", encrypted });
    if (!encrypted && s.tls !== "off" && s.plainAllowed && !s.plainAllowed(req.url ?? "")) {
      res.writeHead(403, { "content-type": "application/problem+json" });
      res.end(
        JSON.stringify({
          type: "about:blank",
          title: "Forbidden",
          status: 403,
          code: "HTTPS_REQUIRED",
          detail: `this coordinator serves this route over TLS only: use ${s.url.replace("http:", "https:")}${req.url}`,
        }),
      );
      return;
    }
    ok(req, res, encrypted);
  };
  const plain = createHttpServer(handle);
  const good = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, handle);
  const bad = createHttpsServer({ cert: wrong.certPem, key: wrong.keyPem }, handle);
  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const isTls = first[0] === 0x16;
      if (isTls && s.tls === "closed") return void socket.destroy();
      const to = !isTls || s.tls === "off" ? plain : s.tls === "on" ? good : bad;
      to.emit("connection", socket);
      process.nextTick(() => socket.resume());
    });
  });
  const close = front.close.bind(front);
  front.close = ((cb?: (err?: Error) => void) => {
    for (const so of sockets) so.destroy();
    return close(cb);
  }) as typeof front.close;
  const port = await listen(front);
  s.url = `http://127.0.0.1:${port}`;
  return s;
}
