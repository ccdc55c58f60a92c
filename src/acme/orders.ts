// Orders, authorizations and challenges (RFC 8555 §7.1.3–7.1.5, §7.4, §7.5, §8):
//   POST newOrder {identifiers, notAfter?, replaces?, profile?} → 201 the order (Location: its URL)
//   POST order (POST-as-GET)                                   → the order, status derived as below
//   POST account/{id}/orders (POST-as-GET)                     → {orders: [urls]}, 100 a page
//   POST authz (POST-as-GET, or {status: "deactivated"})       → the authorization
//   POST challenge ({} starts validation, or POST-as-GET)      → the challenge, Link rel="up"
// An account sees only its own resources. An order's status is derived when it is read: pending
// becomes ready once every authorization is valid, invalid once one is not or the order expired
// before finalize (and is stored so); after finalize it follows the tca request (issuance.ts).
import { checkReplaces } from "./cert-id.ts";
import type { Request, Response, Router, RequestHandler } from "express";
import { z } from "zod";
import type { Requester } from "../config/schema.ts";
import { clock } from "../coordinator/clock.ts";
import type {
  AccountRecord,
  AcmeContext,
  AcmePost,
  ChallengeToValidate,
  ValidationResult,
} from "./context.ts";
import { sendJson } from "./http.ts";
import {
  authorizationIdentifier,
  checkOrderIdentifiers,
  orderProfile,
  WILDCARD_PREFIX,
} from "./identifiers.ts";
import { issuanceState } from "./issuance.ts";
import { acmeUrls, ACME_ID, newAcmeId, ROUTES, type AcmeUrls } from "./paths.ts";
import { acmePost } from "./post.ts";
import { AcmeProblem, problemOf } from "./problems.ts";
import {
  AuthzUpdatePayloadSchema,
  NewOrderPayloadSchema,
  type AcmeAuthorizationObject,
  type AcmeAuthzStatus,
  type AcmeChallengeObject,
  type AcmeOrderObject,
  type AcmeProblemDocument,
  type Identifier,
} from "./protocol.ts";
import type { AcmeChallengeType } from "../protocol/origin.ts";
import {
  authorizationById,
  authorizationsOfOrder,
  challengeById,
  challengesOf,
  claimChallenge,
  finishChallenge,
  insertOrder,
  liveOrderCount,
  moveAuthorization,
  moveOrder,
  orderById,
  orderIdentifiers,
  ordersCreatedSince,
  ordersOfAccount,
  storedProblem,
  type AuthorizationRow,
  type ChallengeRow,
  type OrderCursor,
  type OrderRow,
} from "./store/orders.ts";
import { validateChallenge } from "./validation/index.ts";

const HOUR_MS = 3_600_000;
/** Orders an account may keep pending or ready at once: bounded storage per account. */
export const MAX_LIVE_ORDERS = 1_000;
/** Orders per page of an account's order list (RFC 8555 §7.1.2.1). */
export const ORDERS_PAGE_SIZE = 100;
/** A challenge processing longer than this many validation timeouts was left by a stopped replica. */
const STALE_VALIDATION_TIMEOUTS = 3;
/**
 * Background validations this process runs at once, for all accounts together: each makes outbound
 * lookups and connections, and many accounts must not make the server open thousands at a time.
 * A challenge POST that would start one more is refused with rateLimited and Retry-After (RFC 8555
 * §6.6) and its challenge stays pending, for the client to POST again: nothing waits in a queue
 * behind another account's validations, and nothing is claimed that this process cannot run.
 */
export const MAX_CONCURRENT_VALIDATIONS = 16;
let validationsRunning = 0;

/**
 * Takes one of the MAX_CONCURRENT_VALIDATIONS slots (synchronously, so two requests cannot both
 * take the last one) and returns its release, which frees it once; or throws rateLimited.
 */
