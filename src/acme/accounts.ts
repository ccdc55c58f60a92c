// ACME accounts (RFC 8555 §7.3): newAccount (with external account binding, §7.3.4, or open
// registration), the account URL (look up, update contacts, deactivate, §7.3.2, §7.3.6) and keyChange
// (§7.3.5). Every account acts under one ca-config requester grant (docs/acme.md, "Accounts"). The
// orders list (§7.1.2.1) is served with the orders.
import type { Request, Router } from "express";
import type { JWK } from "jose";
import { clock } from "../coordinator/clock.ts";
import type { AccountRecord, AcmeContext } from "./context.ts";
import {
  acmeRequesterProblem,
  bindEabKey,
  registerEabAdminRoutes,
  verifyExternalAccountBinding,
} from "./eab.ts";
import { sendJson } from "./http.ts";
import { checkProtectedHeader, parseFlattenedJws, thumbprintOf, verifyJws } from "./jws.ts";
import { acmeUrls, newAcmeId, ROUTES } from "./paths.ts";
import { acmePost } from "./post.ts";
import { AcmeProblem } from "./problems.ts";
import {
  AccountUpdatePayloadSchema,
  KeyChangeInnerPayloadSchema,
  NewAccountPayloadSchema,
  type AcmeAccountObject,
} from "./protocol.ts";
import { accountById, accountByThumbprint, insertAccount, updateAccount } from "./store/accounts.ts";

