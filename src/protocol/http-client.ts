// The one HTTP client for everything that talks to a coordinator: the custodian CLI and agent, the
// DKG runner and `tca request`. It takes several base URLs — replicas of one CA on one database —
// and moves to the next one when a coordinator cannot be reached, without sending a message twice
// where sending twice could matter.
//
// Failover rules:
// - A connection failure (refused, reset, DNS failure, no answer in time) or a 502/503/504 (a
//   proxy in front of a replica that is down, or a replica answering 503 while it initializes)
//   moves on to the next URL. Any other answer, 4xx or 500 included, reached a coordinator and ends
//   the request there.
// - The URL that last answered is tried first next time (sticky).
// - A request is sent to a second coordinator only when that is harmless: when it is idempotent
//   (GETs; POSTs of signed envelopes, whose unique ids the coordinator remembers and refuses
//   a second time: see ReplayGuard in envelope.ts),
//   or when it was certainly not processed: the connection was refused or the name did not resolve.
//   A request that was sent and whose answer was lost (reset, timeout) or that met a 502/503/504 is
//   reported, never resent: a proxy in front of a replica may answer 503 after it passed the
//   request on, so the caller is told it may have been processed.
// - A kept-alive connection the server closed just as an idempotent request went out is retried
//   once on the same URL, on a fresh connection, before moving on.
// Answers are JSON parsed with a zod schema, or text (PEM). Server errors are RFC 9457 problem+json;
// their `code` and `detail` are kept on the error.
//
// TLS (docs/tls.md): an https:// URL is always verified — against `tls.ca` when given (the CA root
// the caller pins), else Node's built-in roots — and never with verification turned off. A
// certificate that does not verify is a failure like a refused connection: nothing was sent. With
// `tls.upgrade`, an http:// URL moves to https:// on the same host and port as soon as that
// coordinator serves a certificate that verifies against `tls.ca`, and never moves back: this is how
// custodians that joined the key ceremony over plain HTTP (before any root existed) reach a
// coordinator that then issued itself a certificate. A coordinator that answers an http:// request
// with 403 `HTTPS_REQUIRED` (it serves TLS and keeps plain HTTP for public routes only) is probed at
// once; if its certificate verifies, the request is sent once more over https://, else it fails.
// Nothing that failed over TLS is ever sent over plain HTTP instead.
import { connect as tlsConnect } from "node:tls";
import { Agent, fetch as undiciFetch } from "undici";
import type { z } from "zod";

/** A base URL that is not an absolute http(s) URL. */
export class BaseUrlError extends Error {
  override readonly name = "BaseUrlError";
}

/**
 * Splits comma-separated lists (each argument may hold several URLs), trims, drops duplicates, and
 * checks each is an absolute http: or https: URL.
 */
export function parseBaseUrls(input: string | readonly string[]): string[] {
  const parts = (typeof input === "string" ? [input] : input)
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (parts.length === 0) throw new BaseUrlError("no coordinator URL given");
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of parts) {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      throw new BaseUrlError(`"${p}" is not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new BaseUrlError(`"${p}" is not an http:// or https:// URL`);
    if (seen.has(u.href)) continue;
    seen.add(u.href);
    out.push(p);
  }
  return out;
}

export type HttpErrorKind =
  /** No coordinator answered (every URL tried failed to connect, reset, or timed out). */
  | "unreachable"
  /** A coordinator answered with an error status. */
  | "status"
  /** A coordinator answered 2xx with a body that does not fit the expected schema. */
  | "malformed";

export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly kind: HttpErrorKind,
    message: string,
    readonly info: {
      method: string;
      path: string;
      /** The base URL of the last attempt. */
      url: string;
      /** Every base URL tried, in order. */
      tried: readonly string[];
      status?: number;
      /** The problem's stable `code` (BAD_REQUEST, NOT_FOUND, CONFLICT, …), when the answer had one. */
      code?: string;
      /** The problem's `detail`, when the answer had one. */
      detail?: string;
      /** The request went out and its answer was lost: it may have been processed (not resent). */
      maybeProcessed?: boolean;
      /**
       * Why the last attempt got no answer (kind "unreachable"): CERTIFICATE_REFUSED, ECONNREFUSED,
       * ECONNRESET, TIMEOUT, …
       */
      failure?: string;
    },
  ) {
    super(message);
  }
  get status(): number | undefined {
    return this.info.status;
  }
  get code(): string | undefined {
    return this.info.code;
  }
  get detail(): string | undefined {
    return this.info.detail;
  }
  get url(): string {
    return this.info.url;
  }
  get tried(): readonly string[] {
    return this.info.tried;
  }
  get maybeProcessed(): boolean {
    return this.info.maybeProcessed ?? false;
  }
}

