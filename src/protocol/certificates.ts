// The certificate inventory on the wire (GET /api/v1/certificates, docs/inventory.md): one issued
// certificate's record, a page of them, and their CSV form. Written once here; the coordinator
// renders with these schemas and `tca certificates` parses with them.
import { z } from "zod";

export const CERTIFICATE_STATUSES = ["valid", "expired", "revoked"] as const;
export const CertificateStatusSchema = z.enum(CERTIFICATE_STATUSES);
export type CertificateStatus = z.infer<typeof CertificateStatusSchema>;

/** Sort orders: by issue time or notAfter, ascending, or descending with a leading "-". */
export const CERTIFICATE_SORTS = ["issued", "-issued", "notAfter", "-notAfter"] as const;

export const CertificateViewSchema = z
  .object({
    /** Lowercase hex without the sign octet (src/x509/serial.ts displaySerial). */
    serial: z.string(),
    /** The subject, RFC 4514 text. */
    subject: z.string(),
    sans: z.array(z.object({ type: z.string(), value: z.string() })),
    profile: z.string(),
    requester: z.string(),
    requestId: z.string(),
    notBefore: z.string(),
    notAfter: z.string(),
    status: CertificateStatusSchema,
    /** When the certificate was revoked, and why (RFC 5280 §5.3.1 reason names); revoked only. */
    revokedAt: z.string().optional(),
    reason: z.string().optional(),
    /** ca-config's key type names (ec-p256, ed25519, rsa-2048, …). */
    keyType: z.string(),
  })
  .strict();
export type CertificateView = z.infer<typeof CertificateViewSchema>;

/** One certificate with its PEM chain (leaf first), as GET /api/v1/certificates/{serial} answers. */
export const CertificateDetailSchema = CertificateViewSchema.extend({ pem: z.string() }).strict();
export type CertificateDetail = z.infer<typeof CertificateDetailSchema>;

export const CertificateListSchema = z
  .object({
    certificates: z.array(CertificateViewSchema),
    /** The cursor of the next page, or null on the last page. */
    next: z.string().nullable(),
  })
  .strict();
export type CertificateList = z.infer<typeof CertificateListSchema>;

/** The CSV columns, in order (the header row). */
export const CSV_COLUMNS = [
  "serial",
  "subject",
  "sans",
  "profile",
  "requester",
  "requestId",
  "notBefore",
  "notAfter",
  "status",
  "revokedAt",
  "reason",
  "keyType",
] as const;

/**
 * One CSV field (RFC 4180 §2): quoted when it holds a comma, quote, CR or LF, quotes doubled. A
 * field a spreadsheet would run as a formula (starting with =, +, -, @, tab or CR: OWASP "CSV
 * Injection") gets a leading single quote first: certificate names come from requesters' CSRs.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** SANs in one cell: `type:value`, space-separated. */
export const sansCell = (sans: CertificateView["sans"]): string =>
  sans.map((s) => `${s.type}:${s.value}`).join(" ");

export function csvRow(c: CertificateView): string {
  const cells: Record<(typeof CSV_COLUMNS)[number], string> = {
    ...c,
    sans: sansCell(c.sans),
    revokedAt: c.revokedAt ?? "",
    reason: c.reason ?? "",
  };
  return CSV_COLUMNS.map((k) => csvField(cells[k])).join(",") + "\r\n";
}

export const CSV_HEADER = CSV_COLUMNS.join(",") + "\r\n";

/** A whole CSV document: the header row, then one row per certificate, CRLF line ends. */
export function toCsv(certificates: readonly CertificateView[]): string {
  return CSV_HEADER + certificates.map(csvRow).join("");
}
