// Orders, authorizations and challenges in acme_orders, acme_authorizations and acme_challenges
// (RFC 8555 §7.1.3–7.1.5). Status changes are conditional updates (`where status = …`): of two
// requests or replicas racing to move the same row, exactly one does, and a row finalize has moved
// on (request_id set) is never moved back by a read.
import { z } from "zod";
import type { AcmeContext } from "../context.ts";
import {
  ProblemSchema,
  type AcmeProblemDocument,
  type AcmeStoredOrderStatus,
  type Identifier,
} from "../protocol.ts";
import type { AcmeAuthorizationTable, AcmeChallengeTable, AcmeOrderTable } from "./schema.ts";

export type OrderRow = AcmeOrderTable;
export type AuthorizationRow = AcmeAuthorizationTable;
export type ChallengeRow = AcmeChallengeTable;

const StoredIdentifiersSchema = z.array(
  z.object({ type: z.enum(["dns", "ip"]), value: z.string().min(1) }).strict(),
);

/** The identifiers column, parsed. */
export function orderIdentifiers(row: OrderRow): Identifier[] {
  return StoredIdentifiersSchema.parse(JSON.parse(row.identifiers));
}

/** An error column (JSON problem document), parsed; undefined when empty. */
export function storedProblem(text: string | null): AcmeProblemDocument | undefined {
  return text === null ? undefined : ProblemSchema.parse(JSON.parse(text));
}

/** A new order with its authorizations and their challenges: call inside store.transaction(). */
export async function insertOrder(
  ctx: AcmeContext,
  order: OrderRow,
  authorizations: AuthorizationRow[],
  challenges: ChallengeRow[],
): Promise<void> {
  const db = ctx.db();
  await db.insertInto("acme_orders").values(order).execute();
  if (authorizations.length > 0) await db.insertInto("acme_authorizations").values(authorizations).execute();
  if (challenges.length > 0) await db.insertInto("acme_challenges").values(challenges).execute();
}

