// Finalize and certificate download (RFC 8555 §7.4, §7.4.2):
//   POST order/{id}/finalize {csr}  → 200 the order (processing), Location: the order, Retry-After
//   POST certificate/{id} (POST-as-GET) → application/pem-certificate-chain, leaf first
//   POST certificate/{id}/{n} (POST-as-GET) → the n-th alternate chain (§7.4.2), when there is one
// A finalized order becomes a tca request like any other (intake), carrying its origin (the account,
// the order, each identifier with the challenge that validated it and when) for the custodians to
// decide on (docs/acme.md). The certificate's id is the order's: an order gets one certificate.
import { createPublicKey, type JsonWebKey } from "node:crypto";
import type { Request, RequestHandler, Router } from "express";
import { CoordinatorError } from "../coordinator/errors.ts";
import { clock } from "../coordinator/clock.ts";
import type { ValidatedIdentifier } from "../protocol/origin.ts";
import { X509Error } from "../x509/errors.ts";
import { parseCsr } from "../x509/csr.ts";
import { TAG } from "../x509/der.ts";
import { children, decodeOid, DerReadError, readDer } from "../x509/der-read.ts";
import { commonNames, derToName } from "../x509/names.ts";
import type { AccountRecord, AcmeContext, AcmePost } from "./context.ts";
import { csrIdentifiers, decodeBase64urlStrict, identifierKey } from "./cert-id.ts";
import { sendJson, sendPemChain } from "./http.ts";
import { WILDCARD_PREFIX } from "./identifiers.ts";
import { loadOrder, renderOrder } from "./orders.ts";
import { acmeUrls, ACME_ID, ROUTES } from "./paths.ts";
import { acmePost } from "./post.ts";
import { AcmeProblem } from "./problems.ts";
import { FinalizePayloadSchema, type Identifier } from "./protocol.ts";
import { authorizationsOfOrder, challengesOf, orderIdentifiers, type OrderRow } from "./store/orders.ts";

/** intake's backdating (requests/intake.ts): notBefore is this much before the request is stored. */
const INTAKE_BACKDATE_MS = 60_000;
/** The alternate chains' routes (§7.4.2): the certificate URL, then the chain's index (1, 2, …). */
export const ALTERNATE_CHAIN_ROUTE = `${ROUTES.certificate}/:n`;
const ALTERNATE_INDEX = /^[1-9][0-9]{0,2}$/;

function accountOf(post: AcmePost): AccountRecord {
  // acmePost with key "kid" always sets it; a missing one is a wiring error.
  if (!post.account) throw new AcmeProblem("serverInternal", "no account on a kid request");
  return post.account;
}

/** The order with the route's id, owned by this account; 404 for an unknown id, 403 for another's. */
async function ownedOrder(ctx: AcmeContext, req: Request, account: AccountRecord): Promise<OrderRow> {
  const id = String(req.params.id ?? "");
  const order = ACME_ID.test(id) ? await loadOrder(ctx, id) : undefined;
  if (!order) throw new AcmeProblem("malformed", "no such order", { status: 404 });
  if (order.account_id !== account.id)
    throw new AcmeProblem("unauthorized", "this order belongs to another account");
  return order;
}

// ---- finalize ----

/** The CSR of a finalize payload: base64url DER (§7.4), not PEM, not padded. */
function csrDer(text: string): Uint8Array {
  if (text.includes("-----BEGIN"))
    throw new AcmeProblem(
      "badCSR",
      "the csr is PEM; RFC 8555 §7.4 sends it as base64url DER (no header lines)",
    );
  const der = decodeBase64urlStrict(text);
  if (!der)
    throw new AcmeProblem(
      "malformed",
      "the csr is not base64url (RFC 8555 §7.4: base64url of the DER CSR, without padding)",
    );
  return der;
}

/** SPKI DER in node's encoding, for comparing keys written two ways (a compressed EC point). */
function canonicalSpki(key: { jwk: JsonWebKey } | { der: Uint8Array }): Buffer | undefined {
  try {
    const k =
      "jwk" in key
        ? createPublicKey({ key: key.jwk, format: "jwk" })
        : createPublicKey({ key: Buffer.from(key.der), format: "der", type: "spki" });
    return k.export({ type: "spki", format: "der" });
  } catch {
    return undefined;
  }
}

