// Distinguished names. A subject string from ca-config is RFC 4514 text ("CN=Example Root CA,
// O=Example"); @peculiar/x509's Name turns it into DER (RFC 5280 §4.1.2.4 / §4.1.2.6).
// Its parser is lenient (it accepts "garbage" as an empty name and "CN=a,,O=b"), so the
// string is checked first: every RDN must be TYPE=value with a known type and a non-empty value.
// The encoding is deterministic: the same string always yields the same bytes.
//
// Reading a DER Name (for display and name policy) is on every request's path, so the common
// shape is read here with the strict DER reader: RDNs of single-byte-tagged AttributeTypeAndValue
// pairs whose values are UTF8String, PrintableString or IA5String (RFC 5280 §4.1.2.4). The text
// is exactly what @peculiar/x509's Name renders for those bytes (same type names, same escaping);
// any other shape (other string types, empty RDNs, odd OIDs, invalid UTF-8, non-DER lengths) is
// handed to @peculiar/x509 itself, so every input reads as it did before.
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs it loaded first
import { Name } from "@peculiar/x509";
import { X509Error } from "./errors.ts";
import { TAG, toArrayBuffer, u8 } from "./der.ts";
import { children, readDer, simpleOid } from "./der-read.ts";

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

/** One attribute of an RDN: @peculiar/x509's type name (or dotted OID) and its string value. */
interface NameAttr {
  type: string;
  value: string;
}

/** The short names @peculiar/x509's Name gives attribute types (its `names` registry). */
const SHORT_NAMES = new Map<string, string>([
  ["2.5.4.3", "CN"],
  ["2.5.4.7", "L"],
  ["2.5.4.8", "ST"],
  ["2.5.4.10", "O"],
  ["2.5.4.11", "OU"],
  ["2.5.4.6", "C"],
  ["0.9.2342.19200300.100.1.25", "DC"],
  ["1.2.840.113549.1.9.1", "E"],
  ["2.5.4.42", "G"],
  ["2.5.4.43", "I"],
  ["2.5.4.4", "SN"],
  ["2.5.4.12", "T"],
]);

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A string value's text, or undefined to leave the value to @peculiar/x509. */
function stringValue(tag: number, c: Uint8Array): string | undefined {
  if (c.length > 4096) return undefined; // asn1js decodes via Function#apply, which has limits
  let ascii = true;
  for (let i = 0; i < c.length; i++) if (c[i]! >= 0x80) ascii = false;
  const latin1 = () => Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("latin1");
  switch (tag) {
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
      return latin1(); // asn1js: one character per octet
    case TAG.UTF8_STRING:
      if (ascii) return latin1();
      try {
        return utf8Strict.decode(c); // valid UTF-8 decodes the same way in asn1js
      } catch {
        return undefined; // asn1js falls back to one character per octet: leave it to it
      }
    default:
      return undefined;
  }
}

/** The RDNs of a DER Name in the common shape, or undefined for anything else. */
function readNameFast(der: Uint8Array): NameAttr[][] | undefined {
  try {
    const top = readDer(der);
    if (top.tag !== TAG.SEQUENCE) return undefined;
    const rdns: NameAttr[][] = [];
    for (const set of children(top)) {
      if (set.tag !== TAG.SET) return undefined;
      const rdn: NameAttr[] = [];
      for (const atv of children(set)) {
        if (atv.tag !== TAG.SEQUENCE) return undefined;
        const parts = children(atv);
        if (parts.length !== 2 || parts[0]!.tag !== TAG.OID) return undefined;
        const oid = simpleOid(parts[0]!.value);
        const value = stringValue(parts[1]!.tag, parts[1]!.value);
        if (oid === undefined || value === undefined) return undefined;
        rdn.push({ type: SHORT_NAMES.get(oid) ?? oid, value });
      }
      if (rdn.length === 0) return undefined;
      rdns.push(rdn);
    }
    return rdns;
  } catch {
    return undefined; // not DER in our strict sense: let @peculiar/x509 read (or refuse) it
  }
}

/** @peculiar/x509's Name view of a DER Name: per RDN, values grouped by type name. */
function rdnGroups(der: Uint8Array): Array<Record<string, string[]>> {
  const fast = readNameFast(der);
  if (!fast) return new Name(toArrayBuffer(der)).toJSON();
  return fast.map((rdn) => {
    const group: Record<string, string[]> = {};
    for (const a of rdn) (group[a.type] ??= []).push(a.value);
    return group;
  });
}