export interface RequestOptions {
  /** A JSON body. */
  body?: unknown;
  /** Sent as `Authorization: Bearer TOKEN`. */
  token?: string;
  /** Per attempt (each URL gets this long). Default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Whether sending the request twice is harmless. Default: true for GET and HEAD, false otherwise. */
  idempotent?: boolean;
  /** The Accept header. Default: JSON and problem+json. */
  accept?: string;
  /**
   * More headers, computed for each attempt (each URL, each retry) from the method and full URL:
   * a signed read (src/protocol/signed-read.ts) is bound to both and must be fresh every time.
   */
  headers?: (method: string, url: URL) => Record<string, string>;
}

export interface TlsOptions {
  /** PEM certificates an https:// coordinator must chain to. Default: Node's built-in roots. */
  ca?: string;
  /**
   * Move http:// URLs to https:// (same host and port) once the coordinator there serves a
   * certificate that verifies against `ca`, and stay there. Needs `ca`.
   */
  upgrade?: boolean;
  /**
   * What to tell the user when a certificate does not chain to `ca` (after "it was refused (why):").
   * Default: it must chain to the CA root this client trusts — pass --ca-file or set TCA_CA_FILE.
   */
  hint?: string;
  /** How long an http:// URL stays on plain HTTP after a probe found no TLS there. Default 5 s. */
  probeIntervalMs?: number;
}

export interface HttpAnswer {
  status: number;
  /** The base URL that answered. */
  url: string;
  contentType: string;
  text: string;
}

/** Errors that happen before a request is sent: nothing reached a server. */
const NOT_SENT = new Set([
  "CERTIFICATE_REFUSED",
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "BAD_PORT",
]);
/** OpenSSL's verification failures (and Node's name check): the server is not who the URL names. */
const CERTIFICATE_REFUSED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
/**
 * A verification failure of the peer's certificate: the named codes, and any other OpenSSL
 * X509_V_ERR name (CERT_*, UNABLE_TO_*, …: CERT_CHAIN_TOO_LONG, UNABLE_TO_DECRYPT_CERT_SIGNATURE)
 * — never read as "this server speaks no TLS", which would keep a client on plain HTTP.
 */
function isCertificateRefusal(code: string): boolean {
  return CERTIFICATE_REFUSED.has(code) || /^(CERT_|UNABLE_TO_|ERR_TLS_CERT_)/.test(code);
}
/** A connection closed under the request: it may or may not have been processed. */
const RESET = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);
/** Statuses from a proxy whose upstream is down, or a replica not ready: try another. */
const GATEWAY = new Set([502, 503, 504]);

interface Failure {
  code: string;
  message: string;
}

const DEFAULT_HINT = "it must chain to the CA root this client trusts — pass --ca-file or set TCA_CA_FILE";

/** Why a certificate that did not verify was refused, in one line, with what to do about it. */
function certificateRefused(code: string, reason: string, hint: string): Failure {
  const what =
    code === "ERR_TLS_CERT_ALTNAME_INVALID"
      ? "it must name the host in the coordinator's URL"
      : code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID"
        ? "it is outside its validity period (check this machine's clock, or renew the certificate)"
        : hint;
  return {
    code: "CERTIFICATE_REFUSED",
    message: `the coordinator's TLS certificate was refused (${code}${reason ? `: ${reason}` : ""}): ${what}`,
  };
}