function takeValidationSlot(ctx: AcmeContext): () => void {
  if (validationsRunning >= MAX_CONCURRENT_VALIDATIONS)
    throw new AcmeProblem(
      "rateLimited",
      `the server is running ${MAX_CONCURRENT_VALIDATIONS} validations already; the challenge stays pending: respond to it again shortly`,
      // A slot frees within one validation timeout.
      { retryAfter: Math.max(1, Math.ceil(ctx.options.validation.timeoutMs / 1000)) },
    );
  validationsRunning++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    validationsRunning--;
  };
}
/** RFC 9773 §4.1: an ARI CertID is base64url(AKI keyIdentifier) "." base64url(serial). */
const CERT_ID = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** RFC 8555 §7.1.4–7.1.5, §8.3–8.4, RFC 8738 §4: what proves control of each kind of identifier. */
function challengeTypesFor(identifier: Identifier, wildcard: boolean): AcmeChallengeType[] {
  if (identifier.type === "ip") return ["http-01", "tls-alpn-01"];
  // A wildcard is validated on its base name by DNS alone (RFC 8555 §7.1.3).
  return wildcard ? ["dns-01"] : ["http-01", "dns-01", "tls-alpn-01"];
}

const iso = (ms: number): string => new Date(ms).toISOString();

// ---- objects ----

/** The account's requester grant in ca-config (its profiles and names). */
function grantOf(ctx: AcmeContext, account: AccountRecord): Requester {
  const r = ctx.services.config.config.requesters.find((x) => x.name === account.requester);
  if (!r)
    throw new AcmeProblem(
      "unauthorized",
      `this account acts under requester ${account.requester}, which ca-config no longer has`,
    );
  return r;
}

/** An authorization's status now: a pending or valid one past its expiry is expired (§7.1.6). */
function authzStatusAt(a: AuthorizationRow, now: number): AcmeAuthzStatus {
  if ((a.status === "pending" || a.status === "valid") && Date.parse(a.expires_at) <= now) return "expired";
  return a.status;
}

/** Stores an expiry a read noticed (conditional: a concurrent change wins). */
async function persistExpiry(ctx: AcmeContext, a: AuthorizationRow, now: number): Promise<AuthorizationRow> {
  if (authzStatusAt(a, now) !== "expired" || a.status === "expired") return a;
  await moveAuthorization(ctx, a.id, ["pending", "valid"], { status: "expired" }, iso(now));
  return (await authorizationById(ctx, a.id)) ?? a;
}

function challengeObject(urls: AcmeUrls, c: ChallengeRow): AcmeChallengeObject {
  const error = storedProblem(c.error);
  return {
    type: c.type,
    url: urls.challenge(c.id),
    status: c.status,
    token: c.token,
    ...(c.status === "valid" && c.validated_at ? { validated: c.validated_at } : {}),
    ...(c.status === "invalid" && error ? { error } : {}),
  };
}

async function authorizationObject(
  ctx: AcmeContext,
  urls: AcmeUrls,
  stored: AuthorizationRow,
): Promise<AcmeAuthorizationObject> {
  const a = await persistExpiry(ctx, stored, clock.now());
  let challenges = await challengesOf(ctx, a.id);
  // §7.1.4: a valid authorization lists the challenge that validated it; an invalid one, the one
  // that failed.
  if (a.status === "valid" || a.status === "invalid")
    challenges = challenges.filter((c) => c.status === a.status);
  return {
    identifier: { type: a.identifier_type, value: a.identifier_value },
    status: a.status,
    expires: a.expires_at,
    challenges: challenges.map((c) => challengeObject(urls, c)),
    ...(a.wildcard ? { wildcard: true } : {}),
  };
}

/** The order row with this id, or undefined. */
export async function loadOrder(ctx: AcmeContext, id: string): Promise<OrderRow | undefined> {
  return orderById(ctx, id);
}

