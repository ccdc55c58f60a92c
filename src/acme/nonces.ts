// Replay nonces (RFC 8555 §6.5, §7.2): every ACME response carries a fresh one (router.ts), and each
// signed request must spend one. They live in the database, not in memory, so a nonce handed out by
// one replica is accepted by another and is spent once across all of them.
import type { Router } from "express";
import { clock } from "../coordinator/clock.ts";
import type { AcmeContext } from "./context.ts";
import { newAcmeId, ROUTES } from "./paths.ts";

/** How long an unspent nonce stays usable. Clients fetch a new one after a badNonce (§6.5). */
export const NONCE_LIFETIME_MS = 15 * 60 * 1000;
/** Expired nonces are deleted at most this often (per process). */
const PURGE_EVERY_MS = 60 * 1000;

const lastPurge = new WeakMap<AcmeContext, number>();

/** A new nonce, stored until it is spent or expires. */
export async function issueNonce(ctx: AcmeContext): Promise<string> {
  const value = newAcmeId();
  const now = clock.now();
  await ctx
    .db()
    .insertInto("acme_nonces")
    .values({ value, expires_at: new Date(now + NONCE_LIFETIME_MS).toISOString() })
    .execute();
  if (now - (lastPurge.get(ctx) ?? 0) > PURGE_EVERY_MS) {
    lastPurge.set(ctx, now);
    void ctx
      .db()
      .deleteFrom("acme_nonces")
      .where("expires_at", "<=", new Date(now).toISOString())
      .execute()
      .catch((err: unknown) => ctx.log.warn({ err }, "ACME: cannot purge expired nonces"));
  }
  return value;
}

/**
 * Spends a nonce: true if it was issued here, unexpired and unspent. The delete is the check, so of
 * two requests racing with one nonce (on any replica) exactly one succeeds.
 */
export async function consumeNonce(ctx: AcmeContext, value: string): Promise<boolean> {
  // Anything that is not one of our ids was never issued: no need to ask the database.
  if (!/^[A-Za-z0-9_-]{22}$/.test(value)) return false;
  const r = await ctx
    .db()
    .deleteFrom("acme_nonces")
    .where("value", "=", value)
    .where("expires_at", ">", clock.iso())
    .executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

/** RFC 8555 §7.2: HEAD newNonce → 200, GET → 204; the router's middleware adds the Replay-Nonce. */
export function registerNonceRoutes(r: Router, _ctx: AcmeContext): void {
  r.head(ROUTES.newNonce, (_req, res) => {
    res.status(200).end();
  });
  r.get(ROUTES.newNonce, (_req, res) => {
    res.status(204).end();
  });
}