/** commonName (RFC 5280 §4.1.2.4, X.520). */
const COMMON_NAME_OID = "2.5.4.3";
/** How subject attributes are named in a refusal (RFC 4514 §3 short names), else by their OID. */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "emailAddress",
};

/** A Name as RFC 4514 text, quoted and cut to about 200 characters (a refusal stays short). */
function quotedName(der: Uint8Array): string {
  let text: string;
  try {
    text = derToName(der);
  } catch {
    return "(unreadable)";
  }
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/**
 * Why a CSR's subject is not one an ACME certificate may carry, or undefined: it is empty, or exactly
 * one RDN holding one commonName of printable ASCII. Only identifiers are validated (RFC 8555 §7.1.4),
 * so nothing else may reach the certificate: an O or OU would be vouched for by no one (and some
 * systems grant by them), a CN outside ASCII could compare equal to a validated name only under
 * Unicode case folding (K and U+212A KELVIN SIGN). Which CN it is, finalize checks with the SANs.
 */
function subjectProblem(subjectDer: Uint8Array): string | undefined {
  const types: string[] = [];
  let rdns: number;
  try {
    const sets = children(readDer(subjectDer));
    rdns = sets.length;
    for (const set of sets)
      for (const atv of children(set)) {
        const type = children(atv)[0];
        types.push(type?.tag === TAG.OID ? decodeOid(type) : "an attribute without a type");
      }
  } catch (e) {
    if (e instanceof DerReadError) return `the CSR's subject is not DER: ${e.message}`;
    throw e;
  }
  if (rdns === 0) return undefined;
  const shown = `the CSR's subject ${quotedName(subjectDer)}`;
  const others = types.filter((t) => t !== COMMON_NAME_OID);
  if (others.length > 0)
    return (
      `${shown} has ${others.map((t) => ATTRIBUTE_NAMES[t] ?? t).join(", ")}; ` +
      "an ACME certificate's subject is empty or one CN (an identifier of the order): no other attribute is validated"
    );
  if (types.length !== 1 || rdns !== 1)
    return `${shown} is not exactly one CN; an ACME certificate's subject is empty or one CN (an identifier of the order)`;
  const cn = commonNames(subjectDer)[0] ?? "";
  if (!/^[\x21-\x7e]+$/.test(cn))
    return `${shown} has a CN that is not printable ASCII; an internationalized name goes in as its A-label (xn--…)`;
  return undefined;
}

/**
 * Checks the CSR against the order (§7.4): its subject is empty or one CN (subjectProblem), its names
 * (the CN and every dNSName/iPAddress SAN) are exactly the order's identifiers as a set, and its
 * key is not the account's (§11.1: a client must not use one key for both).
 */
function checkCsr(der: Uint8Array, order: OrderRow, account: AccountRecord): void {
  let names: { identifiers: Identifier[]; other: string[] };
  let spki: Uint8Array;
  let subject: string | undefined;
  try {
    names = csrIdentifiers(der);
    const csr = parseCsr(der);
    spki = csr.spkiDer;
    subject = subjectProblem(csr.subjectDer);
  } catch (e) {
    if (e instanceof X509Error) throw new AcmeProblem("badCSR", e.message);
    throw e;
  }
  if (subject) throw new AcmeProblem("badCSR", subject);
  if (names.other.length > 0)
    throw new AcmeProblem(
      "badCSR",
      `the CSR asks for names no ACME order validates: ${names.other.join(", ")}; ask for DNS names and IP addresses only`,
    );
  const ordered = new Map(orderIdentifiers(order).map((i) => [identifierKey(i), i]));
  const asked = new Map(names.identifiers.map((i) => [identifierKey(i), i]));
  const show = (i: Identifier) => `${i.type}:${i.value}`;
  const extra = [...asked].filter(([k]) => !ordered.has(k)).map(([, i]) => show(i));
  const missing = [...ordered].filter(([k]) => !asked.has(k)).map(([, i]) => show(i));
  if (extra.length > 0 || missing.length > 0)
    throw new AcmeProblem(
      "badCSR",
      "the CSR's names are not the order's identifiers (RFC 8555 §7.4)" +
        (extra.length > 0 ? `; not in the order: ${extra.join(", ")}` : "") +
        (missing.length > 0 ? `; missing from the CSR: ${missing.join(", ")}` : ""),
    );
  const csrKey = canonicalSpki({ der: spki });
  const accountKey = canonicalSpki({ jwk: account.jwk as JsonWebKey });
  if (csrKey && accountKey && csrKey.equals(accountKey))
    throw new AcmeProblem(
      "badCSR",
      "the CSR's key is the account key; a certificate needs a key of its own (RFC 8555 §11.1)",
    );
}

/** Each identifier of the order with the challenge that validated it and when (the request's origin). */
async function validatedIdentifiers(ctx: AcmeContext, order: OrderRow): Promise<ValidatedIdentifier[]> {
  const out: ValidatedIdentifier[] = [];
  for (const a of await authorizationsOfOrder(ctx, order.id)) {
    const value = (a.wildcard ? WILDCARD_PREFIX : "") + a.identifier_value;
    const valid = (await challengesOf(ctx, a.id)).find((c) => c.status === "valid");
    const validatedAt = valid?.validated_at ?? a.validated_at;
    if (a.status !== "valid" || !valid || !validatedAt)
      throw new AcmeProblem("orderNotReady", `the authorization for ${value} is not valid`);
    out.push({ type: a.identifier_type, value, challenge: valid.type, validatedAt });
  }
  return out;
}

/** What the coordinator's refusal of a submission means to an ACME client. */
function problemOfSubmission(e: CoordinatorError): AcmeProblem {
  const reason = e.extra.reason;
  switch (e.code) {
    case "BAD_REQUEST":
    case "UNPROCESSABLE":
    case "PAYLOAD_TOO_LARGE":
      // The order's notAfter no longer fits (the CA's own expiry, the profile's cap).
      if (reason === "VALIDITY_NOT_ALLOWED") return new AcmeProblem("malformed", e.message);
      return new AcmeProblem("badCSR", e.message);
    case "FORBIDDEN":
      // A name the grant does not allow or another requester reserves (the grant may have changed
      // since newOrder); anything else the grant refuses (the profile) is the account's.
      return reason === "NAME_NOT_ALLOWED"
        ? new AcmeProblem("rejectedIdentifier", e.message)
        : new AcmeProblem("unauthorized", e.message);
    case "UNAUTHORIZED":
      return new AcmeProblem(
        "unauthorized",
        `this account's requester grant is gone from ca-config: ${e.message}`,
      );
    case "CONFLICT":
      return new AcmeProblem("serverInternal", `the CA cannot issue yet: ${e.message}`, {
        status: 503,
        retryAfter: 60,
      });
    case "TOO_MANY_REQUESTS":
      return new AcmeProblem("rateLimited", e.message);
    default:
      return new AcmeProblem("serverInternal", e.message, { status: e.status >= 500 ? e.status : 500 });
  }
}

async function finalize(ctx: AcmeContext, req: Request, res: Parameters<RequestHandler>[1], post: AcmePost) {
  const account = accountOf(post);
  const order = await ownedOrder(ctx, req, account);
  const payload = FinalizePayloadSchema.parse(post.payload);
  // The status as the client would read it now (derived from the authorizations and the expiry).
  const before = await renderOrder(ctx, req, order.id);
  if (before.body.status !== "ready")
    throw new AcmeProblem(
      "orderNotReady",
      before.body.status === "pending"
        ? "the order is pending: every authorization must be valid before it is finalized"
        : `the order is ${before.body.status}; it was finalized already or can no longer be`,
    );
  const der = csrDer(payload.csr);
  checkCsr(der, order, account);
  const identifiers = await validatedIdentifiers(ctx, order);
  const s = ctx.services;
  let requestId: string;
  try {
    const requester = s.requests.requesterFor(account.requester);
    const view = await s.requests.submit({
      requester,
      profile: order.profile,
      csr: der,
      // The order's notAfter (newOrder checked it against the profile), as a lifetime from intake's
      // notBefore; the certificate's notAfter then matches it to the second.
      ...(order.not_after
        ? { validityHours: (Date.parse(order.not_after) - (clock.now() - INTAKE_BACKDATE_MS)) / 3_600_000 }
        : {}),
      origin: { kind: "acme", account: account.id, order: order.id, identifiers },
      // Committed with the request or not at all; of two finalizes racing, the second finds the
      // order taken and stores nothing.
      inTransaction: async (id) => {
        const r = await ctx
          .db()
          .updateTable("acme_orders")
          .set({ request_id: id, status: "processing", updated_at: clock.iso() })
          .where("id", "=", order.id)
          .where("request_id", "is", null)
          .where("status", "in", ["pending", "ready"])
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1)
          throw new AcmeProblem("orderNotReady", "the order was finalized by another request");
      },
    });
    requestId = view.id;
  } catch (e) {
    if (e instanceof CoordinatorError) throw problemOfSubmission(e);
    throw e;
  }
  ctx.log.info(
    { order: order.id, account: account.id, request: requestId, identifiers: identifiers.length },
    "ACME: order finalized; the custodians decide on its request",
  );
  const after = await renderOrder(ctx, req, order.id);
  sendJson(res, 200, after.body, {
    location: acmeUrls(ctx.baseUrl(req)).order(order.id),
    ...(after.retryAfter !== undefined ? { retryAfter: after.retryAfter } : {}),
  });
}