/** An order's authorizations in the order of its identifiers. */
async function orderedAuthorizations(ctx: AcmeContext, order: OrderRow): Promise<AuthorizationRow[]> {
  const key = (type: string, value: string) => `${type}:${value}`;
  const position = new Map(orderIdentifiers(order).map((id, i) => [key(id.type, id.value), i]));
  const at = (a: AuthorizationRow) =>
    position.get(key(a.identifier_type, (a.wildcard ? WILDCARD_PREFIX : "") + a.identifier_value)) ?? 0;
  return (await authorizationsOfOrder(ctx, order.id)).sort((a, b) => at(a) - at(b));
}

/** Why an order whose authorization is no longer usable is invalid (RFC 8555 §7.1.6). */
async function authorizationFailure(
  ctx: AcmeContext,
  a: AuthorizationRow,
  status: AcmeAuthzStatus,
): Promise<AcmeProblemDocument> {
  const identifier: Identifier = { type: a.identifier_type, value: a.identifier_value };
  const name = `${a.wildcard ? "*." : ""}${a.identifier_value}`;
  if (status === "invalid") {
    // The order carries the failed challenge's own error (what the client must fix).
    const failed = (await challengesOf(ctx, a.id)).find((c) => c.status === "invalid");
    const error = failed ? storedProblem(failed.error) : undefined;
    return error ?? problemOf("unauthorized", `the authorization for ${name} failed`, identifier);
  }
  return problemOf("unauthorized", `the authorization for ${name} is ${status}`, identifier);
}

/** What the stored (unfinalized) order is now: its status, and an error when invalid. */
async function derivedStatus(
  ctx: AcmeContext,
  order: OrderRow,
  authorizations: AuthorizationRow[],
  now: number,
): Promise<{ status: "pending" | "ready" | "invalid"; error?: AcmeProblemDocument }> {
  for (const a of authorizations) {
    const s = authzStatusAt(a, now);
    if (s !== "pending" && s !== "valid")
      return { status: "invalid", error: await authorizationFailure(ctx, a, s) };
  }
  if (Date.parse(order.expires_at) <= now)
    return {
      status: "invalid",
      error: problemOf(
        "unauthorized",
        `the order expired at ${order.expires_at} before it was finalized; create a new order`,
      ),
    };
  if (authorizations.every((a) => a.status === "valid")) return { status: "ready" };
  return { status: "pending" };
}

/**
 * The order object (RFC 8555 §7.1.3) as its account sees it now. Before finalize its status is
 * derived from its authorizations and expiry, and a change is stored; after finalize (request_id
 * set) it is the tca request's (issuance.ts), with the certificate URL once valid and Retry-After
 * while processing. Throws 404 for an unknown id; the caller checks the account (accountId).
 */
export async function renderOrder(
  ctx: AcmeContext,
  req: Request,
  orderId: string,
): Promise<{ body: AcmeOrderObject; retryAfter?: number; accountId: string }> {
  return orderObject(ctx, req, orderId, 1);
}

async function orderObject(
  ctx: AcmeContext,
  req: Request,
  orderId: string,
  rereads: number,
): Promise<{ body: AcmeOrderObject; retryAfter?: number; accountId: string }> {
  const urls = acmeUrls(ctx.baseUrl(req));
  const order = await orderById(ctx, orderId);
  if (!order) throw notFound("order");
  const authorizations = await orderedAuthorizations(ctx, order);
  let status: AcmeOrderObject["status"];
  let error: AcmeProblemDocument | undefined;
  let retryAfter: number | undefined;
  if (order.request_id !== null) {
    const s = await issuanceState(ctx, order.request_id);
    status = s.status;
    error = s.error;
    if (s.status === "processing") retryAfter = s.retryAfter;
  } else if (order.status === "pending" || order.status === "ready") {
    const now = clock.now();
    const d = await derivedStatus(ctx, order, authorizations, now);
    const moved =
      d.status === order.status ||
      (await moveOrder(ctx, order.id, ["pending", "ready"], d.status, iso(now), d.error));
    // Finalize took it first (it only moves forward): read it again.
    if (!moved && rereads > 0) return orderObject(ctx, req, orderId, rereads - 1);
    status = d.status;
    error = d.error;
  } else {
    status = order.status;
    error = storedProblem(order.error);
  }
  const body: AcmeOrderObject = {
    status,
    expires: order.expires_at,
    identifiers: orderIdentifiers(order),
    ...(order.not_before ? { notBefore: order.not_before } : {}),
    ...(order.not_after ? { notAfter: order.not_after } : {}),
    ...(status === "invalid" && error ? { error } : {}),
    authorizations: authorizations.map((a) => urls.authz(a.id)),
    finalize: urls.finalize(order.id),
    ...(status === "valid" ? { certificate: urls.certificate(order.id) } : {}),
    ...(order.replaces ? { replaces: order.replaces } : {}),
    profile: order.profile,
  };
  return { body, ...(retryAfter !== undefined ? { retryAfter } : {}), accountId: order.account_id };
}

