// Who is asking: bearer tokens (admins, requesters) compared by SHA-256 hash (ca-config stores
// hashes, never tokens), and custodians' signed reads (src/protocol/signed-read.ts).
import { createHash, timingSafeEqual } from "node:crypto";
import type { Request } from "express";
import { CoordinatorError } from "../errors.ts";
import type { Store } from "../store/types.ts";
import {
  isSignedRead,
  SIGNED_READ_SCHEME,
  SIGNED_READ_SKEW_MS,
  SignedReadError,
  verifySignedRead,
} from "../../protocol/signed-read.ts";

export const tokenHash = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

/** The bearer token, "" when an Authorization header is present but unusable, undefined when absent. */
export function bearerToken(req: Request): string | undefined {
  const h = req.get("authorization");
  if (!h) return undefined;
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(h);
  return m?.[1] ?? "";
}

/** Returns the name of the entry whose token hash matches, or throws 401. */
export function authenticate(
  req: Request,
  entries: readonly { name: string; tokenSha256: string }[],
  what: string,
): string {
  const token = bearerToken(req);
  if (token === "") throw new CoordinatorError("UNAUTHORIZED", `the ${what} token is not valid`);
  if (token === undefined)
    throw new CoordinatorError(
      "UNAUTHORIZED",
      `${what} token required: send "Authorization: Bearer <token>"`,
    );
  const h = Buffer.from(tokenHash(token), "hex");
  const hit = entries.find((e) => timingSafeEqual(Buffer.from(e.tokenSha256, "hex"), h));
  if (!hit) throw new CoordinatorError("UNAUTHORIZED", `the ${what} token is not valid`);
  return hit.name;
}

// ---- who reads (docs/security-model.md, "Who can read what") ----

/** An authenticated reader: an admin token, a requester token, or a custodian's signed read. */
export type Reader =
  { kind: "admin"; name: string } | { kind: "requester"; name: string } | { kind: "custodian"; name: string };
export type ReaderKind = Reader["kind"];

export interface ReaderSources {
  admins: readonly { name: string; tokenSha256: string }[];
  requesters: readonly { name: string; tokenSha256: string }[];
  /** Custodian name → base64url Ed25519 identity key. */
  roster: ReadonlyMap<string, string>;
  nonces: Pick<Store, "acceptReadNonce" | "purgeReadNonces">;
  now: () => number;
}

/** Sent with every 401: the two schemes a reader can use (RFC 9110 §11.6.1). */
export const WWW_AUTHENTICATE = `Bearer realm="tca", ${SIGNED_READ_SCHEME} realm="tca"`;

function matchToken(
  token: string,
  entries: readonly { name: string; tokenSha256: string }[],
): string | undefined {
  const h = Buffer.from(tokenHash(token), "hex");
  let hit: string | undefined;
  // Every entry is compared, so the time taken does not say which one matched.
  for (const e of entries) if (timingSafeEqual(Buffer.from(e.tokenSha256, "hex"), h)) hit ??= e.name;
  return hit;
}

/**
 * Resolves who sends a request. Anonymous (no Authorization header) is `undefined`; credentials that
 * are present but wrong, stale or replayed are a 401, never read as anonymous.
 */
export class Readers {
  readonly #o: ReaderSources;
  #lastPurge = 0;

  constructor(o: ReaderSources) {
    this.#o = o;
  }

  async resolve(req: Request): Promise<Reader | undefined> {
    const h = req.get("authorization");
    if (h === undefined || h === "") return undefined;
    if (isSignedRead(h)) return this.#custodian(req, h);
    const token = bearerToken(req);
    if (!token)
      throw new CoordinatorError(
        "UNAUTHORIZED",
        `send "Authorization: Bearer <token>" (admin or requester) or a custodian's "${SIGNED_READ_SCHEME}" read`,
      );
    const admin = matchToken(token, this.#o.admins);
    if (admin !== undefined) return { kind: "admin", name: admin };
    const requester = matchToken(token, this.#o.requesters);
    if (requester !== undefined) return { kind: "requester", name: requester };
    throw new CoordinatorError("UNAUTHORIZED", "the token is not valid");
  }

  /** The reader if it is one of `kinds`: 401 for anonymous, 403 for a known reader without the right. */
  async require(req: Request, kinds: readonly ReaderKind[], what: string): Promise<Reader> {
    const r = await this.resolve(req);
    if (!r)
      throw new CoordinatorError(
        "UNAUTHORIZED",
        `reading ${what} needs credentials: ${kinds.map(describeKind).join(", or ")}`,
      );
    if (!kinds.includes(r.kind))
      throw new CoordinatorError("FORBIDDEN", `a ${r.kind} (${r.name}) may not read ${what}`);
    return r;
  }

  async #custodian(req: Request, header: string): Promise<Reader> {
    const now = this.#o.now();
    let p;
    try {
      p = verifySignedRead(header, {
        method: req.method,
        path: req.originalUrl,
        roster: this.#o.roster,
        now,
      });
    } catch (e) {
      if (e instanceof SignedReadError) throw new CoordinatorError("UNAUTHORIZED", e.message);
      throw e;
    }
    // Kept as long as the read could pass the freshness check, then purged.
    const expiresAt = new Date(Date.parse(p.issuedAt) + SIGNED_READ_SKEW_MS).toISOString();
    if (!(await this.#o.nonces.acceptReadNonce(p.sender, p.nonce, expiresAt)))
      throw new CoordinatorError("UNAUTHORIZED", "this signed read was already used");
    if (now - this.#lastPurge > SIGNED_READ_SKEW_MS) {
      this.#lastPurge = now;
      void this.#o.nonces
        .purgeReadNonces(new Date(now - SIGNED_READ_SKEW_MS).toISOString())
        .catch(() => undefined);
    }
    return { kind: "custodian", name: p.sender };
  }
}

function describeKind(k: ReaderKind): string {
  if (k === "custodian") return `a custodian's "${SIGNED_READ_SCHEME}" signed read`;
  return `an ${k === "admin" ? "admin" : "requester"} "Bearer" token`.replace("an requester", "a requester");
}
