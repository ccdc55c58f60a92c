// Bearer tokens are compared by SHA-256 hash: ca-config stores hashes, never tokens.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Request } from "express";
import { CoordinatorError } from "../errors.ts";

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