// ---- requests ----

function notFound(what: string): AcmeProblem {
  return new AcmeProblem("malformed", `no such ${what}`, { status: 404 });
}

/** The :id of the route (checked by idShaped before any handler runs). */
function idParam(req: Request): string {
  const id: unknown = req.params.id;
  return typeof id === "string" ? id : "";
}

/** Any id that is not one of ours is not found, without a lookup (paths.ts ACME_ID). */
const idShaped: RequestHandler = (req, _res, next) => {
  next(ACME_ID.test(idParam(req)) ? undefined : notFound("ACME resource"));
};

function accountOf(post: AcmePost): AccountRecord {
  // acmePost with key "kid" always sets it; a missing one is a wiring error.
  if (!post.account) throw new AcmeProblem("serverInternal", "no account on a kid request");
  return post.account;
}

function postAsGet(post: AcmePost): void {
  if (post.payload !== null)
    throw new AcmeProblem(
      "malformed",
      "this resource is read with POST-as-GET: an empty payload (RFC 8555 §6.3)",
    );
}

function notYours(what: string): AcmeProblem {
  return new AcmeProblem("unauthorized", `this ${what} belongs to another account`);
}

const NewOrderPayload = NewOrderPayloadSchema.refine(
  (p) => p.replaces === undefined || CERT_ID.test(p.replaces),
  {
    message: "replaces is an ARI CertID: base64url(keyIdentifier).base64url(serial) (RFC 9773 §4.1)",
    path: ["replaces"],
  },
);

