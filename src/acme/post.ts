// Every ACME POST (RFC 8555 §6.2–6.5) goes through acmePost: the content type, the flattened JWS, the
// protected header, the URL it was sent to, the signature, the account for `kid` requests, and the
// nonce, in an order where a bad request stores nothing: the nonce is spent (the only write) once
// the signature verified, before the handler writes anything.
import express, { type Request, type RequestHandler, type Response } from "express";
import type { AcmeContext, AcmePost } from "./context.ts";
import { AcmeProblem } from "./problems.ts";
import { accountIdOfKid, checkProtectedHeader, parseFlattenedJws, verifyJws } from "./jws.ts";
import { consumeNonce } from "./nonces.ts";
import { accountById } from "./store/accounts.ts";

/** Largest JWS body accepted: a finalize with a big RSA CSR fits with room to spare. */
export const ACME_BODY_LIMIT = "64kb";

const joseJson = express.json({ type: "application/jose+json", limit: ACME_BODY_LIMIT, strict: true });

/**
 * An express handler for a POST to an ACME resource. `key` says how the request must be signed:
 * `kid` (an existing, valid account, §6.2), `jwk` (newAccount), or `either` (revokeCert, §7.6).
 * Errors, the handler's included, go to next() and the router renders them as problem documents.
 */
export function acmePost(
  ctx: AcmeContext,
  o: { key: "kid" | "jwk" | "either" },
  handler: (req: Request, res: Response, post: AcmePost) => Promise<void>,
): RequestHandler {
  return (req, res, next) => {
    // RFC 8555 §6.2: the body is application/jose+json; anything else is 415.
    if (!req.is("application/jose+json")) {
      next(
        new AcmeProblem("malformed", "ACME requests are sent as Content-Type: application/jose+json", {
          status: 415,
        }),
      );
      return;
    }
    joseJson(req, res, (err?: unknown) => {
      if (err) {
        next(err);
        return;
      }
      verifiedPost(ctx, o.key, req)
        .then((post) => handler(req, res, post))
        .catch(next);
    });
  };
}

async function verifiedPost(
  ctx: AcmeContext,
  key: "kid" | "jwk" | "either",
  req: Request,
): Promise<AcmePost> {
  const jws = parseFlattenedJws(req.body);
  const header = checkProtectedHeader(jws);
  const base = ctx.baseUrl(req);
  // §6.4: the URL signed is the URL requested, so a request cannot be replayed to another resource.
  const requested = base + req.originalUrl;
  if (header.url !== requested)
    throw new AcmeProblem(
      "unauthorized",
      `the url in the protected header (${header.url}) is not the URL requested (${requested})`,
    );
  if (header.kid !== undefined && key === "jwk")
    throw new AcmeProblem("malformed", "this resource is requested with a jwk, not a kid (RFC 8555 §7.3)");
  if (header.jwk !== undefined && key === "kid")
    throw new AcmeProblem(
      "malformed",
      "this resource is requested with an account's kid, not a jwk (RFC 8555 §6.2)",
    );

  let account: AcmePost["account"];
  if (header.kid !== undefined) {
    const id = accountIdOfKid(base, header.kid);
    if (id === undefined)
      throw new AcmeProblem("accountDoesNotExist", "the kid is not an account URL of this server");
    account = await accountById(ctx, id);
    if (!account) throw new AcmeProblem("accountDoesNotExist", "no account has this URL");
  }
  const { payload } = await verifyJws(jws, header, account ? account.jwk : header.jwk!);
  // The only write a request makes before its handler runs: spending the nonce (§6.5).
  if (!(await consumeNonce(ctx, header.nonce ?? "")))
    throw new AcmeProblem(
      "badNonce",
      "the nonce is unknown, expired or already used; retry with the fresh one sent",
    );
  if (account && account.status !== "valid")
    throw new AcmeProblem("unauthorized", `the account is ${account.status} (RFC 8555 §7.3.6)`);
  // An account made by open registration acts only while ca-config still offers it, to that
  // requester: closing open registration locks out the accounts it let in (docs/acme.md).
  if (account && account.eabKeyId === null && ctx.config.openRegistration?.requester !== account.requester)
    throw new AcmeProblem(
      "unauthorized",
      `this account was registered without external account binding, which this CA no longer allows: register a new account with an EAB key (RFC 8555 §7.3.4)`,
    );
  return {
    url: header.url,
    payload,
    header: header.raw,
    ...(account ? { account } : {}),
    ...(header.jwk ? { jwk: header.jwk } : {}),
  };
}
