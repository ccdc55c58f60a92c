// The certificate inventory (docs/inventory.md): issued certificates, filtered, sorted and paged
// with an opaque keyset cursor, and one certificate by serial. Who reads what follows
// docs/security-model.md: admins and custodians see every certificate, a requester only its own
// (another's serial is "not found", and its `requester` filter narrows, never widens).
import { createHash } from "node:crypto";
import { canonicalJson } from "../common/canonical-json.ts";
import type { CertificateList, CertificateStatus, CertificateView } from "../protocol/certificates.ts";
import { toPem } from "../x509/der.ts";
import { displaySerial, storedSerial } from "../x509/serial.ts";
import { clock } from "./clock.ts";
import { CoordinatorError } from "./errors.ts";
import type { CertificateRecord, CertificateSort, Store } from "./store/types.ts";
import { issuerChainPem } from "./intermediate.ts";

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 100;

/** A list query as the route parsed it (every value checked; times as ISO 8601 UTC). */
export interface InventoryQuery {
  serial?: string;
  q?: string;
  status?: CertificateStatus;
  profile?: string;
  requester?: string;
  expiresBefore?: string;
  expiresAfter?: string;
  /** "issued", "notAfter", or either with a leading "-" (descending). Default "-issued". */
  sort?: string;
  limit?: number;
  cursor?: string;
}

interface Cursor {
  v: 1;
  /** The sort the page was made for. */
  s: string;
  /** Digest of the filters (and the reader's scope): a cursor belongs to one query. */
  f: string;
  /** Sort key and intake sequence of the last row returned. */
  k: string;
  q: number;
}

export class CertificateInventory {
  constructor(
    private readonly store: Pick<Store, "listCertificates" | "getCertificate" | "getMeta">,
    private readonly caCertificate: () => Promise<Uint8Array | null>,
  ) {}

  /** One page. `owner`: the requester reading (only its own certificates); absent for admins and custodians. */
  async list(query: InventoryQuery, owner?: string): Promise<CertificateList> {
    const sortName = query.sort ?? "-issued";
    const descending = sortName.startsWith("-");
    const sort = (descending ? sortName.slice(1) : sortName) as CertificateSort;
    const limit = query.limit ?? DEFAULT_PAGE;
    const serial = query.serial !== undefined ? storedSerial(query.serial) : undefined;
    if (query.serial !== undefined && serial === undefined)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `query parameter serial: "${query.serial}" is not a serial number`,
      );
    const filters = {
      serial,
      search: query.q?.toLowerCase(),
      status: query.status,
      profile: query.profile,
      requester: query.requester,
      expiresBefore: query.expiresBefore,
      expiresAfter: query.expiresAfter,
      owner,
    };
    const digest = createHash("sha256")
      .update(canonicalJson(JSON.parse(JSON.stringify(filters)) as Record<string, unknown>))
      .digest("base64url")
      .slice(0, 16);
    const after = query.cursor !== undefined ? readCursor(query.cursor, sortName, digest) : undefined;
    // A requester's own scope: naming another requester finds nothing.
    if (owner !== undefined && query.requester !== undefined && query.requester !== owner)
      return { certificates: [], next: null };
    const now = clock.iso();
    const rows = await this.store.listCertificates({
      now,
      ...(serial !== undefined ? { serial } : {}),
      ...(filters.search !== undefined ? { search: filters.search } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(query.profile !== undefined ? { profile: query.profile } : {}),
      ...((owner ?? query.requester) !== undefined ? { requester: (owner ?? query.requester)! } : {}),
      ...(query.expiresBefore !== undefined ? { expiresBefore: query.expiresBefore } : {}),
      ...(query.expiresAfter !== undefined ? { expiresAfter: query.expiresAfter } : {}),
      sort,
      descending,
      ...(after ? { after } : {}),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const next =
      rows.length > limit && last
        ? writeCursor({
            v: 1,
            s: sortName,
            f: digest,
            k: sort === "issued" ? last.issuedAt : last.notAfter,
            q: last.seq,
          })
        : null;
    return { certificates: page.map((r) => view(r, now)), next };
  }

  /** One certificate by serial (any written form), with its DER and PEM chain (leaf first). */
  async get(
    serialInput: string,
    owner?: string,
  ): Promise<{ view: CertificateView; der: Uint8Array; pem: string }> {
    const serial = storedSerial(serialInput);
    if (serial === undefined)
      throw new CoordinatorError("BAD_REQUEST", `"${serialInput}" is not a serial number (hexadecimal)`);
    const r = await this.store.getCertificate(serial);
    // Another requester's certificate is "not found", exactly as one that does not exist.
    if (!r || (owner !== undefined && r.requester !== owner))
      throw new CoordinatorError(
        "NOT_FOUND",
        `no certificate with serial ${displaySerial(serial)} was issued by this CA`,
      );
    const ca = await this.caCertificate();
    // Intermediate mode: the CA certificate that issued it and the chain above it up to the
    // external root, an earlier one for a certificate issued before an install (docs/intermediate.md).
    const pem = toPem(r.der, "CERTIFICATE") + (await issuerChainPem(this.store, ca, r.der));
    return { view: view(r, clock.iso()), der: r.der, pem };
  }
}

/** The status at `now`: revoked wins; else expired once notAfter is not after now (RFC 5280 §4.1.2.5). */
function statusOf(r: CertificateRecord, now: string): CertificateStatus {
  if (r.revocation) return "revoked";
  return r.notAfter > now ? "valid" : "expired";
}

function view(r: CertificateRecord, now: string): CertificateView {
  return {
    serial: displaySerial(r.serial),
    subject: r.subject,
    sans: r.sans,
    profile: r.profile,
    requester: r.requester,
    requestId: r.requestId,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    status: statusOf(r, now),
    ...(r.revocation ? { revokedAt: r.revocation.revokedAt, reason: r.revocation.reason } : {}),
    keyType: r.keyType,
  };
}

function writeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

function readCursor(text: string, sort: string, digest: string): { key: string; seq: number } {
  const bad = (why: string) => new CoordinatorError("BAD_REQUEST", `query parameter cursor ${why}`);
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Partial<Cursor>;
  } catch {
    throw bad("is not a cursor this coordinator gave out");
  }
  if (c?.v !== 1 || typeof c.k !== "string" || typeof c.q !== "number" || !Number.isSafeInteger(c.q))
    throw bad("is not a cursor this coordinator gave out");
  if (c.s !== sort)
    throw bad(`was made for sort=${String(c.s)}, not sort=${sort}: keep the sort while paging`);
  if (c.f !== digest) throw bad("was made for other filters: keep the filters while paging");
  return { key: c.k, seq: c.q };
}
