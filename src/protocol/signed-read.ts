// A custodian's signed read (docs/security-model.md, "Who can read what"): the one definition of the
// `Authorization: TCA-Signed <token>` header, built by the custodian's client and checked by the
// coordinator. The token is `base64url(payload) "." base64url(signature)`, where payload is the
// canonical JSON of {v, sender, method, path, issuedAt, nonce} and the signature is Ed25519
// (RFC 8032) by the custodian's identity key over a domain prefix and the payload bytes.
// - method and path (pathname + query, as sent on the request line) bind it to one request;
// - issuedAt must lie within ±60 s of the verifier's clock;
// - the 128-bit random nonce lets the verifier accept it once (the coordinator records it in its
//   database, shared by every replica).
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../common/canonical-json.ts";
import { signEd25519, verifyEd25519 } from "../common/ed25519.ts";

export const SIGNED_READ_SCHEME = "TCA-Signed";
const DOMAIN = "tca/signed-read/v1\n";
/** How far issuedAt may be from the verifier's clock, either way. */
export const SIGNED_READ_SKEW_MS = 60_000;
/** Longest header accepted: a payload of a few hundred bytes and a 64-byte signature. */
const MAX_TOKEN = 4096;

export const SignedReadPayloadSchema = z
  .object({
    v: z.literal(1),
    sender: z.string().min(1).max(64),
    method: z.string().regex(/^[A-Z]{1,16}$/),
    path: z.string().startsWith("/").max(2048),
    issuedAt: z.string().datetime(),
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
  })
  .strict();
export type SignedReadPayload = z.infer<typeof SignedReadPayloadSchema>;

export interface ReadSigner {
  name: string;
  signingSecret: Uint8Array;
}

export type SignedReadRefusal =
  "MALFORMED" | "UNKNOWN_CUSTODIAN" | "BAD_SIGNATURE" | "WRONG_REQUEST" | "STALE";

export class SignedReadError extends Error {
  override readonly name = "SignedReadError";
  constructor(
    readonly reason: SignedReadRefusal,
    message: string,
  ) {
    super(message);
  }
}

const signedBytes = (payload: Uint8Array): Uint8Array => Buffer.concat([Buffer.from(DOMAIN), payload]);

/** The request target a signed read covers: pathname and query string, as on the request line. */
export const readTarget = (url: URL): string => url.pathname + url.search;

/** The Authorization header value for one request (`url` absolute, or a path with its query). */
export function signReadHeader(
  identity: ReadSigner,
  method: string,
  url: URL | string,
  now: number = Date.now(),
): string {
  const path = typeof url === "string" ? url : readTarget(url);
  const payload: SignedReadPayload = {
    v: 1,
    sender: identity.name,
    method: method.toUpperCase(),
    path,
    issuedAt: new Date(now).toISOString(),
    nonce: randomBytes(16).toString("hex"),
  };
  const bytes = Buffer.from(canonicalJson(payload));
  const sig = signEd25519(identity.signingSecret, signedBytes(bytes));
  return `${SIGNED_READ_SCHEME} ${bytes.toString("base64url")}.${Buffer.from(sig).toString("base64url")}`;
}

/** Whether an Authorization header claims to be a signed read (as opposed to a bearer token). */
export const isSignedRead = (header: string): boolean =>
  header.slice(0, SIGNED_READ_SCHEME.length + 1).toLowerCase() === `${SIGNED_READ_SCHEME.toLowerCase()} `;

export interface VerifyReadContext {
  method: string;
  /** The request target as received (pathname + query). */
  path: string;
  /** Roster name → base64url Ed25519 public key (src/protocol/envelope.ts rosterKeys). */
  roster: ReadonlyMap<string, string>;
  now: number;
}

/**
 * Checks a signed read: form, known sender, signature, method and path, freshness. Returns the
 * payload; the caller must still accept its (sender, nonce) only once. Throws SignedReadError.
 */
export function verifySignedRead(header: string, ctx: VerifyReadContext): SignedReadPayload {
  if (!isSignedRead(header) || header.length > SIGNED_READ_SCHEME.length + 1 + MAX_TOKEN)
    throw new SignedReadError("MALFORMED", `a signed read is "${SIGNED_READ_SCHEME} <payload>.<signature>"`);
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{86})$/.exec(
    header.slice(SIGNED_READ_SCHEME.length + 1).trim(),
  );
  if (!m) throw new SignedReadError("MALFORMED", "the signed read is not <payload>.<signature> in base64url");
  const bytes = Buffer.from(m[1]!, "base64url");
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new SignedReadError("MALFORMED", "the signed read's payload is not JSON");
  }
  const parsed = SignedReadPayloadSchema.safeParse(json);
  if (!parsed.success) throw new SignedReadError("MALFORMED", "the signed read's payload is malformed");
  const p = parsed.data;
  const key = ctx.roster.get(p.sender);
  if (!key)
    throw new SignedReadError(
      "UNKNOWN_CUSTODIAN",
      `${JSON.stringify(p.sender)} is not a custodian in the roster`,
    );
  if (!verifyEd25519(Buffer.from(m[2]!, "base64url"), signedBytes(bytes), Buffer.from(key, "base64url")))
    throw new SignedReadError(
      "BAD_SIGNATURE",
      `the signed read claiming to be from ${p.sender} has a bad signature`,
    );
  if (p.method !== ctx.method.toUpperCase() || p.path !== ctx.path)
    throw new SignedReadError(
      "WRONG_REQUEST",
      `the signed read from ${p.sender} is for ${p.method} ${p.path}, not this request`,
    );
  const skew = Date.parse(p.issuedAt) - ctx.now;
  if (Math.abs(skew) > SIGNED_READ_SKEW_MS)
    throw new SignedReadError(
      "STALE",
      `the signed read from ${p.sender} was issued ${Math.round(Math.abs(skew) / 1000)} s ${skew < 0 ? "ago" : "ahead of the coordinator's clock"} (allowed: ±${SIGNED_READ_SKEW_MS / 1000} s)`,
    );
  return p;
}
