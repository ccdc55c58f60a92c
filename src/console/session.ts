// The console's session (docs/console.md, "Logging in"): the cookie holds the token itself, and
// every page checks it exactly as the API checks a bearer token (the coordinator's Readers), so
// the rules are the API's and a token removed from ca-config stops working at once, on every
// replica, without any session state. HttpOnly: no script reads it; SameSite=Strict and Path=/ui:
// it goes only to the console's own pages, never cross-site and never to the API; Secure over TLS.
import type { Request, Response } from "express";
import { CoordinatorError } from "../coordinator/errors.ts";
import type { Reader, Readers } from "../coordinator/http/auth.ts";

export const COOKIE = "tca_console";
/** A browser forgets the session after this long even if it is never closed. */
export const SESSION_SECONDS = 8 * 3600;
/** What a bearer token may look like (src/coordinator/http/auth.ts bearerToken). */
const TOKEN = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/** A console reader: admins see everything, requesters their own (never custodians: they sign reads). */
export type ConsoleReader = Extract<Reader, { kind: "admin" | "requester" }>;

/** The value of cookie `name` in the Cookie header (RFC 6265 §5.4), or undefined. */
export function cookieValue(req: Request, name: string): string | undefined {
  const header = req.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
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
  res.cookie(COOKIE, token, {
    httpOnly: true,
    sameSite: "strict",
    secure: req.secure,
    path: "/ui",
    maxAge: SESSION_SECONDS * 1000,
    encode: (v) => v, // already cookie-safe (TOKEN): stored as is
  });
}

export function clearSession(req: Request, res: Response): void {
  res.clearCookie(COOKIE, { httpOnly: true, sameSite: "strict", secure: req.secure, path: "/ui" });
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