/** Finds the system error code and a readable cause in what fetch (undici) threw. */
function failureOf(e: unknown, timeoutMs: number, hint = DEFAULT_HINT): Failure {
  const err = e as Error & { cause?: unknown };
  if (err?.name === "TimeoutError")
    return { code: "TIMEOUT", message: `timed out: no answer within ${timeoutMs / 1000} s` };
  if (err?.name === "AbortError") return { code: "ABORTED", message: "aborted" };
  const cause = err?.cause as
    (Error & { code?: string; errors?: { code?: string; message?: string }[] }) | undefined;
  // fetch refuses the ports of its "bad port" list (Fetch Standard §2.9; 1, 25, 6000, …) before it
  // connects: nothing was sent.
  if (!cause?.code && cause?.message === "bad port")
    return {
      code: "BAD_PORT",
      message:
        'fetch refuses to connect to this port (a blocked "bad port"): run the coordinator on another port',
    };
  // Several addresses for one name (happy eyeballs) fail together as an AggregateError.
  const code = cause?.code ?? cause?.errors?.[0]?.code ?? "";
  if (isCertificateRefusal(code)) return certificateRefused(code, oneLine(cause?.message ?? ""), hint);
  const message = cause?.message || cause?.errors?.[0]?.message || code || err?.message || String(e);
  return { code, message: CAUSES[code] ? `${CAUSES[code]} (${code})` : message };
}

/** The usual reasons nothing answered, in words (the system code follows in brackets). */
const CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused: nothing listens there",
  ENOTFOUND: "host name not found by DNS",
  EAI_AGAIN: "DNS lookup of the host name failed for now",
  EAI_NONAME: "host name not found by DNS",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EADDRNOTAVAIL: "address not available",
  ECONNRESET: "connection reset",
  UND_ERR_CONNECT_TIMEOUT: "timed out connecting",
};

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function problemOf(text: string): { code?: string; detail?: string } {
  try {
    const p = JSON.parse(text) as { code?: unknown; detail?: unknown };
    return {
      ...(typeof p.code === "string" && p.code ? { code: p.code } : {}),
      ...(typeof p.detail === "string" && p.detail ? { detail: p.detail } : {}),
    };
  } catch {
    return {};
  }
}

type Attempt =
  { ok: true; answer: HttpAnswer } | { ok: false; failure: Failure; sent: boolean; aborted: boolean };

/** How long an http:// URL stays on plain HTTP after a TLS probe found no TLS there. */
const UPGRADE_PROBE_INTERVAL_MS = 5_000;

export class HttpClient {
  readonly urls: readonly string[];
  #current = 0;
  readonly #dispatcher: Agent | undefined;
  readonly #tls: TlsOptions;
  /** http:// base URLs whose coordinator served a verified certificate: used as https:// from then on. */
  readonly #upgraded = new Set<string>();
  /** http:// base URL → when to probe it for TLS again. */
  readonly #probeAfter = new Map<string, number>();

