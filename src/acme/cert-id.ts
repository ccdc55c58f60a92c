// ARI certificate identifiers (RFC 9773 §4.1): base64url(AKI keyIdentifier) "." base64url(serial
// content octets), no padding. Used by renewalInfo (renewal-info.ts) and by newOrder's `replaces`
// (§5, checkReplaces below). The AKI of every leaf tca issues is the CA certificate's SKI
// (src/x509/leaf.ts), so a CertID names one of this CA's certificates when its first half is that
// SKI and its serial is one the CA issued.
import { timingSafeEqual } from "node:crypto";
import { clock } from "../coordinator/clock.ts";
import type { RequestRecord } from "../coordinator/store/types.ts";
import { hexToBytes } from "../threshold/encoding.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import { parseCsr } from "../x509/csr.ts";
import { toHex } from "../x509/der.ts";
import { bytesToIp, ipToBytes } from "../x509/ip.ts";
import { asciiLowerCase } from "../x509/name-syntax.ts";
import { commonNames } from "../x509/names.ts";
import { displaySerial, storedSerial } from "../x509/serial.ts";
import type { AcmeContext } from "./context.ts";
import { AcmeProblem } from "./problems.ts";
import type { Identifier } from "./protocol.ts";

/** base64url without padding, and nothing a decoder would silently skip (RFC 9773 §4.1, RFC 4648 §5). */
export function decodeBase64urlStrict(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, "base64url");
  // Trailing bits that are not zero decode to the same bytes as other texts: one text per value.
  if (bytes.toString("base64url") !== text) return undefined;
  return new Uint8Array(bytes);
}

export function formatCertId(keyIdentifier: Uint8Array, serialContent: Uint8Array): string {
  return `${Buffer.from(keyIdentifier).toString("base64url")}.${Buffer.from(serialContent).toString("base64url")}`;
}

/** The CertID of a certificate tca issued (its request), under the CA's SKI. */
export function certIdOfRequest(caSki: Uint8Array, r: Pick<RequestRecord, "serial">): string {
  return formatCertId(caSki, hexToBytes(r.serial));
}

/** The CA certificate's SKI: every leaf's AKI keyIdentifier. Null before the key ceremony. */
export async function caKeyIdentifier(ctx: AcmeContext): Promise<Uint8Array | null> {
  const der = await ctx.services.caCertificate();
  return der ? readCaCert(der).ski : null;
}

export interface IssuedCertificate {
  /** The certificate's request (status issued, certificate set). */
  request: RequestRecord & { certificate: Uint8Array };
  /** The CertID in its one canonical text (what orders store in `replaces`). */
  certId: string;
}

/**
 * The issued certificate a CertID names, or an AcmeProblem (`malformed`, with `status`: 404 for
 * renewalInfo, 400 for a newOrder's `replaces`) that says what is wrong with it.
 */
export async function issuedCertificateOf(
  ctx: AcmeContext,
  certId: string,
  notFoundStatus: 400 | 404,
): Promise<IssuedCertificate> {
  const notFound = (why: string) => new AcmeProblem("malformed", why, { status: notFoundStatus });
  const parts = certId.split(".");
  const aki = parts.length === 2 ? decodeBase64urlStrict(parts[0]!) : undefined;
  const serial = parts.length === 2 ? decodeBase64urlStrict(parts[1]!) : undefined;
  if (!aki || !serial || serial.length > 21)
    throw new AcmeProblem(
      "malformed",
      'a certificate identifier is base64url(AKI keyIdentifier) "." base64url(serial number), RFC 9773 §4.1',
      { status: 400 },
    );
  const ski = await caKeyIdentifier(ctx);
  if (!ski || ski.length !== aki.length || !timingSafeEqual(ski, aki))
    throw notFound(
      "the certificate identifier's key identifier is not this CA's: it names no certificate of this CA",
    );
  // The serial's content octets as stored (src/x509/serial.ts); a client that dropped the sign
  // octet still finds its certificate, and `certId` below is the canonical form.
  const stored = storedSerial(toHex(serial));
  const r = stored ? await ctx.services.store.getRequestBySerial(stored) : undefined;
  if (!r || r.status !== "issued" || !r.certificate)
    throw notFound(
      `no certificate with serial ${displaySerial(stored ?? toHex(serial))} was issued by this CA`,
    );
  return { request: r as IssuedCertificate["request"], certId: certIdOfRequest(ski, r) };
}