/** A single address after mailto: (RFC 6068), without hfields, as Let's Encrypt accepts. */
const MAILTO_ADDRESS =
  /^[A-Za-z0-9.!#$&'*+/=^_`{|}~-]{1,64}@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** RFC 8555 §7.3: contacts tca accepts are mailto: URLs with one address each. */
export function checkContacts(contacts: readonly string[]): string[] {
  for (const c of contacts) {
    if (!/^mailto:/i.test(c))
      throw new AcmeProblem(
        "unsupportedContact",
        `only mailto: contacts are supported, not ${JSON.stringify(c)}`,
      );
    const address = c.slice("mailto:".length);
    if (address.includes("?"))
      throw new AcmeProblem("invalidContact", `${JSON.stringify(c)}: a mailto: contact has no hfields`);
    if (!MAILTO_ADDRESS.test(address))
      throw new AcmeProblem(
        "invalidContact",
        `${JSON.stringify(c)} is not a mailto: URL with one email address`,
      );
  }
  return [...contacts];
}

function accountObject(base: string, a: AccountRecord): AcmeAccountObject {
  return { status: a.status, contact: a.contact, orders: acmeUrls(base).accountOrders(a.id) };
}

/** The payload as an object (these resources take no POST-as-GET). */
function payloadOf(p: unknown, what: string): Record<string, unknown> {
  if (p === null) throw new AcmeProblem("malformed", `${what} needs a JSON payload, not POST-as-GET`);
  return p as Record<string, unknown>;
}

export function registerAccountRoutes(r: Router, ctx: AcmeContext): void {
  const urls = (req: Request) => acmeUrls(ctx.baseUrl(req));

  // §7.3, §7.3.1: one account per key; asking again with the same key finds it.
  r.post(
    ROUTES.newAccount,
    acmePost(ctx, { key: "jwk" }, async (req, res, post) => {
      const payload = NewAccountPayloadSchema.parse(payloadOf(post.payload, "newAccount"));
      const jwk = post.jwk!;
      const thumbprint = await thumbprintOf(jwk);
      const base = ctx.baseUrl(req);
      const existing = await accountByThumbprint(ctx, thumbprint);
      if (existing) {
        // §7.3.6: a deactivated account's key authorizes nothing, this included.
        if (existing.status !== "valid")
          throw new AcmeProblem("unauthorized", `the account of this key is ${existing.status}`);
        sendJson(res, 200, accountObject(base, existing), { location: urls(req).account(existing.id) });
        return;
      }
      if (payload.onlyReturnExisting)
        throw new AcmeProblem("accountDoesNotExist", "no account has this key (onlyReturnExisting)");
      const contact = checkContacts(payload.contact ?? []);
      let grant: { requester: string; eabKeyId: string | null };
      if (payload.externalAccountBinding !== undefined) {
        const eab = await verifyExternalAccountBinding(ctx, payload.externalAccountBinding, {
          url: post.url,
          jwk,
        });
        grant = { requester: eab.requester, eabKeyId: eab.keyId };
      } else if (ctx.config.openRegistration) {
        grant = { requester: ctx.config.openRegistration.requester, eabKeyId: null };
        const problem = acmeRequesterProblem(ctx, grant.requester);
        if (problem) throw new AcmeProblem("unauthorized", `open registration is not usable: ${problem}`);
      } else
        throw new AcmeProblem(
          "externalAccountRequired",
          "this server needs an external account binding (RFC 8555 §7.3.4): ask its admin for a key (tca acme eab-key create)",
        );
      const account: AccountRecord = {
        id: newAcmeId(),
        thumbprint,
        jwk,
        status: "valid",
        contact,
        requester: grant.requester,
        eabKeyId: grant.eabKeyId,
        createdAt: clock.iso(),
      };
      const made = await ctx.services.store.transaction(async () => {
        // Another newAccount with this key may have won the race since the look-up above.
        const raced = await accountByThumbprint(ctx, thumbprint);
        if (raced) return raced;
        await insertAccount(ctx, account);
        if (grant.eabKeyId !== null) await bindEabKey(ctx, grant.eabKeyId, account.id);
        return account;
      });
      if (made !== account && made.status !== "valid")
        throw new AcmeProblem("unauthorized", `the account of this key is ${made.status}`);
      if (made === account)
        ctx.log.info(
          { account: account.id, requester: account.requester, eab: account.eabKeyId },
          "ACME: account created",
        );
      sendJson(res, made === account ? 201 : 200, accountObject(base, made), {
        location: urls(req).account(made.id),
      });
    }),
  );

  // §7.3.2, §7.3.6: the account itself, signed by its own key only.
  r.post(
    ROUTES.account,
    acmePost(ctx, { key: "kid" }, async (req, res, post) => {
      const account = post.account!;
      if (String(req.params.id) !== account.id)
        throw new AcmeProblem("unauthorized", "an account may only read or change itself");
      const base = ctx.baseUrl(req);
      const location = urls(req).account(account.id);
      if (post.payload === null) {
        sendJson(res, 200, accountObject(base, account), { location });
        return;
      }
      const update = AccountUpdatePayloadSchema.parse(post.payload);
      const contact = update.contact !== undefined ? checkContacts(update.contact) : undefined;
      const changes = {
        ...(contact !== undefined ? { contact } : {}),
        ...(update.status === "deactivated" ? { status: "deactivated" as const } : {}),
      };
      if (Object.keys(changes).length > 0) {
        await updateAccount(ctx, account.id, changes);
        if (changes.status) ctx.log.info({ account: account.id }, "ACME: account deactivated");
      }
      sendJson(res, 200, accountObject(base, { ...account, ...changes }), { location });
    }),
  );

  // §7.3.5: the account's key is replaced by a key that signs the inner JWS.
  r.post(
    ROUTES.keyChange,
    acmePost(ctx, { key: "kid" }, async (req, res, post) => {
      const account = post.account!;
      const inner = parseFlattenedJws(payloadOf(post.payload, "keyChange"));
      const header = checkProtectedHeader(inner, { inner: true });
      if (!header.jwk)
        throw new AcmeProblem(
          "malformed",
          "the inner JWS of a key change is signed with a jwk (RFC 8555 §7.3.5)",
        );
      if (header.url !== post.url)
        throw new AcmeProblem("malformed", "the inner JWS url is not the keyChange URL (RFC 8555 §7.3.5)");
      const { payload } = await verifyJws(inner, header, header.jwk);
      const change = KeyChangeInnerPayloadSchema.parse(payloadOf(payload, "the inner JWS"));
      const accountUrl = urls(req).account(account.id);
      if (change.account !== accountUrl)
        throw new AcmeProblem(
          "unauthorized",
          "the inner payload's account is not the account that signed the request",
        );
      const oldThumbprint = await thumbprintOf(change.oldKey as JWK).catch(() => "");
      if (oldThumbprint !== account.thumbprint)
        throw new AcmeProblem("unauthorized", "the inner payload's oldKey is not the account's current key");
      const newJwk = header.jwk;
      const newThumbprint = await thumbprintOf(newJwk);
      if (newThumbprint === account.thumbprint)
        throw new AcmeProblem("malformed", "the new key is the account's current key");
      await ctx.services.store.transaction(async () => {
        const other = await accountByThumbprint(ctx, newThumbprint);
        if (other) {
          // §7.3.5: 409 with the Location of the account that has the key.
          res.set("Location", urls(req).account(other.id));
          throw new AcmeProblem("malformed", "another account already uses the new key", { status: 409 });
        }
        const current = await accountById(ctx, account.id);
        if (current?.status !== "valid" || current.thumbprint !== account.thumbprint)
          throw new AcmeProblem(
            "unauthorized",
            "the account changed while the key change was checked; retry",
          );
        await updateAccount(ctx, account.id, { jwk: newJwk, thumbprint: newThumbprint });
      });
      ctx.log.info({ account: account.id }, "ACME: account key changed");
      sendJson(res, 200, accountObject(ctx.baseUrl(req), account), { location: accountUrl });
    }),
  );

  registerEabAdminRoutes(r, ctx);
}
