// The JWS every ACME POST carries (RFC 8555 §6.2): flattened JSON serialization only, one signature,
// everything in the protected header; the algorithms tca accepts; the header rules of §6.2–6.4. This
// file checks what can be checked without the database; post.ts adds the nonce and the account.
import {
  calculateJwkThumbprint,
  flattenedVerify,
  importJWK,
  type FlattenedJWSInput,
  type JWK,
  type ProtectedHeaderParameters,
} from "jose";
import { z } from "zod";
import type { AcmeProblemDocument } from "./protocol.ts";
import { AcmeProblem } from "./problems.ts";
import { ACME_ID, ACME_PREFIX } from "./paths.ts";

/** The signature algorithms accepted (RFC 8555 §6.2 asks for ES256 and EdDSA; RS256 for older clients). */
export const ACME_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256"] as const;
export type AcmeAlgorithm = (typeof ACME_ALGORITHMS)[number];
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/** badSignatureAlgorithm with the `algorithms` field RFC 8555 §6.2 asks for. */
export class BadSignatureAlgorithm extends AcmeProblem {
  constructor(detail: string) {
    super("badSignatureAlgorithm", detail);
  }
  override document(): AcmeProblemDocument {
    return { ...super.document(), algorithms: [...ACME_ALGORITHMS] };
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const b64url = z.string().regex(B64URL, "not base64url");

/** A flattened JWS JSON object and nothing else: no unprotected `header`, no `signatures` array. */
const FlattenedJwsSchema = z
  .object({ protected: b64url.min(1), payload: b64url, signature: b64url.min(1) })
  .strict();

export type FlattenedJws = z.infer<typeof FlattenedJwsSchema>;

/** A checked protected header: alg accepted, nonce and url present, exactly one of jwk and kid. */
export interface AcmeProtectedHeader {
  alg: AcmeAlgorithm;
  /** Always present in an outer JWS; a key change's inner JWS may omit it (§7.3.5). */
  nonce?: string;
  url: string;
  jwk?: JWK;
  kid?: string;
  raw: ProtectedHeaderParameters;
}

/** Parses a request body as a flattened JWS (§6.2); anything else is malformed. */
export function parseFlattenedJws(body: unknown): FlattenedJws {
  if (typeof body === "object" && body !== null && "signatures" in body)
    throw new AcmeProblem(
      "malformed",
      "only the flattened JWS JSON serialization is accepted (RFC 8555 §6.2)",
    );
  if (typeof body === "object" && body !== null && "header" in body)
    throw new AcmeProblem("malformed", "a JWS with an unprotected header is not accepted (RFC 8555 §6.2)");
  const r = FlattenedJwsSchema.safeParse(body);
  if (!r.success)
    throw new AcmeProblem(
      "malformed",
      "the body must be a flattened JWS: exactly protected, payload and signature, base64url (RFC 8555 §6.2)",
    );
  return r.data;
}

function decodeJsonObject(b64: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(b64, "base64url").toString("utf8"));
  } catch {
    throw new AcmeProblem("malformed", `the JWS ${what} is not base64url-encoded JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new AcmeProblem("malformed", `the JWS ${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Fields a private JWK has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2): never in an ACME request. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * Checks that a public JWK fits the algorithm and tca's minimums: P-256 for ES256, P-384 for ES384,
 * Ed25519 for EdDSA, RSA of at least 2048 bits for RS256. Throws badPublicKey otherwise.
 */
export function checkPublicJwk(alg: AcmeAlgorithm, jwk: unknown): JWK {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk))
    throw new AcmeProblem("malformed", "the jwk header parameter is not a JSON object");
  const k = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in k))
    throw new AcmeProblem("badPublicKey", "the jwk carries private key material; send the public key only");
  const str = (name: string): string => {
    const v = k[name];
    if (typeof v !== "string" || !B64URL.test(v) || v === "")
      throw new AcmeProblem("badPublicKey", `the jwk's ${name} is missing or not base64url`);
    return v;
  };
  const want: Record<AcmeAlgorithm, { kty: string; crv?: string }> = {
    ES256: { kty: "EC", crv: "P-256" },
    ES384: { kty: "EC", crv: "P-384" },
    EdDSA: { kty: "OKP", crv: "Ed25519" },
    RS256: { kty: "RSA" },
  };
  const w = want[alg];
  if (k.kty !== w.kty || (w.crv !== undefined && k.crv !== w.crv))
    throw new AcmeProblem(
      "badPublicKey",
      `alg ${alg} needs a ${w.kty}${w.crv ? ` ${w.crv}` : ""} key, not ${String(k.kty)}${k.crv ? ` ${String(k.crv)}` : ""}`,
    );
  // One encoding per key (RFC 7518 §6.2.1, §6.3.1.1; RFC 8037 §2): coordinates of exactly the curve's
  // size, a modulus without leading zero octets. Otherwise one key would have several thumbprints, so
  // several accounts, and a key change could move onto a key another account holds.
  const octets = (name: string, size: number): string => {
    const v = str(name);
    if (Buffer.from(v, "base64url").length !== size)
      throw new AcmeProblem("badPublicKey", `the jwk's ${name} must be exactly ${size} octets`);
    return v;
  };
  const size: Record<string, number> = { "P-256": 32, "P-384": 48, Ed25519: 32 };
  if (w.kty === "EC")
    return { kty: "EC", crv: w.crv!, x: octets("x", size[w.crv!]!), y: octets("y", size[w.crv!]!) };
  if (w.kty === "OKP") return { kty: "OKP", crv: w.crv!, x: octets("x", size[w.crv!]!) };
  const n = Buffer.from(str("n"), "base64url");
  if (n[0] === 0)
    throw new AcmeProblem("badPublicKey", "the jwk's n has leading zero octets (RFC 7518 §6.3.1.1)");
  const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS)
    throw new AcmeProblem(
      "badPublicKey",
      `RSA keys need ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits; this one has ${bits}`,
    );
  // e = 65537 only, as public ACME CAs require: e = 1 makes signatures forgeable, and a huge e makes
  // each verification cost a stranger's request hundreds of times more CPU.
  if (str("e") !== "AQAB")
    throw new AcmeProblem("badPublicKey", "RSA keys must have the public exponent 65537 (e = AQAB)");
  return { kty: "RSA", n: str("n"), e: "AQAB" };
}