  /**
   * `urls`: one or more base URLs (comma-separated lists allowed); throws BaseUrlError. With
   * `spread`, the first URL tried is picked at random: long-running clients (custodian agents)
   * then spread over the replicas instead of all sticking to the first one.
   */
  constructor(urls: string | readonly string[], o: { spread?: boolean; tls?: TlsOptions } = {}) {
    this.urls = parseBaseUrls(urls);
    if (o.spread) this.#current = Math.floor(Math.random() * this.urls.length);
    this.#tls = o.tls ?? {};
    if (this.#tls.upgrade && !this.#tls.ca)
      throw new BaseUrlError("upgrading to TLS needs the CA root to verify against");
    this.#dispatcher = this.#tls.ca ? new Agent({ connect: { ca: this.#tls.ca } }) : undefined;
  }

  /** Whether requests to this base URL now go over TLS (an https:// URL, or an upgraded http:// one). */
  usesTls(base: string = this.baseUrl): boolean {
    return base.startsWith("https:") || this.#upgraded.has(base);
  }

  /** The base URL tried first: the last one that answered. */
  get baseUrl(): string {
    return this.urls[this.#current]!;
  }

  /** Sends a request and parses the JSON answer with `schema`. */
  async json<T>(method: string, path: string, schema: z.ZodType<T>, o: RequestOptions = {}): Promise<T> {
    const a = await this.request(method, path, o);
    let json: unknown;
    try {
      json = a.text === "" ? undefined : JSON.parse(a.text);
    } catch {
      json = undefined;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success)
      throw new HttpError("malformed", `coordinator sent an unexpected answer to ${method} ${path}`, {
        method,
        path,
        url: a.url,
        tried: [a.url],
        status: a.status,
      });
    return parsed.data;
  }

  /** Sends a request and returns the answer's body as text (PEM). */
  async text(method: string, path: string, o: RequestOptions = {}): Promise<string> {
    return (await this.request(method, path, o)).text;
  }

  /** Sends a request, failing over as the file's header describes; resolves only on a 2xx answer. */
  async request(method: string, path: string, o: RequestOptions = {}): Promise<HttpAnswer> {
    const idempotent = o.idempotent ?? (method === "GET" || method === "HEAD");
    const n = this.urls.length;
    const start = this.#current;
    const tried: string[] = [];
    let gateway: HttpAnswer | undefined;
    let last: Failure | undefined;
    for (let i = 0; i < n; i++) {
      const index = (start + i) % n;
      const url = this.urls[index]!;
      tried.push(url);
      const at = await this.#attempt(url, method, path, o, idempotent);
      if (at.ok) {
        const a = at.answer;
        if (a.status >= 200 && a.status < 300) {
          this.#current = index;
          return a;
        }
        const err = statusError(method, path, a, tried);
        if (!GATEWAY.has(a.status)) {
          this.#current = index; // it answered: a coordinator is there
          throw err;
        }
        // A proxy may have passed it on before answering 502/503/504: only idempotent requests move on.
        if (!idempotent) throw withMaybeProcessed(err);
        gateway = a;
        continue;
      }
      const info = { method, path, url, tried: [...tried], failure: at.failure.code };
      if (at.aborted) throw new HttpError("unreachable", this.#unreachableMessage(tried, at.failure), info);
      // A refused certificate is what the user must hear about, even if a later URL was merely down.
      if (last?.code !== "CERTIFICATE_REFUSED") last = at.failure;
      if (!idempotent && at.sent)
        throw new HttpError(
          "unreachable",
          `${this.#unreachableMessage(tried, at.failure)}; the request was sent and may have been processed, so it was not sent to another coordinator`,
          { ...info, maybeProcessed: true },
        );
    }
    if (gateway) throw statusError(method, path, gateway, tried);
    throw new HttpError("unreachable", this.#unreachableMessage(tried, last!), {
      method,
      path,
      url: tried[tried.length - 1]!,
      tried,
      failure: last!.code,
    });
  }

  async #attempt(
    base: string,
    method: string,
    path: string,
    o: RequestOptions,
    idempotent: boolean,
  ): Promise<Attempt> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    const hint = this.#tls.hint ?? DEFAULT_HINT;
    let target: string;
    try {
      target = await this.#effectiveBase(base);
    } catch (e) {
      return { ok: false, failure: failureOf(e, timeoutMs, hint), sent: false, aborted: false };
    }
    let movedToTls = false;
    for (let retry = 0; ; retry++) {
      let sent = false;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        const url = new URL(path, target);
        const res = await undiciFetch(url, {
          method,
          headers: {
            accept: o.accept ?? "application/json, application/problem+json",
            ...(o.body === undefined ? {} : { "content-type": "application/json" }),
            ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
            ...(o.headers ? o.headers(method, url) : {}),
          },
          body: o.body === undefined ? undefined : JSON.stringify(o.body),
          signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
          ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
        });
        sent = true;
        const text = await res.text();
        // The coordinator serves TLS now and refused this plain-HTTP request without acting on it:
        // probe at once; a verified certificate moves this URL to https:// and the request goes
        // once more, there. Anything else fails closed (the 403, or the refused certificate).
        if (
          res.status === 403 &&
          !movedToTls &&
          this.#tls.upgrade &&
          target === base &&
          base.startsWith("http:") &&
          problemOf(text).code === "HTTPS_REQUIRED"
        ) {
          const outcome = await probeTls(new URL(base), this.#tls.ca!);
          if (outcome === "verified") {
            this.#upgraded.add(base);
            target = base.replace(/^http:/, "https:");
            movedToTls = true;
            retry = -1;
            continue;
          }
          if (outcome !== "no-tls")
            return { ok: false, failure: failureOf(outcome, timeoutMs, hint), sent: false, aborted: false };
        }
        return {
          ok: true,
          answer: { status: res.status, url: base, contentType: res.headers.get("content-type") ?? "", text },
        };
      } catch (e) {
        const failure = failureOf(e, timeoutMs, hint);
        if (o.signal?.aborted) return { ok: false, failure, sent: true, aborted: true };
        // A kept-alive connection the server closed just as this request went out: send it once
        // more on a fresh connection, if sending twice is harmless.
        if (!sent && idempotent && retry === 0 && RESET.has(failure.code)) continue;
        return { ok: false, failure, sent: sent || !NOT_SENT.has(failure.code), aborted: false };
      }
    }
  }