/** RFC 4514 escaping exactly as @peculiar/x509's Name#toString does it (first control character only). */
function escapeValue(data: string): string {
  return data
    .replace(/([,+"\\<>;])/g, "\\$1")
    .replace(/^([ #])/, "\\$1")
    .replace(/([ ]$)/, "\\$1")
    .replace(/([\r\n\t])/, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}

/** DER Name -> RFC 4514 string for display. */
export function derToName(der: Uint8Array): string {
  const fast = readNameFast(der);
  if (!fast) return new Name(toArrayBuffer(der)).toString();
  return fast.map((rdn) => rdn.map((a) => `${a.type}=${escapeValue(a.value)}`).join("+")).join(", ");
}

/** The CN values of a DER Name, in order (for name policy). */
export function commonNames(der: Uint8Array): string[] {
  const out: string[] = [];
  for (const rdn of rdnGroups(der)) {
    for (const [type, values] of Object.entries(rdn)) if (type === "CN") out.push(...values);
  }
  return out;
}

/** True if some RDN holds more than one attribute ("CN=a+CN=b"): names that tools read differently. */
export function hasMultiValuedRdn(der: Uint8Array): boolean {
  return rdnGroups(der).some((rdn) => Object.values(rdn).reduce((n, v) => n + v.length, 0) > 1);
}

/** True if the Name carries the legacy emailAddress attribute (PKCS #9, 1.2.840.113549.1.9.1). */
export function hasSubjectEmail(der: Uint8Array): boolean {
  return rdnGroups(der).some((rdn) => "E" in rdn);
}

/** For tests: whether `der` takes the fast path. */
export function nameReadsFast(der: Uint8Array): boolean {
  return readNameFast(der) !== undefined;
}

/** An empty Name is SEQUENCE {} (30 00): RFC 5280 §4.1.2.6 then requires a critical SAN. */
export function isEmptyName(der: Uint8Array): boolean {
  return der.length === 2 && der[0] === 0x30 && der[1] === 0x00;
}

/**
 * RFC 5280 Appendix A.1 upper bounds on subject attribute values, in characters, keyed by the
 * short name this module reads them as (or the dotted OID where it has none). countryName is
 * exactly two characters (ISO 3166 alpha-2); domainComponent is one DNS label (RFC 4519 §2.4,
 * RFC 1034 §3.1).
 */
export const NAME_UPPER_BOUNDS: ReadonlyMap<
  string,
  { attribute: string; bound: string; max: number; min?: number }
> = new Map([
  ["CN", { attribute: "commonName", bound: "ub-common-name", max: 64 }],
  ["L", { attribute: "localityName", bound: "ub-locality-name", max: 128 }],
  ["ST", { attribute: "stateOrProvinceName", bound: "ub-state-name", max: 128 }],
  ["O", { attribute: "organizationName", bound: "ub-organization-name", max: 64 }],
  ["OU", { attribute: "organizationalUnitName", bound: "ub-organizational-unit-name", max: 64 }],
  ["C", { attribute: "countryName", bound: "ub-country-name-alpha-length", max: 2, min: 2 }],
  ["T", { attribute: "title", bound: "ub-title", max: 64 }],
  ["2.5.4.5", { attribute: "serialNumber", bound: "ub-serial-number", max: 64 }],
  ["2.5.4.65", { attribute: "pseudonym", bound: "ub-pseudonym", max: 128 }],
  ["E", { attribute: "emailAddress", bound: "ub-emailaddress-length", max: 255 }],
  ["SN", { attribute: "surname", bound: "ub-name", max: 32768 }],
  ["G", { attribute: "givenName", bound: "ub-name", max: 32768 }],
  ["I", { attribute: "initials", bound: "ub-name", max: 32768 }],
  ["DC", { attribute: "domainComponent", bound: "a DNS label (RFC 4519 §2.4)", max: 63 }],
]);

/**
 * The first attribute of a DER Name outside its RFC 5280 upper bound, as a sentence naming the
 * attribute, its length and the bound; undefined when every attribute is within bounds.
 */
export function nameBoundProblem(der: Uint8Array): string | undefined {
  for (const rdn of rdnGroups(der)) {
    for (const [type, values] of Object.entries(rdn)) {
      const b = NAME_UPPER_BOUNDS.get(type);
      if (!b) continue;
      for (const v of values) {
        const length = [...v].length; // characters (code points), not octets
        if (length > b.max || length < (b.min ?? 1))
          return b.min === b.max
            ? `${b.attribute} (${type}) has ${length} characters; it must have exactly ${b.max} (RFC 5280 Appendix A.1, ${b.bound})`
            : `${b.attribute} (${type}) has ${length} characters; at most ${b.max} are allowed (RFC 5280 Appendix A.1, ${b.bound} = ${b.max})`;
      }
    }
  }
  return undefined;
}