/** RFC 8555 §7.4: checks the order, then stores it with its authorizations and challenges at once. */
async function newOrder(ctx: AcmeContext, req: Request, res: Response, post: AcmePost): Promise<void> {
  const account = accountOf(post);
  const payload = NewOrderPayload.parse(post.payload);
  if (payload.notBefore !== undefined)
    throw new AcmeProblem(
      "malformed",
      "notBefore is not accepted: tca does not backdate or postdate; a certificate starts when it is issued",
    );
  const grant = grantOf(ctx, account);
  const profile = orderProfile(payload.profile, ctx.config, ctx.services.config.config.profiles, grant);
  const identifiers = checkOrderIdentifiers(payload.identifiers, {
    maxIdentifiers: ctx.config.maxIdentifiers,
    requester: grant,
    requesters: ctx.services.config.config.requesters,
    profile,
  });
  const now = clock.now();
  let notAfter: string | null = null;
  if (payload.notAfter !== undefined) {
    const at = Date.parse(payload.notAfter);
    // Finalize turns it into the certificate's lifetime from issuance (finalize.ts), within the profile's cap.
    if (at <= now) throw new AcmeProblem("malformed", `notAfter ${payload.notAfter} is not in the future`);
    if (at - now > profile.profile.maxValidityHours * HOUR_MS)
      throw new AcmeProblem(
        "malformed",
        `notAfter ${payload.notAfter} is more than profile "${profile.name}"'s ${profile.profile.maxValidityHours} hours away`,
      );
    notAfter = iso(at);
  }

  const created = iso(now);
  const expires = iso(now + ctx.config.orderLifetimeHours * HOUR_MS);
  const order: OrderRow = {
    id: newAcmeId(),
    account_id: account.id,
    status: "pending",
    identifiers: JSON.stringify(identifiers),
    profile: profile.name,
    not_before: null,
    not_after: notAfter,
    expires_at: expires,
    request_id: null,
    error: null,
    replaces: payload.replaces ?? null,
    created_at: created,
    updated_at: created,
  };
  const authorizations: AuthorizationRow[] = [];
  const challenges: ChallengeRow[] = [];
  for (const id of identifiers) {
    const { identifier, wildcard } = authorizationIdentifier(id);
    const authz: AuthorizationRow = {
      id: newAcmeId(),
      order_id: order.id,
      account_id: account.id,
      identifier_type: identifier.type,
      identifier_value: identifier.value,
      wildcard: wildcard ? 1 : 0,
      status: "pending",
      expires_at: expires,
      validated_at: null,
      created_at: created,
      updated_at: created,
    };
    authorizations.push(authz);
    for (const type of challengeTypesFor(identifier, wildcard))
      challenges.push({
        id: newAcmeId(),
        authz_id: authz.id,
        type,
        token: newAcmeId(),
        status: "pending",
        validated_at: null,
        error: null,
        created_at: created,
        updated_at: created,
      });
  }

  // The limits are counted under the write lock, with the insert: replicas cannot both pass them.
  await ctx.services.store.transaction(async () => {
    const window = await ordersCreatedSince(ctx, account.id, iso(now - HOUR_MS));
    if (window.count >= ctx.config.ordersPerHour) {
      const retryAfter = Math.max(
        1,
        Math.ceil((Date.parse(window.oldest ?? created) + HOUR_MS - now) / 1000),
      );
      throw new AcmeProblem(
        "rateLimited",
        `this account created ${window.count} orders in the last hour; at most ${ctx.config.ordersPerHour} are allowed`,
        { retryAfter },
      );
    }
    if ((await liveOrderCount(ctx, account.id, created)) >= MAX_LIVE_ORDERS)
      throw new AcmeProblem(
        "rateLimited",
        `this account has ${MAX_LIVE_ORDERS} orders pending or ready; finalize them or let them expire`,
        { retryAfter: 3600 },
      );
    // RFC 9773 §5: the certificate replaced must be this account's and not replaced already; checked
    // under the write lock so two orders cannot both replace it.
    if (payload.replaces !== undefined)
      order.replaces = await checkReplaces(ctx, account.id, payload.replaces, identifiers);
    await insertOrder(ctx, order, authorizations, challenges);
  });
  const urls = acmeUrls(ctx.baseUrl(req));
  const { body } = await renderOrder(ctx, req, order.id);
  sendJson(res, 201, body, { location: urls.order(order.id) });
}

async function readOrder(ctx: AcmeContext, req: Request, res: Response, post: AcmePost): Promise<void> {
  const account = accountOf(post);
  postAsGet(post);
  const id = idParam(req);
  const stored = await loadOrder(ctx, id);
  if (!stored) throw notFound("order");
  if (stored.account_id !== account.id) throw notYours("order");
  const { body, retryAfter } = await renderOrder(ctx, req, id);
  sendJson(res, 200, body, retryAfter !== undefined ? { retryAfter } : {});
}

/** The cursor of the account order list's next page: base64url of the last order's (created_at, id). */
const CursorSchema = z.object({ createdAt: z.string().datetime(), id: z.string().regex(ACME_ID) }).strict();

function encodeCursor(c: OrderCursor): string {
  return Buffer.from(JSON.stringify({ createdAt: c.createdAt, id: c.id })).toString("base64url");
}

