// Every ACME URL tca serves, written once. Clients find them all from the directory (RFC 8555 §7.1.1);
// resources are named by 128-bit random ids (ids.ts), so none is at a path a client could guess.
import { randomBytes } from "node:crypto";

export const ACME_PREFIX = "/acme";

/** Express route patterns. */
export const ROUTES = {
  directory: `${ACME_PREFIX}/directory`,
  newNonce: `${ACME_PREFIX}/new-nonce`,
  newAccount: `${ACME_PREFIX}/new-account`,
  newOrder: `${ACME_PREFIX}/new-order`,
  revokeCert: `${ACME_PREFIX}/revoke-cert`,
  keyChange: `${ACME_PREFIX}/key-change`,
  renewalInfo: `${ACME_PREFIX}/renewal-info`,
  renewalInfoOf: `${ACME_PREFIX}/renewal-info/:certId`,
  account: `${ACME_PREFIX}/account/:id`,
  accountOrders: `${ACME_PREFIX}/account/:id/orders`,
  order: `${ACME_PREFIX}/order/:id`,
  finalize: `${ACME_PREFIX}/order/:id/finalize`,
  authz: `${ACME_PREFIX}/authz/:id`,
  challenge: `${ACME_PREFIX}/challenge/:id`,
  certificate: `${ACME_PREFIX}/certificate/:id`,
} as const;

/** Absolute URLs on one base ("http://host:port"). */
export function acmeUrls(base: string) {
  return {
    directory: base + ROUTES.directory,
    newNonce: base + ROUTES.newNonce,
    newAccount: base + ROUTES.newAccount,
    newOrder: base + ROUTES.newOrder,
    revokeCert: base + ROUTES.revokeCert,
    keyChange: base + ROUTES.keyChange,
    renewalInfo: base + ROUTES.renewalInfo,
    account: (id: string) => `${base}${ACME_PREFIX}/account/${id}`,
    accountOrders: (id: string) => `${base}${ACME_PREFIX}/account/${id}/orders`,
    order: (id: string) => `${base}${ACME_PREFIX}/order/${id}`,
    finalize: (id: string) => `${base}${ACME_PREFIX}/order/${id}/finalize`,
    authz: (id: string) => `${base}${ACME_PREFIX}/authz/${id}`,
    challenge: (id: string) => `${base}${ACME_PREFIX}/challenge/${id}`,
    certificate: (id: string) => `${base}${ACME_PREFIX}/certificate/${id}`,
  };
}
export type AcmeUrls = ReturnType<typeof acmeUrls>;

/** A new resource id or token: 128 random bits, base64url (RFC 8555 §8.1 asks this of tokens). */
export function newAcmeId(): string {
  return randomBytes(16).toString("base64url");
}

/** The shape every id above has; anything else in a path is "not found" without a lookup. */
export const ACME_ID = /^[A-Za-z0-9_-]{22}$/;
