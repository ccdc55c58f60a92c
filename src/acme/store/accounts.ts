// ACME accounts in acme_accounts (RFC 8555 §7.1.2): one per key (the RFC 7638 thumbprint is unique),
// each acting under one ca-config requester grant. Reads parse the JSON columns with zod.
import type { JWK } from "jose";
import { z } from "zod";
import { clock } from "../../coordinator/clock.ts";
import type { AccountRecord, AcmeContext } from "../context.ts";
import { AcmeAccountStatusSchema, type AcmeAccountStatus } from "../protocol.ts";
import type { AcmeAccountTable } from "./schema.ts";

const StoredJwkSchema = z.record(z.string(), z.unknown());
const StoredContactSchema = z.array(z.string());

function recordOf(row: AcmeAccountTable): AccountRecord {
  return {
    id: row.id,
    thumbprint: row.thumbprint,
    jwk: StoredJwkSchema.parse(JSON.parse(row.jwk)) as JWK,
    status: AcmeAccountStatusSchema.parse(row.status),
    contact: StoredContactSchema.parse(JSON.parse(row.contact)),
    requester: row.requester,
    eabKeyId: row.eab_key_id,
    createdAt: row.created_at,
  };
}

export async function accountById(ctx: AcmeContext, id: string): Promise<AccountRecord | undefined> {
  const row = await ctx.db().selectFrom("acme_accounts").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? recordOf(row) : undefined;
}

export async function accountByThumbprint(
  ctx: AcmeContext,
  thumbprint: string,
): Promise<AccountRecord | undefined> {
  const row = await ctx
    .db()
    .selectFrom("acme_accounts")
    .selectAll()
    .where("thumbprint", "=", thumbprint)
    .executeTakeFirst();
  return row ? recordOf(row) : undefined;
}

/** Stores a new account (call inside services.store.transaction() with what else it binds). */
export async function insertAccount(ctx: AcmeContext, a: AccountRecord): Promise<void> {
  await ctx
    .db()
    .insertInto("acme_accounts")
    .values({
      id: a.id,
      thumbprint: a.thumbprint,
      jwk: JSON.stringify(a.jwk),
      status: a.status,
      contact: JSON.stringify(a.contact),
      requester: a.requester,
      eab_key_id: a.eabKeyId,
      created_at: a.createdAt,
      updated_at: a.createdAt,
    })
    .execute();
}

/** Writes only the fields given. */
export async function updateAccount(
  ctx: AcmeContext,
  id: string,
  changes: { status?: AcmeAccountStatus; contact?: string[]; jwk?: JWK; thumbprint?: string },
): Promise<void> {
  await ctx
    .db()
    .updateTable("acme_accounts")
    .set({
      updated_at: clock.iso(),
      ...(changes.status !== undefined ? { status: changes.status } : {}),
      ...(changes.contact !== undefined ? { contact: JSON.stringify(changes.contact) } : {}),
      ...(changes.jwk !== undefined ? { jwk: JSON.stringify(changes.jwk) } : {}),
      ...(changes.thumbprint !== undefined ? { thumbprint: changes.thumbprint } : {}),
    })
    .where("id", "=", id)
    .execute();
}
