// What every part of the ACME server shares: the coordinator's services, the ACME settings, the
// ACME tables, and the validation options (docs/acme.md). Built once by createAcme (router.ts).
import type { Request } from "express";
import type { JWK, ProtectedHeaderParameters } from "jose";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { AcmeConfig } from "../config/schema.ts";
import type { CoordinatorServices } from "../coordinator/services.ts";
import type { AcmeChallengeType } from "../protocol/origin.ts";
import type { AcmeProblem } from "./problems.ts";
import type { AcmeAccountStatus, Identifier } from "./protocol.ts";
import type { AcmeDatabase } from "./store/schema.ts";

/** Where challenge validation connects (docs/acme.md, "Validation"). */
export interface AcmeValidationOptions {
  /** The port http-01 fetches from: 80 in production, a loopback test port in tests. */
  httpPort: number;
  /** The port tls-alpn-01 connects to: 443 in production. */
  tlsPort: number;
  /**
   * "HOST:PORT" (or "[v6]:PORT") of the DNS server every lookup of a validation goes to: TXT for
   * dns-01, A and AAAA for http-01 and tls-alpn-01. Absent: the system resolver.
   */
  resolver?: string;
  /** Time for one validation attempt (connect, fetch or handshake, lookups). */
  timeoutMs: number;
}

export const DEFAULT_VALIDATION: AcmeValidationOptions = { httpPort: 80, tlsPort: 443, timeoutMs: 10_000 };

export interface AcmeOptions {
  validation: AcmeValidationOptions;
  logger?: Logger;
}

/** An ACME account as the server uses it (acme_accounts, parsed). */
export interface AccountRecord {
  id: string;
  thumbprint: string;
  jwk: JWK;
  status: AcmeAccountStatus;
  contact: string[];
  requester: string;
  eabKeyId: string | null;
  createdAt: string;
}

/** A verified POST (RFC 8555 §6.2–6.3): signature, nonce and URL checked. */
export interface AcmePost {
  /** The URL in the protected header, equal to the URL the request was sent to. */
  url: string;
  /** The parsed JSON payload; null for POST-as-GET (an empty payload, §6.3). */
  payload: unknown;
  header: ProtectedHeaderParameters;
  /** The signing account, for a `kid` request (its status checked: valid). */
  account?: AccountRecord;
  /** The key, for a `jwk` request (newAccount; revokeCert by the certificate's key). */
  jwk?: JWK;
}

/** One challenge to validate (validation/index.ts). */
export interface ChallengeToValidate {
  type: AcmeChallengeType;
  token: string;
  /** token "." base64url(JWK thumbprint of the account key), RFC 8555 §8.1. */
  keyAuthorization: string;
  /** The identifier validated; a wildcard's base name (without "*."). */
  identifier: Identifier;
}

export type ValidationResult = { ok: true } | { ok: false; problem: AcmeProblem };

export interface AcmeContext {
  services: CoordinatorServices;
  config: AcmeConfig;
  options: AcmeOptions;
  log: Logger;
  /** The ACME tables: inside services.store.transaction(), the transaction's builder. */
  db(): Kysely<AcmeDatabase>;
  /** The base URL the client used ("http://127.0.0.1:8443"): every ACME URL is built on it. */
  baseUrl(req: Request): string;
}