// ---- identifiers ----

/**
 * An identifier as compared: DNS names with A-Z in lower case and nothing else folded (RFC 4343 §3:
 * "K" matches "k", U+212A KELVIN SIGN does not), IP addresses in one text form (RFC 5952 for IPv6),
 * so "10.0.0.1" and an IPv6 address written two ways compare as they should.
 */
export function identifierKey(id: Identifier): string {
  if (id.type === "ip") {
    const bytes = ipToBytes(id.value);
    return `ip:${bytes ? bytesToIp(bytes) : id.value}`;
  }
  return `dns:${asciiLowerCase(id.value)}`;
}

/**
 * The names a request's CSR asks for, as ACME identifiers: every subject CN (an address when it
 * reads as one) and every dNSName and iPAddress SAN. Other SAN types are returned as `other`, for
 * the caller to refuse: an ACME order validates no e-mail address or URI.
 */
export function csrIdentifiers(csrDer: Uint8Array): { identifiers: Identifier[]; other: string[] } {
  const csr = parseCsr(csrDer);
  const identifiers: Identifier[] = [];
  const other: string[] = [];
  for (const cn of commonNames(csr.subjectDer))
    identifiers.push(ipToBytes(cn) ? { type: "ip", value: cn } : { type: "dns", value: cn });
  for (const san of csr.sans) {
    if (san.type === "dns" || san.type === "ip") identifiers.push({ type: san.type, value: san.value });
    else other.push(`${san.type}:${san.value}`);
  }
  return { identifiers, other };
}

// ---- RFC 9773 §5: newOrder's `replaces` ----

/**
 * Checks a newOrder's `replaces` (RFC 9773 §5) and returns the CertID to store in the order: the
 * certificate must be one this CA issued to this same account (its request's origin), share at least
 * one identifier with the new order (when `identifiers` are given), and not be replaced already by
 * another order that may still succeed (→ `alreadyReplaced`, 409). Call it inside the transaction
 * that inserts the order, so two orders cannot both replace one certificate.
 */
export async function checkReplaces(
  ctx: AcmeContext,
  accountId: string,
  certId: string,
  identifiers?: readonly Identifier[],
): Promise<string> {
  const { request: r, certId: canonical } = await issuedCertificateOf(ctx, certId, 400);
  if (r.origin?.kind !== "acme" || r.origin.account !== accountId)
    throw new AcmeProblem(
      "unauthorized",
      `certificate ${displaySerial(r.serial)} was not issued to this account, so this order cannot replace it`,
    );
  if (identifiers) {
    const ordered = new Set(identifiers.map(identifierKey));
    const shared = csrIdentifiers(r.csr).identifiers.some((i) => ordered.has(identifierKey(i)));
    if (!shared)
      throw new AcmeProblem(
        "malformed",
        `certificate ${displaySerial(r.serial)} shares no identifier with this order, so this order cannot replace it`,
      );
  }
  const rival = await liveReplacement(ctx, canonical);
  if (rival)
    throw new AcmeProblem(
      "alreadyReplaced",
      `certificate ${displaySerial(r.serial)} is already replaced by order ${rival}`,
    );
  return canonical;
}

/** An order, other than an invalid or expired one, that replaces this CertID; its id. */
async function liveReplacement(ctx: AcmeContext, certId: string): Promise<string | undefined> {
  const now = clock.iso();
  const rows = await ctx
    .db()
    .selectFrom("acme_orders")
    .select(["id", "status", "request_id", "expires_at"])
    .where("replaces", "=", certId)
    .where("status", "!=", "invalid")
    .orderBy("created_at")
    .execute();
  for (const o of rows) {
    if (o.request_id === null) {
      // Not finalized: it replaces nothing once it has expired (RFC 8555 §7.1.6).
      if (o.expires_at > now) return o.id;
      continue;
    }
    // Finalized: the stored status may lag the request, which is what decides.
    const req = await ctx.services.store.getRequest(o.request_id);
    if (req && req.status !== "rejected" && req.status !== "failed") return o.id;
  }
  return undefined;
}