// ---- certificate ----

/**
 * The chains an order's certificate is served with, the default first (§7.4.2), each PEM, leaf first.
 * Today there is one: the leaf, then tca's root, which signs every leaf. When tca issues under an
 * intermediate, chains to other roots (a cross-signed intermediate) go after the default and are
 * served as alternates.
 */
export async function certificateChains(ctx: AcmeContext, requestId: string): Promise<string[]> {
  return [await ctx.services.requests.certificateChain(requestId)];
}

/**
 * The Link rel="alternate" URLs for a response serving chain `served` of `count` (§7.4.2): every
 * other chain, the default at the certificate URL, alternate n at `<certificate URL>/n`.
 */
export function alternateChainLinks(certificateUrl: string, count: number, served: number): string[] {
  const urlOf = (n: number) => (n === 0 ? certificateUrl : `${certificateUrl}/${n}`);
  return Array.from({ length: count }, (_, n) => n)
    .filter((n) => n !== served)
    .map(urlOf);
}

async function certificate(
  ctx: AcmeContext,
  req: Request,
  res: Parameters<RequestHandler>[1],
  post: AcmePost,
) {
  const account = accountOf(post);
  if (post.payload !== null)
    throw new AcmeProblem(
      "malformed",
      "a certificate is read with POST-as-GET: an empty payload (RFC 8555 §6.3)",
    );
  const order = await ownedOrder(ctx, req, account);
  const n = req.params.n === undefined ? 0 : Number(req.params.n);
  if (req.params.n !== undefined && !ALTERNATE_INDEX.test(String(req.params.n)))
    throw new AcmeProblem("malformed", "no such certificate chain", { status: 404 });
  const current = await renderOrder(ctx, req, order.id);
  // Not there yet: the certificate resource exists once the order is valid (its URL appears in the
  // order then, §7.1.3), so earlier it is "not found", not an order error.
  if (current.body.status !== "valid" || order.request_id === null)
    throw new AcmeProblem(
      "malformed",
      `the order is ${current.body.status}; its certificate exists once the order is valid`,
      { status: 404 },
    );
  const chains = await certificateChains(ctx, order.request_id);
  const chain = chains[n];
  if (chain === undefined) throw new AcmeProblem("malformed", "no such certificate chain", { status: 404 });
  const url = acmeUrls(ctx.baseUrl(req)).certificate(order.id);
  sendPemChain(res, chain, {
    links: alternateChainLinks(url, chains.length, n).map((u) => ({ url: u, rel: "alternate" })),
  });
}

export function registerFinalizeRoutes(r: Router, ctx: AcmeContext): void {
  r.post(
    ROUTES.finalize,
    acmePost(ctx, { key: "kid" }, (req, res, post) => finalize(ctx, req, res, post)),
  );
  const download = acmePost(ctx, { key: "kid" }, (req, res, post) => certificate(ctx, req, res, post));
  r.post(ROUTES.certificate, download);
  r.post(ALTERNATE_CHAIN_ROUTE, download);
}
