// Syntax of the names tca puts in subjectAltName (RFC 5280 §4.2.1.6): dNSName in the
// "preferred name syntax" of RFC 1034 §3.5 as amended by RFC 1123 §2.1 (LDH labels), with a
// wildcard only as the whole leftmost label (RFC 6125 §6.4.3 / CA/B BR 7.1.2.7.12 practice);
// rfc822Name as an RFC 5321 Mailbox; URI as an absolute URI (RFC 3986 §4.3); iPAddress as
// IPv4 or IPv6 text.
import { ipToBytes } from "./ip.ts";

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/**
 * `s` with A-Z, and nothing else, in lower case: DNS names compare case-insensitively in ASCII only
 * (RFC 4343 §3). String#toLowerCase folds more (U+212A KELVIN SIGN to "k", for one), so a
 * name outside ASCII would compare equal to an ASCII one.
 */
export function asciiLowerCase(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Why `name` is not an acceptable dNSName, or undefined when it is. */
export function dnsNameProblem(name: string, allowWildcard = true): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > 253) return "it is longer than 253 characters";
  if (name.endsWith(".")) return "it ends with a dot";
  const labels = name.split(".");
  if (labels[0] === "*") {
    if (!allowWildcard) return "a wildcard is not allowed here";
    // "*.com": a wildcard must sit above at least two labels.
    if (labels.length < 3) return "a wildcard must be followed by at least two labels (not *.tld)";
    labels.shift();
  }
  for (const l of labels) {
    if (l.includes("*")) return "a wildcard may only be the whole leftmost label";
    if (!LABEL.test(l))
      return `label "${l}" is not 1-63 letters, digits or hyphens (not starting or ending with a hyphen)`;
  }
  if (/^\d+$/.test(labels.at(-1)!))
    return "the last label is all digits (an IP address belongs in an IP SAN)";
  return undefined;
}

export function ipProblem(value: string): string | undefined {
  return ipToBytes(value) ? undefined : "it is not an IPv4 or IPv6 address";
}

const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/; // RFC 5321 Dot-string

export function emailProblem(value: string): string | undefined {
  const at = value.lastIndexOf("@");
  if (at <= 0) return "it has no local part and @domain";
  const local = value.slice(0, at);
  if (local.length > 64 || !LOCAL.test(local))
    return `the local part "${local}" is not a plain RFC 5321 dot-string`;
  const d = dnsNameProblem(value.slice(at + 1), false);
  return d ? `its domain is not valid: ${d}` : undefined;
}

export function uriProblem(value: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+$/.test(value))
    return "it is not an absolute URI of printable ASCII (scheme:rest)";
  try {
    new URL(value);
  } catch {
    return "it does not parse as a URI";
  }
  return undefined;
}

/**
 * Requester name patterns: "*" matches anything; "*.suffix" matches any name ending in
 * ".suffix" (any depth, including a wildcard name there); anything else matches exactly.
 * DNS names compare case-insensitively (RFC 4343).
 */
export function matchesPattern(name: string, pattern: string): boolean {
  const n = name.toLowerCase();
  const p = pattern.toLowerCase();
  if (p === "*") return true;
  if (p.startsWith("*.")) return n.endsWith(p.slice(1)) && n.length > p.length - 1;
  return n === p;
}
