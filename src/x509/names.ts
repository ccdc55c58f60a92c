// Distinguished names. A subject string from ca-config is RFC 4514 text ("CN=Example Root CA,
// O=Example"); @peculiar/x509's Name turns it into DER (RFC 5280 §4.1.2.4 / §4.1.2.6).
// Its parser is lenient (it accepts "garbage" as an empty name and "CN=a,,O=b"), so the
// string is checked first: every RDN must be TYPE=value with a known type and a non-empty value.
// The encoding is deterministic: the same string always yields the same bytes.
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs it loaded first
import { Name } from "@peculiar/x509";
import { X509Error } from "./errors.ts";
import { toArrayBuffer, u8 } from "./der.ts";

/** Splits on separators not escaped by a backslash (RFC 4514 §2.4). */
function splitUnescaped(s: string, seps: string): string[] {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "\\" && i + 1 < s.length) {
      cur += ch + s[i + 1];
      i++;
    } else if (seps.includes(ch)) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

/** RFC 4514 string -> DER Name. Throws NAME_INVALID naming the bad part. */
export function nameToDer(subject: string, field = "subject"): Uint8Array {
  const text = subject.trim();
  if (text === "")
    throw new X509Error(
      "NAME_INVALID",
      `The ${field} is empty; give a distinguished name such as "CN=Example CA".`,
      field,
    );
  for (const rdn of splitUnescaped(text, ",")) {
    for (const ava of splitUnescaped(rdn, "+")) {
      const m = ava.trim().match(/^([A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=\s*(.*)$/s);
      if (!m || m[2]!.trim() === "") {
        throw new X509Error(
          "NAME_INVALID",
          `The ${field} "${subject}" has a malformed part "${ava.trim()}"; each part must be TYPE=value.`,
          field,
        );
      }
    }
  }
  let der: Uint8Array;
  try {
    der = u8(new Name(text).toArrayBuffer());
  } catch (e) {
    throw new X509Error(
      "NAME_INVALID",
      `The ${field} "${subject}" is not a valid distinguished name: ${(e as Error).message}.`,
      field,
      { cause: e },
    );
  }
  return der;
}

/** DER Name -> RFC 4514 string for display. */
export function derToName(der: Uint8Array): string {
  return new Name(toArrayBuffer(der)).toString();
}

/** The CN values of a DER Name, in order (for name policy). */
export function commonNames(der: Uint8Array): string[] {
  const out: string[] = [];
  for (const rdn of new Name(toArrayBuffer(der)).toJSON()) {
    for (const [type, values] of Object.entries(rdn)) if (type === "CN") out.push(...values);
  }
  return out;
}

/** True if some RDN holds more than one attribute ("CN=a+CN=b"): names that tools read differently. */
export function hasMultiValuedRdn(der: Uint8Array): boolean {
  return new Name(toArrayBuffer(der))
    .toJSON()
    .some((rdn) => Object.values(rdn).reduce((n, v) => n + v.length, 0) > 1);
}

/** True if the Name carries the legacy emailAddress attribute (PKCS #9, 1.2.840.113549.1.9.1). */
export function hasSubjectEmail(der: Uint8Array): boolean {
  return new Name(toArrayBuffer(der)).toJSON().some((rdn) => "E" in rdn);
}

/** An empty Name is SEQUENCE {} (30 00): RFC 5280 §4.1.2.6 then requires a critical SAN. */
export function isEmptyName(der: Uint8Array): boolean {
  return der.length === 2 && der[0] === 0x30 && der[1] === 0x00;
}
