// Small response helpers every ACME route uses (RFC 8555 §7): JSON objects with Location and Link
// headers; the Replay-Nonce and the directory's "index" link are added for every response by the
// router (router.ts).
import type { Response } from "express";

export interface SendOptions {
  /** Location header: the resource's URL (RFC 8555 §7.3, §7.4). */
  location?: string;
  /** Link headers, e.g. {url, rel: "up"} or {url, rel: "alternate"}. */
  links?: { url: string; rel: string }[];
  /** Retry-After, seconds (an order still processing, §7.4; a challenge being validated, §8.2). */
  retryAfter?: number;
}

function headers(res: Response, o: SendOptions): void {
  if (o.location) res.set("Location", o.location);
  for (const l of o.links ?? []) res.append("Link", `<${l.url}>;rel="${l.rel}"`);
  if (o.retryAfter !== undefined) res.set("Retry-After", String(o.retryAfter));
}

export function sendJson(res: Response, status: number, body: unknown, o: SendOptions = {}): void {
  headers(res, o);
  res.status(status).type("application/json").send(JSON.stringify(body));
}

/** RFC 8555 §7.4.2: the chain as application/pem-certificate-chain. */
export function sendPemChain(res: Response, pem: string, o: SendOptions = {}): void {
  headers(res, o);
  res.status(200).type("application/pem-certificate-chain").send(pem);
}