/**
 * Reads and checks the protected header (RFC 8555 §6.2, §6.4, §6.5). No I/O. `inner`: a key change's
 * inner JWS (§7.3.5), whose nonce may be absent and is not checked.
 */
export function checkProtectedHeader(jws: FlattenedJws, o: { inner?: boolean } = {}): AcmeProtectedHeader {
  const h = decodeJsonObject(jws.protected, "protected header");
  const alg = h.alg;
  if (typeof alg !== "string" || !(ACME_ALGORITHMS as readonly string[]).includes(alg))
    throw new BadSignatureAlgorithm(
      `alg ${typeof alg === "string" ? alg : "(missing)"} is not accepted; use one of ${ACME_ALGORITHMS.join(", ")}`,
    );
  if ("crit" in h || "b64" in h)
    throw new AcmeProblem("malformed", "crit and b64 are not accepted in an ACME JWS (RFC 8555 §6.2)");
  if (!o.inner && (typeof h.nonce !== "string" || h.nonce === ""))
    throw new AcmeProblem("badNonce", "the protected header has no nonce (RFC 8555 §6.5)");
  if (typeof h.url !== "string" || h.url === "")
    throw new AcmeProblem("malformed", "the protected header has no url (RFC 8555 §6.4)");
  const hasJwk = "jwk" in h;
  const hasKid = "kid" in h;
  if (hasJwk === hasKid)
    throw new AcmeProblem(
      "malformed",
      "the protected header must have exactly one of jwk and kid (RFC 8555 §6.2)",
    );
  const out: AcmeProtectedHeader = {
    alg: alg as AcmeAlgorithm,
    ...(typeof h.nonce === "string" ? { nonce: h.nonce } : {}),
    url: h.url,
    raw: h as ProtectedHeaderParameters,
  };
  if (hasJwk) out.jwk = checkPublicJwk(out.alg, h.jwk);
  else {
    if (typeof h.kid !== "string") throw new AcmeProblem("malformed", "kid must be a string, an account URL");
    out.kid = h.kid;
  }
  return out;
}

/** The account id in a kid, if the kid is an account URL of this server (`base` = its base URL). */
export function accountIdOfKid(base: string, kid: string): string | undefined {
  const prefix = `${base}${ACME_PREFIX}/account/`;
  if (!kid.startsWith(prefix)) return undefined;
  const id = kid.slice(prefix.length);
  return ACME_ID.test(id) ? id : undefined;
}

/**
 * Verifies the signature with `jwk` (the header's, or the account's for a kid request) and returns
 * the payload: null for POST-as-GET (an empty payload, §6.3), else a JSON object.
 */
export async function verifyJws(
  jws: FlattenedJws,
  header: AcmeProtectedHeader,
  jwk: JWK,
): Promise<{ payload: Record<string, unknown> | null }> {
  const key = await importJWK(checkPublicJwk(header.alg, jwk), header.alg).catch(() => {
    throw new AcmeProblem("badPublicKey", "the key cannot be used with this algorithm");
  });
  try {
    await flattenedVerify(jws as FlattenedJWSInput, key, { algorithms: [header.alg] });
  } catch {
    throw new AcmeProblem("malformed", "the JWS signature does not verify");
  }
  if (jws.payload === "") return { payload: null };
  return { payload: decodeJsonObject(jws.payload, "payload") };
}

/** RFC 7638 SHA-256 thumbprint, base64url: what identifies an account key. */
export function thumbprintOf(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, "sha256");
}