  /** Names the URLs tried as they were reached: an upgraded http:// URL by its https:// twin. */
  #unreachableMessage(tried: readonly string[], f: Failure): string {
    const shown = tried.map((u) => (this.#upgraded.has(u) ? u.replace(/^http:/, "https:") : u)).join(", ");
    if (f.code === "CERTIFICATE_REFUSED") return `${f.message} (tried ${shown})`;
    // One line, one form for every command: the URLs, the cause, and what to check.
    const check =
      f.code === "BAD_PORT" ? "" : "; check that it runs and the URL (--coordinator or $TCA_COORDINATOR)";
    return `cannot reach the coordinator (tried ${shown}): ${f.message}${check}`;
  }

  /**
   * The URL to send to for `base`: itself, or its https:// twin once upgraded. While not upgraded, a
   * TLS handshake is tried every few seconds: a verified certificate upgrades for good; no TLS at
   * all (reset, not a TLS answer) keeps plain HTTP for now; a certificate that does not verify is
   * refused (an error, nothing sent) — never a reason to stay on plain HTTP.
   */
  async #effectiveBase(base: string): Promise<string> {
    if (!this.#tls.upgrade || !base.startsWith("http:")) return base;
    const https = base.replace(/^http:/, "https:");
    if (this.#upgraded.has(base)) return https;
    if (Date.now() < (this.#probeAfter.get(base) ?? 0)) return base;
    const outcome = await probeTls(new URL(base), this.#tls.ca!);
    if (outcome === "verified") {
      this.#upgraded.add(base);
      return https;
    }
    if (outcome !== "no-tls") throw outcome;
    this.#probeAfter.set(base, Date.now() + (this.#tls.probeIntervalMs ?? UPGRADE_PROBE_INTERVAL_MS));
    return base;
  }
}

/** One TLS handshake to `url`'s host and port, verified against `ca`. */
function probeTls(url: URL, ca: string): Promise<"verified" | "no-tls" | Error> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 80);
  const isIp = /^[\d.]+$|:/.test(host);
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, ca, ...(isIp ? {} : { servername: host }), timeout: 5_000 });
    const done = (r: "verified" | "no-tls" | Error) => {
      socket.destroy();
      resolve(r);
    };
    socket.once("secureConnect", () => done("verified"));
    socket.once("timeout", () => done("no-tls"));
    socket.once("error", (e: Error & { code?: string }) => {
      if (e.code && isCertificateRefusal(e.code)) done(Object.assign(new Error("TLS"), { cause: e }));
      else done("no-tls");
    });
  });
}

function statusError(method: string, path: string, a: HttpAnswer, tried: readonly string[]): HttpError {
  const p = problemOf(a.text);
  const what = p.detail ?? a.text.slice(0, 200);
  return new HttpError(
    "status",
    `coordinator answered ${a.status} to ${method} ${path}${what ? `: ${what}` : ""}`,
    {
      method,
      path,
      url: a.url,
      tried: [...tried],
      status: a.status,
      ...p,
    },
  );
}

function withMaybeProcessed(e: HttpError): HttpError {
  return new HttpError(
    "status",
    `${e.message} (the request may have been processed, so it was not sent to another coordinator)`,
    { ...e.info, maybeProcessed: true },
  );
}

/**
 * Why a bearer token must not go to these URLs, or undefined: an http:// URL that is not loopback
 * would carry the token in clear (docs/tls.md). `TCA_ALLOW_PLAIN_HTTP=1` allows it on a network the
 * operator trusts; loopback (localhost, 127.0.0.0/8, ::1) never leaves the host.
 */
export function plainHttpTokenProblem(
  urls: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (env.TCA_ALLOW_PLAIN_HTTP === "1") return undefined;
  for (const u of urls) {
    const url = new URL(u);
    if (url.protocol !== "http:") continue;
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) continue;
    return (
      `refusing to send the token in clear to ${u}: use its https:// URL ` +
      `(or run this on the coordinator's host over http://127.0.0.1, or set TCA_ALLOW_PLAIN_HTTP=1 on a network you trust)`
    );
  }
  return undefined;
}
