// The console's session (docs/console.md, "Logging in"): the cookie holds the token itself, and
// every page checks it exactly as the API checks a bearer token (the coordinator's Readers), so
// the rules are the API's and a token removed from ca-config stops working at once, on every
// replica, without any session state. HttpOnly: no script reads it; SameSite=Strict: never sent
// cross-site. Over plain HTTP it is `tca_console` with Path=/ui (the console's pages only); over TLS
// it is `__Host-tca_console` (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain), which no other
// host and no plain-HTTP origin can set, so it cannot be tossed or overwritten from a sibling.
// Path=/ sends it to the API too, which reads only the Authorization header (src/coordinator/http/
// auth.ts); the rate limiter reads it under /ui/ only (src/coordinator/http/limits.ts).
import type { Request, Response } from "express";
import { CoordinatorError } from "../coordinator/errors.ts";
import type { Reader, Readers } from "../coordinator/http/auth.ts";

export const COOKIE = "tca_console";
/** The cookie's name over TLS. */
export const HOST_COOKIE = "__Host-tca_console";
/**
 * The console's route prefixes: a cookie of the same name set by someone else (another port on the
 * same host, docs/console.md "Cookie tossing") with a longer Path would be sent first.
 */
const ROUTE_PREFIXES = [
  "/ui/assets",
  "/ui/login",
  "/ui/logout",
  "/ui/certificates",
  "/ui/requests",
  "/ui/custodians",
  "/ui/crl",
  "/ui/audit",
  "/ui/charts",
] as const;
/** A browser forgets the session after this long even if it is never closed. */
export const SESSION_SECONDS = 8 * 3600;
/** What a bearer token may look like (src/coordinator/http/auth.ts bearerToken). */
const TOKEN = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/** A console reader: admins see everything, requesters their own (never custodians: they sign reads). */
export type ConsoleReader = Extract<Reader, { kind: "admin" | "requester" }>;

/** Every value of cookie `name` in the Cookie header, in the order sent (RFC 6265 §5.4). */
export function cookieValues(req: Request, name: string): string[] {
  const header = req.get("cookie");
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) out.push(part.slice(i + 1).trim());
  }
  return out;
}

/** The session cookie's name for this request: `__Host-` over TLS. */
export function cookieName(req: Request): string {
  return req.secure ? HOST_COOKIE : COOKIE;
}

/**
 * The session's token: undefined without a cookie, and `tossed` when more than one cookie of the
 * name came. A browser sends both when another origin on this host (cookies ignore ports, RFC 6265
 * §8.5) set one with a longer Path; which one is ours cannot be told, so neither counts.
 */
export function sessionToken(req: Request): { token?: string; tossed: boolean } {
  const values = cookieValues(req, cookieName(req));
  if (values.length > 1) return { tossed: true };
  return values[0] !== undefined ? { token: values[0], tossed: false } : { tossed: false };
}

export function isTokenShaped(token: string): boolean {
  return TOKEN.test(token);
}

/**
 * Who a token belongs to, by the API's own rules: it is handed to Readers as the Authorization
 * header this request would carry, so the same comparison (every entry, constant time) decides.
 * A wrong token is a 401; a custodian cannot come this way (the header is always a Bearer one).
 */
export async function readerOfToken(readers: Readers, req: Request, token: string): Promise<ConsoleReader> {
  if (!isTokenShaped(token)) throw new CoordinatorError("UNAUTHORIZED", "the token is not valid");
  req.headers.authorization = `Bearer ${token}`;
  try {
    const r = await readers.require(req, ["admin", "requester"], "the console");
    return r as ConsoleReader;
  } finally {
    delete req.headers.authorization;
  }
}

export function setSession(req: Request, res: Response, token: string): void {
  res.cookie(cookieName(req), token, {
    httpOnly: true,
    sameSite: "strict",
    secure: req.secure,
    path: req.secure ? "/" : "/ui",
    maxAge: SESSION_SECONDS * 1000,
    encode: (v) => v, // already cookie-safe (TOKEN): stored as is
  });
}

export function clearSession(req: Request, res: Response): void {
  res.clearCookie(cookieName(req), {
    httpOnly: true,
    sameSite: "strict",
    secure: req.secure,
    path: req.secure ? "/" : "/ui",
  });
}

/**
 * Clears the cookie at every Path a browser could have sent it with on this request (each ancestor
 * of the path, with and without its trailing slash) and at each console route prefix, both
 * host-only and with Domain set to this host: a tossed cookie is cleared wherever it was set from
 * this host. One set with Domain of a parent domain cannot be named from here (docs/console.md).
 */
export function clearEverySession(req: Request, res: Response): void {
  // A __Host- cookie has Path=/ and no Domain, always (a browser refuses any other): one place.
  if (cookieName(req) === HOST_COOKIE) return clearSession(req, res);
  const paths = new Set<string>(["/", "/ui", "/ui/", ...ROUTE_PREFIXES]);
  const segments = req.originalUrl.split("?")[0]!.split("/").filter(Boolean).slice(0, 8);
  for (let i = 1; i <= segments.length; i++) {
    const p = `/${segments.slice(0, i).join("/")}`;
    if (p.length <= 256 && /^[A-Za-z0-9/._~%-]+$/.test(p)) paths.add(p).add(`${p}/`);
  }
  const host = req.hostname;
  for (const path of paths) {
    const o = { httpOnly: true, sameSite: "strict" as const, secure: req.secure, path };
    res.clearCookie(COOKIE, o);
    if (host) res.clearCookie(COOKIE, { ...o, domain: host });
  }
}

/**
 * CSRF (docs/console.md, "CSRF"): the only POSTs are login and logout, and each must come from a page
 * of this origin. SameSite=Strict already keeps the cookie off cross-site requests; this check also
 * stops login CSRF (a form elsewhere logging the browser in as someone else). Browsers say where a
 * request comes from in Sec-Fetch-Site (Fetch Metadata); under Referrer-Policy: no-referrer they send
 * "Origin: null" on a form POST, so Origin decides only for a client without Fetch Metadata, and then
 * it must name this origin. Neither header: refused.
 */
export function sameOrigin(req: Request): boolean {
  const host = req.get("host");
  if (!host) return false;
  const self = `${req.protocol}://${host}`;
  const origin = req.get("origin");
  const site = req.get("sec-fetch-site");
  if (site !== undefined)
    return site === "same-origin" && (origin === undefined || origin === "null" || origin === self);
  return origin === self;
}
