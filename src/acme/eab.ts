// External account binding (RFC 8555 §7.3.4): how an ACME account gets a ca-config requester's
// grant. An admin makes a key for a requester (POST /api/v1/acme/eab-keys); its id and HMAC key are
// given once to whoever runs the ACME client, which MACs its account key with it in newAccount. Each
// key binds one account, and is emptied once it has (docs/acme.md, "Accounts").
//
// The admin routes here are tca's API, not ACME: bearer-token authentication and RFC 9457 problem
// documents from the coordinator's error handler.
import { randomBytes } from "node:crypto";
import express, { type Request, type Router } from "express";
import { flattenedVerify, type FlattenedJWSInput, type JWK } from "jose";
import { clock } from "../coordinator/clock.ts";
import { CoordinatorError } from "../coordinator/errors.ts";
import { Readers } from "../coordinator/http/auth.ts";
import { describeIssues } from "../coordinator/http/query.ts";
import { rosterKeys } from "../protocol/envelope.ts";
import type { AcmeContext } from "./context.ts";
import { AcmeProblem } from "./problems.ts";
import { parseFlattenedJws, thumbprintOf } from "./jws.ts";
import { ACME_ID, newAcmeId } from "./paths.ts";
import {
  CreateEabKeyBodySchema,
  EAB_KEYS_PATH,
  type EabKeyCreated,
  type EabKeyView,
} from "../protocol/acme-eab.ts";

/** RFC 8555 §7.3.4: a MAC algorithm. */
const EAB_ALGORITHMS = ["HS256", "HS384", "HS512"];

// ---- binding (newAccount) ----

/** A ca-config requester that may act for ACME accounts: it exists and holds one of acme.profiles. */
export function acmeRequesterProblem(ctx: AcmeContext, name: string): string | undefined {
  const r = ctx.services.config.config.requesters.find((x) => x.name === name);
  if (!r) return `requester ${name} is not in ca-config`;
  if (!r.profiles.some((p) => ctx.config.profiles.includes(p)))
    return `requester ${name} is granted none of the ACME profiles (${ctx.config.profiles.join(", ")})`;
  return undefined;
}

/**
 * Checks an externalAccountBinding (§7.3.4) against the outer JWS of a newAccount: a flattened JWS,
 * MAC algorithm, `kid` an unbound EAB key of this server, `url` the newAccount URL, payload the
 * account key, and a MAC that verifies with the stored key. Writes nothing; bindEabKey does, in the
 * transaction that inserts the account. Returns the key id and the requester it grants.
 */
export async function verifyExternalAccountBinding(
  ctx: AcmeContext,
  eab: unknown,
  outer: { url: string; jwk: JWK },
): Promise<{ keyId: string; requester: string }> {
  const jws = parseFlattenedJws(eab);
  let header: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(Buffer.from(jws.protected, "base64url").toString("utf8"));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    header = v as Record<string, unknown>;
  } catch {
    throw new AcmeProblem("malformed", "the externalAccountBinding protected header is not a JSON object");
  }
  if (typeof header.alg !== "string" || !EAB_ALGORITHMS.includes(header.alg))
    throw new AcmeProblem(
      "malformed",
      `the externalAccountBinding must be MACed with ${EAB_ALGORITHMS.join(", ")} (RFC 8555 §7.3.4)`,
    );
  if ("nonce" in header || "jwk" in header || "crit" in header || "b64" in header)
    throw new AcmeProblem(
      "malformed",
      "the externalAccountBinding header holds alg, kid and url only (RFC 8555 §7.3.4: no nonce)",
    );
  if (header.url !== outer.url)
    throw new AcmeProblem("unauthorized", "the externalAccountBinding url is not the newAccount URL");
  const keyId = header.kid;
  if (typeof keyId !== "string" || !ACME_ID.test(keyId))
    throw new AcmeProblem("unauthorized", "the externalAccountBinding kid is not a key id of this server");
  const row = await ctx
    .db()
    .selectFrom("acme_eab_keys")
    .selectAll()
    .where("key_id", "=", keyId)
    .executeTakeFirst();
  if (!row) throw new AcmeProblem("unauthorized", "no external account binding key has this kid");
  if (row.account_id !== null || row.hmac_key === "")
    throw new AcmeProblem("unauthorized", "this external account binding key has already bound an account");
  try {
    await flattenedVerify(jws as FlattenedJWSInput, Buffer.from(row.hmac_key, "base64url"), {
      algorithms: [header.alg],
    });
  } catch {
    throw new AcmeProblem("unauthorized", "the externalAccountBinding MAC does not verify with this key");
  }
  let inner: unknown;
  try {
    inner = JSON.parse(Buffer.from(jws.payload, "base64url").toString("utf8"));
  } catch {
    throw new AcmeProblem("malformed", "the externalAccountBinding payload is not a JWK");
  }
  const same =
    typeof inner === "object" &&
    inner !== null &&
    (await thumbprintOf(inner as JWK).catch(() => "")) === (await thumbprintOf(outer.jwk));
  if (!same)
    throw new AcmeProblem("unauthorized", "the externalAccountBinding payload is not the account key");
  const problem = acmeRequesterProblem(ctx, row.requester);
  if (problem)
    throw new AcmeProblem(
      "unauthorized",
      `this external account binding key is no longer usable: ${problem}`,
    );
  return { keyId, requester: row.requester };
}