function decodeCursor(text: unknown): OrderCursor | undefined {
  if (text === undefined) return undefined;
  try {
    if (typeof text !== "string" || text.length > 200) throw new Error("not a cursor");
    return CursorSchema.parse(JSON.parse(Buffer.from(text, "base64url").toString("utf8")));
  } catch {
    throw new AcmeProblem("malformed", "the cursor is not one this server handed out");
  }
}

/** RFC 8555 §7.1.2.1: the account's unexpired orders, newest first, paged with Link rel="next". */
async function listOrders(ctx: AcmeContext, req: Request, res: Response, post: AcmePost): Promise<void> {
  const account = accountOf(post);
  postAsGet(post);
  if (idParam(req) !== account.id) throw notYours("account's order list");
  const cursor = decodeCursor(req.query.cursor);
  const urls = acmeUrls(ctx.baseUrl(req));
  const rows = await ordersOfAccount(ctx, account.id, iso(clock.now()), ORDERS_PAGE_SIZE + 1, cursor);
  const page = rows.slice(0, ORDERS_PAGE_SIZE);
  const last = page.at(-1);
  const links =
    rows.length > ORDERS_PAGE_SIZE && last
      ? [
          {
            url: `${urls.accountOrders(account.id)}?cursor=${encodeCursor({ createdAt: last.created_at, id: last.id })}`,
            rel: "next",
          },
        ]
      : [];
  sendJson(res, 200, { orders: page.map((o) => urls.order(o.id)) }, { links });
}

/** The authorization with this id if it is this account's (404 / unauthorized otherwise). */
async function ownAuthorization(
  ctx: AcmeContext,
  id: string,
  account: AccountRecord,
): Promise<AuthorizationRow> {
  const a = await authorizationById(ctx, id);
  if (!a) throw notFound("authorization");
  if (a.account_id !== account.id) throw notYours("authorization");
  return a;
}

/** RFC 8555 §7.5 (POST-as-GET) and §7.5.2 (deactivation by the client). */
async function authorization(ctx: AcmeContext, req: Request, res: Response, post: AcmePost): Promise<void> {
  const account = accountOf(post);
  const urls = acmeUrls(ctx.baseUrl(req));
  let a = await ownAuthorization(ctx, idParam(req), account);
  if (post.payload !== null) {
    AuthzUpdatePayloadSchema.parse(post.payload);
    const now = clock.now();
    a = await persistExpiry(ctx, a, now);
    if (a.status !== "deactivated") {
      // §7.5.2: only a pending or valid authorization can be deactivated; its order is then invalid.
      if (!(await moveAuthorization(ctx, a.id, ["pending", "valid"], { status: "deactivated" }, iso(now))))
        throw new AcmeProblem(
          "malformed",
          `the authorization is ${a.status}; only a pending or valid one can be deactivated`,
        );
      a = (await authorizationById(ctx, a.id)) ?? a;
    }
  }
  sendJson(res, 200, await authorizationObject(ctx, urls, a));
}

/** The payload that asks the server to validate a challenge (§7.5.1): an object, normally `{}`. */
const ChallengeResponseSchema = z.object({}).loose();

/** RFC 8555 §7.5.1: `{}` starts validation of a pending challenge; POST-as-GET reads it. */
async function challenge(ctx: AcmeContext, req: Request, res: Response, post: AcmePost): Promise<void> {
  const account = accountOf(post);
  const urls = acmeUrls(ctx.baseUrl(req));
  let c = await challengeById(ctx, idParam(req));
  if (!c) throw notFound("challenge");
  const a = await persistExpiry(ctx, await ownAuthorization(ctx, c.authz_id, account), clock.now());
  if (post.payload !== null) {
    ChallengeResponseSchema.parse(post.payload);
    // A challenge of an authorization that is no longer pending is answered as it is (§7.5.1).
    const now = clock.now();
    const stale = iso(now - STALE_VALIDATION_TIMEOUTS * ctx.options.validation.timeoutMs);
    // Pending, or processing but left by a stopped replica: claimable. One processing now is
    // answered as it is, without a slot (the claim would fail anyway).
    const claimable = c.status === "pending" || (c.status === "processing" && c.updated_at < stale);
    if (a.status === "pending" && claimable) {
      const release = takeValidationSlot(ctx);
      let claimed = false;
      try {
        claimed = await claimChallenge(ctx, c.id, iso(now), stale);
      } finally {
        if (!claimed) release();
      }
      if (claimed) startValidation(ctx, c, a, account, release);
      c = (await challengeById(ctx, c.id)) ?? c;
    }
  }
  sendJson(res, 200, challengeObject(urls, c), { links: [{ url: urls.authz(a.id), rel: "up" }] });
}