export async function orderById(ctx: AcmeContext, id: string): Promise<OrderRow | undefined> {
  return ctx.db().selectFrom("acme_orders").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function authorizationById(ctx: AcmeContext, id: string): Promise<AuthorizationRow | undefined> {
  return ctx.db().selectFrom("acme_authorizations").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function challengeById(ctx: AcmeContext, id: string): Promise<ChallengeRow | undefined> {
  return ctx.db().selectFrom("acme_challenges").selectAll().where("id", "=", id).executeTakeFirst();
}

/** An order's authorizations (in no particular order: the caller sorts them by its identifiers). */
export async function authorizationsOfOrder(ctx: AcmeContext, orderId: string): Promise<AuthorizationRow[]> {
  return ctx.db().selectFrom("acme_authorizations").selectAll().where("order_id", "=", orderId).execute();
}

/** An authorization's challenges, in the order they are offered. */
export async function challengesOf(ctx: AcmeContext, authzId: string): Promise<ChallengeRow[]> {
  const rows = await ctx
    .db()
    .selectFrom("acme_challenges")
    .selectAll()
    .where("authz_id", "=", authzId)
    .execute();
  return rows.sort((a, b) => CHALLENGE_ORDER.indexOf(a.type) - CHALLENGE_ORDER.indexOf(b.type));
}
const CHALLENGE_ORDER = ["http-01", "dns-01", "tls-alpn-01"];

/** Orders an account created at or after `since` (ISO): the count, and the oldest one's time. */
export async function ordersCreatedSince(
  ctx: AcmeContext,
  accountId: string,
  since: string,
): Promise<{ count: number; oldest: string | null }> {
  const r = await ctx
    .db()
    .selectFrom("acme_orders")
    .select((eb) => [eb.fn.countAll<number | string>().as("n"), eb.fn.min("created_at").as("oldest")])
    .where("account_id", "=", accountId)
    .where("created_at", ">=", since)
    .executeTakeFirstOrThrow();
  return { count: Number(r.n), oldest: r.oldest ?? null };
}

/** Orders of an account not yet finalized, invalid or expired at `now`: what it still keeps stored. */
export async function liveOrderCount(ctx: AcmeContext, accountId: string, now: string): Promise<number> {
  const r = await ctx
    .db()
    .selectFrom("acme_orders")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("account_id", "=", accountId)
    .where("status", "in", ["pending", "ready"])
    .where("request_id", "is", null)
    .where("expires_at", ">", now)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Where a page of an account's order list starts: after this (created_at, id), newest first. */
export interface OrderCursor {
  createdAt: string;
  id: string;
}

/** An account's unexpired orders, newest first, `limit` of them after `cursor`. */
export async function ordersOfAccount(
  ctx: AcmeContext,
  accountId: string,
  now: string,
  limit: number,
  cursor?: OrderCursor,
): Promise<Pick<OrderRow, "id" | "created_at">[]> {
  let q = ctx
    .db()
    .selectFrom("acme_orders")
    .select(["id", "created_at"])
    .where("account_id", "=", accountId)
    .where("expires_at", ">", now);
  if (cursor)
    q = q.where((eb) =>
      eb.or([
        eb("created_at", "<", cursor.createdAt),
        eb.and([eb("created_at", "=", cursor.createdAt), eb("id", "<", cursor.id)]),
      ]),
    );
  return q.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
}

/**
 * Moves an order not yet finalized from one of `from` to `to` (with its error): false when it is
 * no longer in one of them, or finalize has taken it (request_id set).
 */
export async function moveOrder(
  ctx: AcmeContext,
  id: string,
  from: AcmeStoredOrderStatus[],
  to: AcmeStoredOrderStatus,
  now: string,
  error?: AcmeProblemDocument,
): Promise<boolean> {
  const r = await ctx
    .db()
    .updateTable("acme_orders")
    .set({ status: to, updated_at: now, ...(error ? { error: JSON.stringify(error) } : {}) })
    .where("id", "=", id)
    .where("status", "in", from)
    .where("request_id", "is", null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Moves an authorization from one of `from`: false when another request moved it first. With
 * `unexpired`, only while its expiry is after `now`: an authorization that expired stays expired
 * (RFC 8555 §7.1.6), whatever a late validation finds.
 */
export async function moveAuthorization(
  ctx: AcmeContext,
  id: string,
  from: AuthorizationRow["status"][],
  to: Pick<AuthorizationRow, "status"> & Partial<Pick<AuthorizationRow, "validated_at" | "expires_at">>,
  now: string,
  o: { unexpired?: boolean } = {},
): Promise<boolean> {
  let q = ctx
    .db()
    .updateTable("acme_authorizations")
    .set({ ...to, updated_at: now })
    .where("id", "=", id)
    .where("status", "in", from);
  if (o.unexpired) q = q.where("expires_at", ">", now);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Claims a challenge for one validation (RFC 8555 §7.5.1): pending → processing, or a processing one
 * whose validation was last touched before `staleBefore` (its replica stopped). True for the one
 * request that claimed it; every other gets false and starts nothing.
 */
export async function claimChallenge(
  ctx: AcmeContext,
  id: string,
  now: string,
  staleBefore: string,
): Promise<boolean> {
  const r = await ctx
    .db()
    .updateTable("acme_challenges")
    .set({ status: "processing", updated_at: now })
    .where("id", "=", id)
    .where((eb) =>
      eb.or([
        eb("status", "=", "pending"),
        eb.and([eb("status", "=", "processing"), eb("updated_at", "<", staleBefore)]),
      ]),
    )
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Records a processing challenge's result; false when it is no longer processing. */
export async function finishChallenge(
  ctx: AcmeContext,
  id: string,
  result: { status: "valid"; validatedAt: string } | { status: "invalid"; error: AcmeProblemDocument },
  now: string,
): Promise<boolean> {
  const r = await ctx
    .db()
    .updateTable("acme_challenges")
    .set(
      result.status === "valid"
        ? { status: "valid", validated_at: result.validatedAt, error: null, updated_at: now }
        : { status: "invalid", error: JSON.stringify(result.error), updated_at: now },
    )
    .where("id", "=", id)
    .where("status", "=", "processing")
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