/**
 * Binds a key to the account just inserted; call in the same services.store.transaction(). The
 * update is the check: of two newAccounts racing with one key, one binds it, the other is refused.
 */
export async function bindEabKey(ctx: AcmeContext, keyId: string, accountId: string): Promise<void> {
  const r = await ctx
    .db()
    .updateTable("acme_eab_keys")
    .set({ account_id: accountId, bound_at: clock.iso(), hmac_key: "" })
    .where("key_id", "=", keyId)
    .where("account_id", "is", null)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1)
    throw new AcmeProblem("unauthorized", "this external account binding key has already bound an account");
}

// ---- the admin API ----

/**
 * POST/GET /api/v1/acme/eab-keys and DELETE /api/v1/acme/eab-keys/{keyId}, admins only. Called by
 * registerAccountRoutes (accounts.ts).
 */
export function registerEabAdminRoutes(r: Router, ctx: AcmeContext): void {
  const s = ctx.services;
  const json = express.json({ limit: "4kb" });
  let readerCache: Readers | undefined;
  const readers = (): Readers =>
    (readerCache ??= new Readers({
      admins: s.config.config.admins,
      requesters: s.config.config.requesters,
      roster: rosterKeys(s.config.config.custodians),
      nonces: s.store,
      now: () => clock.now(),
    }));
  const admin = async (req: Request): Promise<string> => {
    const who = await readers().resolve(req);
    if (!who)
      throw new CoordinatorError(
        "UNAUTHORIZED",
        'ACME external account binding keys are managed by an admin: send "Authorization: Bearer <admin token>"',
      );
    if (who.kind !== "admin")
      throw new CoordinatorError(
        "FORBIDDEN",
        `a ${who.kind} (${who.name}) may not manage ACME external account binding keys; an admin may`,
      );
    return who.name;
  };

  r.post(EAB_KEYS_PATH, json, async (req, res) => {
    const by = await admin(req);
    if (req.body === undefined)
      throw new CoordinatorError(
        "UNSUPPORTED_MEDIA_TYPE",
        "send a JSON body with Content-Type: application/json",
      );
    const body = CreateEabKeyBodySchema.safeParse(req.body);
    if (!body.success) throw new CoordinatorError("BAD_REQUEST", describeIssues(body.error, "field"));
    const problem = acmeRequesterProblem(ctx, body.data.requester);
    if (problem) throw new CoordinatorError("UNPROCESSABLE", problem);
    const created: EabKeyCreated = {
      keyId: newAcmeId(),
      hmacKey: randomBytes(32).toString("base64url"),
      requester: body.data.requester,
      createdAt: clock.iso(),
    };
    await ctx
      .db()
      .insertInto("acme_eab_keys")
      .values({
        key_id: created.keyId,
        requester: created.requester,
        hmac_key: created.hmacKey,
        created_at: created.createdAt,
        created_by: by,
        account_id: null,
        bound_at: null,
      })
      .execute();
    ctx.log.info({ keyId: created.keyId, requester: created.requester, by }, "ACME: EAB key created");
    res.set("Cache-Control", "no-store").status(201).json(created);
  });

  r.get(EAB_KEYS_PATH, async (req, res) => {
    await admin(req);
    const rows = await ctx.db().selectFrom("acme_eab_keys").selectAll().orderBy("created_at").execute();
    const keys: EabKeyView[] = rows.map((k) => ({
      keyId: k.key_id,
      requester: k.requester,
      createdAt: k.created_at,
      createdBy: k.created_by,
      bound: k.account_id !== null,
      accountId: k.account_id,
      boundAt: k.bound_at,
    }));
    res.json({ keys });
  });

  r.delete(`${EAB_KEYS_PATH}/:keyId`, async (req, res) => {
    const by = await admin(req);
    const keyId = String(req.params.keyId);
    const notFound = () => new CoordinatorError("NOT_FOUND", `no external account binding key ${keyId}`);
    if (!ACME_ID.test(keyId)) throw notFound();
    await s.store.transaction(async () => {
      const row = await ctx
        .db()
        .selectFrom("acme_eab_keys")
        .select(["account_id"])
        .where("key_id", "=", keyId)
        .executeTakeFirst();
      if (!row) throw notFound();
      if (row.account_id !== null)
        throw new CoordinatorError(
          "CONFLICT",
          `external account binding key ${keyId} is bound to account ${row.account_id}; a bound key is kept as the record of where the account's grant came from`,
        );
      await ctx.db().deleteFrom("acme_eab_keys").where("key_id", "=", keyId).execute();
    });
    ctx.log.info({ keyId, by }, "ACME: EAB key deleted");
    res.status(204).end();
  });
}
