// The searchable columns of an issued certificate (the inventory: GET /api/v1/certificates), read
// from the certificate's own bytes when it is stored (and by migration 0006 for certificates stored
// before). What is read: the subject (RFC 4514 text) and its first CN (RFC 5280 §4.1.2.6), the
// subject alternative names in order (§4.2.1.6), the key type (ca-config's names, RSA with its
// size), and `names`: the CN and every SAN value lowercased, each between newlines, so that one
// case-insensitive LIKE finds a substring of any single name and never one spanning two.
import { z } from "zod";
import { splitCertificate } from "../../x509/assemble.ts";
import { keyTypeOf, loadSpki } from "../../x509/keys.ts";
import { commonNames, derToName } from "../../x509/names.ts";
import { OID } from "../../x509/oids.ts";
import { decodeGeneralNames, type San } from "../../x509/sans.ts";
import { readTbs } from "../../x509/tbs-read.ts";

export interface InventoryColumns {
  subject: string;
  subject_cn: string | null;
  /** JSON of the SANs, [{type, value}], in the certificate's order. */
  sans: string;
  names: string;
  key_type: string;
}

/** The separator between names in the `names` column (a search term may not contain it). */
export const NAME_SEPARATOR = "\n";

/**
 * The inventory columns of a DER certificate; null if it does not parse (never the case for a
 * certificate tca released, which it parsed and verified first; tolerated for hand-made rows).
 */
export function inventoryColumns(certDer: Uint8Array): InventoryColumns | null {
  try {
    const t = readTbs(splitCertificate(certDer).tbs);
    const san = t.extensions.find((e) => e.oid === OID.subjectAltName)?.value;
    const sans: San[] = san ? decodeGeneralNames(san, "TBS_MALFORMED") : [];
    const cn = commonNames(t.subjectDer)[0] ?? null;
    const [type, bits] = keyTypeOf(loadSpki(t.spkiDer));
    const all = [...(cn !== null ? [cn] : []), ...sans.map((s) => s.value)].map((n) => n.toLowerCase());
    return {
      subject: derToName(t.subjectDer),
      subject_cn: cn,
      sans: JSON.stringify(sans),
      names: NAME_SEPARATOR + all.join(NAME_SEPARATOR) + NAME_SEPARATOR,
      key_type: type === "rsa" ? `rsa-${bits}` : type,
    };
  } catch {
    return null;
  }
}

const SansSchema = z.array(
  z.object({ type: z.enum(["dns", "ip", "email", "uri"]), value: z.string() }).strict(),
);

/** The `sans` column back as SANs ([] when empty or unreadable). */
export function readSans(column: string | null): San[] {
  if (!column) return [];
  try {
    const r = SansSchema.safeParse(JSON.parse(column));
    return r.success ? r.data : [];
  } catch {
    return [];
  }
}
