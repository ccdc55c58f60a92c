// The certificate inventory's routes (docs/inventory.md): GET /api/v1/certificates (filters, sort,
// keyset cursor; JSON or CSV) and GET /api/v1/certificates/{serial} (JSON with the PEM chain, the
// PEM chain, or the leaf's DER). Reads like every other (docs/security-model.md): an admin token
// or a custodian's signed read sees every certificate, a requester token only its own.
import type { Request, Router } from "express";
import { z } from "zod";
import type { CoordinatorServices } from "../services.ts";
import { CertificateInventory, DEFAULT_PAGE, MAX_PAGE } from "../inventory.ts";
import {
  CERTIFICATE_SORTS,
  CERTIFICATE_STATUSES,
  CertificateDetailSchema,
  CertificateListSchema,
  toCsv,
} from "../../protocol/certificates.ts";
import type { Readers, Reader } from "./auth.ts";
import { decimalInt, parseQuery } from "./query.ts";

/** RFC 3339 date-time (§5.6), or a full-date meaning 00:00 UTC; normalized to ISO 8601 UTC as stored. */
const DateTime = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?$/,
    "must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z (or a date, 2027-01-31)",
  )
  .transform((s, ctx) => {
    const d = new Date(s.replace(" ", "T"));
    // Date rolls 2027-02-30 over to March 2: a day must exist in its month (RFC 3339 §5.7).
    const [y, m, day] = s.slice(0, 10).split("-").map(Number) as [number, number, number];
    const daysInMonth = new Date(Date.UTC(y, m, 0)).getUTCDate();
    if (Number.isNaN(d.getTime()) || m < 1 || m > 12 || day < 1 || day > daysInMonth) {
      ctx.addIssue({ code: "custom", message: "is not a date that exists" });
      return z.NEVER;
    }
    return d.toISOString();
  });

const oneOf = (values: readonly string[]) => ({ error: () => `must be one of ${values.join(", ")}` });

const ListQuery = z
  .object({
    serial: z.string().min(1).max(128).optional(),
    q: z
      .string()
      .min(1, "must not be empty")
      .max(256, "must be at most 256 characters")
      .regex(/^[^\p{Cc}]*$/u, "must not hold control characters")
      .optional(),
    status: z.enum(CERTIFICATE_STATUSES, oneOf(CERTIFICATE_STATUSES)).optional(),
    profile: z.string().min(1).max(64).optional(),
    requester: z.string().min(1).max(128).optional(),
    expiresBefore: DateTime.optional(),
    expiresAfter: DateTime.optional(),
    sort: z.enum(CERTIFICATE_SORTS, oneOf(CERTIFICATE_SORTS)).optional(),
    limit: decimalInt(1, MAX_PAGE).default(DEFAULT_PAGE),
    cursor: z
      .string()
      .max(1024)
      .regex(/^[A-Za-z0-9_-]+$/, "is not a cursor this coordinator gave out")
      .optional(),
    format: z.enum(["json", "csv"], oneOf(["json", "csv"])).optional(),
  })
  .strict();

const FORMATS = ["json", "pem", "der"] as const;
const GetQuery = z.object({ format: z.enum(FORMATS, oneOf(FORMATS)).optional() }).strict();

const PEM_CHAIN = "application/pem-certificate-chain";
const PKIX_CERT = "application/pkix-cert";

/**
 * Registers the routes on the coordinator's router (one router, so the OpenAPI test sees them).
 * `readers` is the route table's reader resolver, built on first use.
 */
export function certificateRoutes(r: Router, s: CoordinatorServices, readers: () => Readers): void {
  let inventory: CertificateInventory | undefined;
  const inv = () => (inventory ??= new CertificateInventory(s.store, () => s.caCertificate()));
  const owner = (reader: Reader) => (reader.kind === "requester" ? reader.name : undefined);

  r.get("/api/v1/certificates", async (req, res) => {
    const reader = await readers().require(req, ["admin", "custodian", "requester"], "certificates");
    const { format, ...q } = parseQuery(ListQuery, req.query, "invalid certificate query");
    const page = await inv().list(q, owner(reader));
    if (page.next !== null) res.links({ next: nextUrl(req, page.next) });
    res.vary("Accept");
    if (
      (format ?? (req.accepts(["application/json", "text/csv"]) === "text/csv" ? "csv" : "json")) === "csv"
    ) {
      res.type("text/csv; charset=utf-8; header=present").send(toCsv(page.certificates));
      return;
    }
    res.json(CertificateListSchema.parse(page));
  });

  r.get("/api/v1/certificates/:serial", async (req, res) => {
    const reader = await readers().require(req, ["admin", "custodian", "requester"], "certificates");
    const { format } = parseQuery(GetQuery, req.query, "invalid certificate query");
    const c = await inv().get(String(req.params.serial), owner(reader));
    res.vary("Accept");
    const accepted = req.accepts(["application/json", PEM_CHAIN, PKIX_CERT]);
    const chosen = format ?? (accepted === PEM_CHAIN ? "pem" : accepted === PKIX_CERT ? "der" : "json");
    if (chosen === "pem") res.type(PEM_CHAIN).send(c.pem);
    else if (chosen === "der") res.type(PKIX_CERT).send(Buffer.from(c.der));
    else res.json(CertificateDetailSchema.parse({ ...c.view, pem: c.pem }));
  });
}

/** This list's URL with `cursor` replaced (RFC 8288 Link rel="next", for CSV readers). */
function nextUrl(req: Request, cursor: string): string {
  const u = new URL(req.originalUrl, "http://x");
  u.searchParams.set("cursor", cursor);
  return u.pathname + u.search;
}
