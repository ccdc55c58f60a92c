// ACME's own tables (docs/acme.md), beside the coordinator's in the same database and written in the
// same transactions when needed (Store.queryBuilder). Times are ISO 8601 UTC strings; JSON columns are
// TEXT, parsed with their zod schemas where they are read. Ids are 128-bit random base64url strings:
// no resource is at a path a client could guess (docs/acme.md, "URLs").
import type {
  AcmeAccountStatus,
  AcmeAuthzStatus,
  AcmeChallengeStatus,
  AcmeStoredOrderStatus,
} from "../protocol.ts";
import type { AcmeChallengeType } from "../../protocol/origin.ts";

export interface AcmeAccountTable {
  id: string;
  /** RFC 7638 thumbprint (SHA-256, base64url) of the account key: one account per key. */
  thumbprint: string;
  /** The public JWK, JSON. */
  jwk: string;
  status: AcmeAccountStatus;
  /** JSON array of contact URLs (mailto:). */
  contact: string;
  /** The ca-config requester whose grant this account acts under. */
  requester: string;
  /** The external account binding key it was created with, if any. */
  eab_key_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface AcmeEabKeyTable {
  key_id: string;
  requester: string;
  /** The HMAC key, base64url; emptied once it has bound an account (each key binds one). */
  hmac_key: string;
  created_at: string;
  created_by: string;
  account_id: string | null;
  bound_at: string | null;
}

export interface AcmeNonceTable {
  value: string;
  expires_at: string;
}

export interface AcmeOrderTable {
  id: string;
  account_id: string;
  /** What is stored; processing/valid/invalid after finalize follow the request (docs/acme.md). */
  status: AcmeStoredOrderStatus;
  /** JSON array of {type, value}, as in the newOrder payload (normalised). */
  identifiers: string;
  profile: string;
  not_before: string | null;
  not_after: string | null;
  expires_at: string;
  /** The tca request made at finalize. */
  request_id: string | null;
  /** JSON RFC 8555 problem, once the order is invalid for a reason of ACME's own. */
  error: string | null;
  /** RFC 9773 §5: the ARI CertID of the certificate this order replaces. */
  replaces: string | null;
  created_at: string;
  updated_at: string;
}

export interface AcmeAuthorizationTable {
  id: string;
  order_id: string;
  account_id: string;
  identifier_type: "dns" | "ip";
  /** Without "*." for a wildcard (then `wildcard` is 1), RFC 8555 §7.1.4. */
  identifier_value: string;
  wildcard: number;
  status: AcmeAuthzStatus;
  expires_at: string;
  validated_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface AcmeChallengeTable {
  id: string;
  authz_id: string;
  type: AcmeChallengeType;
  /** RFC 8555 §8.1: 128 bits of entropy, base64url. */
  token: string;
  status: AcmeChallengeStatus;
  validated_at: string | null;
  /** JSON RFC 8555 problem, once invalid. */
  error: string | null;
  created_at: string;
  updated_at: string;
}

export interface AcmeDatabase {
  acme_accounts: AcmeAccountTable;
  acme_eab_keys: AcmeEabKeyTable;
  acme_nonces: AcmeNonceTable;
  acme_orders: AcmeOrderTable;
  acme_authorizations: AcmeAuthorizationTable;
  acme_challenges: AcmeChallengeTable;
}