/**
 * Validates a claimed challenge in the background and records the result: the challenge valid or
 * invalid with its problem, and its authorization likewise if still pending (its other challenges
 * untouched). The order follows on its next read. `release` frees its validation slot when done.
 */
function startValidation(
  ctx: AcmeContext,
  c: ChallengeRow,
  a: AuthorizationRow,
  account: AccountRecord,
  release: () => void,
): void {
  const identifier: Identifier = { type: a.identifier_type, value: a.identifier_value };
  const toValidate: ChallengeToValidate = {
    type: c.type,
    token: c.token,
    // RFC 8555 §8.1: token "." base64url(RFC 7638 thumbprint of the account key).
    keyAuthorization: `${c.token}.${account.thumbprint}`,
    identifier,
  };
  const run = async (): Promise<void> => {
    let result: ValidationResult;
    try {
      result = await validateChallenge(toValidate, ctx.options.validation);
    } catch (err) {
      ctx.log.error({ err, challenge: c.id }, "ACME: challenge validation threw");
      result = {
        ok: false,
        problem: new AcmeProblem(
          "serverInternal",
          "the validation failed inside the server; try a new order",
          {
            identifier,
          },
        ),
      };
    }
    const now = clock.now();
    // The authorization moves only while unexpired: one that expired during the validation stays
    // expired (RFC 8555 §7.1.6) rather than turn valid with a fresh expiry.
    await ctx.services.store.transaction(async () => {
      if (result.ok) {
        if (await finishChallenge(ctx, c.id, { status: "valid", validatedAt: iso(now) }, iso(now)))
          await moveAuthorization(
            ctx,
            a.id,
            ["pending"],
            {
              status: "valid",
              validated_at: iso(now),
              expires_at: iso(now + ctx.config.authorizationLifetimeHours * HOUR_MS),
            },
            iso(now),
            { unexpired: true },
          );
      } else if (
        await finishChallenge(ctx, c.id, { status: "invalid", error: result.problem.document() }, iso(now))
      )
        await moveAuthorization(ctx, a.id, ["pending"], { status: "invalid" }, iso(now), {
          unexpired: true,
        });
    });
    ctx.log.info(
      {
        account: account.id,
        identifier: `${identifier.type}:${a.wildcard ? "*." : ""}${identifier.value}`,
        challenge: c.type,
        ...(result.ok ? { ok: true } : { ok: false, problem: result.problem.document() }),
      },
      "ACME: challenge validated",
    );
  };
  void run()
    .catch((err: unknown) =>
      ctx.log.error({ err, challenge: c.id }, "ACME: cannot record a challenge's validation"),
    )
    .finally(release);
}

/** Adds the order, authorization and challenge routes (registering touches no service). */
export function registerOrderRoutes(r: Router, ctx: AcmeContext): void {
  const kid = (h: (ctx: AcmeContext, req: Request, res: Response, post: AcmePost) => Promise<void>) =>
    acmePost(ctx, { key: "kid" }, (req, res, post) => h(ctx, req, res, post));
  r.post(ROUTES.newOrder, kid(newOrder));
  r.post(ROUTES.order, idShaped, kid(readOrder));
  r.post(ROUTES.accountOrders, idShaped, kid(listOrders));
  r.post(ROUTES.authz, idShaped, kid(authorization));
  r.post(ROUTES.challenge, idShaped, kid(challenge));
}
