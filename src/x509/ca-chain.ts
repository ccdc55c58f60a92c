// tca under an existing root (intermediate mode, docs/intermediate.md): what makes a CA certificate
// for the threshold key acceptable, and the constraints it and its chain put on what tca signs.
//
// - checkCaInstall: the checks the coordinator makes before it installs a certificate an external
//   root issued for the CA key, and each custodian makes again before it adopts it: the key is the
//   group key, it is a CA (RFC 5280 §4.2.1.9, §4.2.1.3), its subject is ca-config's CA subject byte
//   for byte (every leaf's issuer, §4.1.2.4), each certificate is signed by the next one up to a
//   self-signed root (node:crypto's X509Certificate does the signature and issuer checks), every
//   certificate is valid now, path lengths allow one more level below tca, and the root is the
//   pinned one when ca-config pins it.
// - issuerConstraintsProblem: the lint a custodian runs before it signs under such a certificate:
//   path length (no CA certificate under a pathLenConstraint that forbids it) and name
//   constraints (§4.2.1.10) of the tca CA certificate and of every certificate in its chain.
import { X509Certificate, createHash } from "node:crypto";
import { TAG, bytesEqual, fromPem, seq } from "./der.ts";
import { children, expectTag, readDer, DerReadError, type Tlv } from "./der-read.ts";
import { X509Error } from "./errors.ts";
import { OID } from "./oids.ts";
import { splitCertificate } from "./assemble.ts";
import { readBasicConstraints, readKeyUsageBits, readTbs, type ParsedTbs } from "./tbs-read.ts";
import { ed25519Spki } from "./tbs.ts";
import { decodeGeneralNames } from "./sans.ts";
import { commonNames, derToName } from "./names.ts";
import { ipToBytes } from "./ip.ts";
import { dnsNameProblem } from "./name-syntax.ts";

const KEY_CERT_SIGN = 5; // KeyUsage bit (§4.2.1.3)

/** One GeneralSubtree base (§4.2.1.10) in the forms tca issues; others are kept as "other". */
export type Subtree =
  | { type: "dns" | "email" | "uri"; value: string }
  | { type: "ip"; address: Uint8Array; mask: Uint8Array }
  | { type: "dn"; rdns: Uint8Array[] }
  | { type: "other" };

export interface CaCertFacts {
  der: Uint8Array;
  tbs: ParsedTbs;
  subject: string;
  /** SHA-256 of the DER certificate, lowercase hex (what `ca.externalRoot.sha256` pins). */
  sha256: string;
  isCa: boolean;
  pathLen?: number;
  keyCertSign: boolean;
  /** Issuer and subject are the same name (§6.1: self-issued). */
  selfIssued: boolean;
  nameConstraints?: { permitted: Subtree[]; excluded: Subtree[] };
}

const sha256Hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Reads what the checks need from one DER certificate; throws CERT_MALFORMED naming `what`. */
export function caCertFacts(der: Uint8Array, what: string): CaCertFacts {
  let tbs: ParsedTbs;
  try {
    tbs = readTbs(splitCertificate(der).tbs);
  } catch (e) {
    throw new X509Error("CERT_MALFORMED", `${what} is not a DER certificate: ${(e as Error).message}.`);
  }
  const ext = (oid: string) => tbs.extensions.find((e) => e.oid === oid);
  const facts: CaCertFacts = {
    der,
    tbs,
    subject: safeName(tbs.subjectDer),
    sha256: sha256Hex(der),
    isCa: false,
    keyCertSign: false,
    selfIssued: bytesEqual(tbs.subjectDer, tbs.issuerDer),
  };
  try {
    const bc = ext(OID.basicConstraints);
    if (bc) {
      const v = readBasicConstraints(bc.value);
      facts.isCa = v.ca;
      if (v.pathLen !== undefined) facts.pathLen = v.pathLen;
    }
    const ku = ext(OID.keyUsage);
    // §4.2.1.3: without keyUsage, a key may be used for any purpose.
    facts.keyCertSign = ku ? readKeyUsageBits(ku.value).includes(KEY_CERT_SIGN) : true;
    const nc = ext(OID.nameConstraints);
    if (nc) facts.nameConstraints = readNameConstraints(nc.value);
  } catch (e) {
    throw new X509Error(
      "CERT_MALFORMED",
      `${what} has an extension that cannot be read: ${(e as Error).message}.`,
    );
  }
  return facts;
}

function safeName(der: Uint8Array): string {
  try {
    return derToName(der);
  } catch {
    return "(unreadable name)";
  }
}

/** NameConstraints ::= SEQUENCE { permittedSubtrees [0] OPTIONAL, excludedSubtrees [1] OPTIONAL }. */
function readNameConstraints(value: Uint8Array): { permitted: Subtree[]; excluded: Subtree[] } {
  const out = { permitted: [] as Subtree[], excluded: [] as Subtree[] };
  for (const part of children(expectTag(readDer(value), TAG.SEQUENCE, "NameConstraints"))) {
    const list = part.tag === 0xa0 ? out.permitted : part.tag === 0xa1 ? out.excluded : undefined;
    if (!list) throw new DerReadError("NameConstraints holds a field other than [0] and [1]");
    for (const gs of children(part)) {
      const [base] = children(expectTag(gs, TAG.SEQUENCE, "GeneralSubtree"));
      if (!base) throw new DerReadError("a GeneralSubtree has no base");
      list.push(readSubtreeBase(base));
    }
  }
  return out;
}

function readSubtreeBase(gn: Tlv): Subtree {
  const ascii = () => Buffer.from(gn.value).toString("latin1").toLowerCase();
  switch (gn.tag) {
    case 0x81:
      return { type: "email", value: ascii() };
    case 0x82:
      return { type: "dns", value: ascii() };
    case 0x86:
      return { type: "uri", value: ascii() };
    case 0x87: {
      // §4.2.1.10: an address and a mask, 8 octets for IPv4 and 32 for IPv6.
      const n = gn.value.length / 2;
      if (n !== 4 && n !== 16) throw new DerReadError("an iPAddress constraint is not 8 or 32 octets");
      return { type: "ip", address: gn.value.slice(0, n), mask: gn.value.slice(n) };
    }
    case 0xa4: {
      const [name] = children(gn); // directoryName [4] EXPLICIT Name
      return { type: "dn", rdns: children(expectTag(name, TAG.SEQUENCE, "Name")).map((r) => r.raw) };
    }
    default:
      return { type: "other" };
  }
}

// ---- installing a CA certificate --------------------------------------------------------------

export interface CaInstallInput {
  /** The certificate the external CA issued for the tca key (PEM or DER). */
  certificate: string | Uint8Array;
  /** Its issuer first, up to and including a self-signed root (PEM bundle, or DERs). */
  chain: string | readonly Uint8Array[];
  /** The raw 32-byte Ed25519 group key. */
  caPublicKey: Uint8Array;
  /** ca-config's CA subject, DER (nameToDer(ca.subject)). */
  caSubjectDer: Uint8Array;
  /** ca-config's `ca.externalRoot.sha256`, when it pins the root. */
  pinnedRootSha256?: string;
  now: Date;
}

export interface CheckedCaInstall {
  certificate: Uint8Array;
  /** Issuer first, root last. */
  chain: Uint8Array[];
  facts: CaCertFacts;
  root: CaCertFacts;
}

/** Most certificates a chain may hold above the tca CA. */
export const MAX_CHAIN = 8;

const refuse = (message: string, field?: string): never => {
  throw new X509Error("CERT_MALFORMED", message, field);
};

/**
 * Splits a PEM bundle into DER certificates, in order. Text between blocks (what `openssl x509
 * -text` writes) is ignored, as openssl does; a block of another kind is refused.
 */
export function pemCertificates(pem: string, what: string): Uint8Array[] {
  const blocks = pem.match(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?-----END [A-Z0-9 ]+-----/g) ?? [];
  if (blocks.length === 0) refuse(`${what} holds no PEM certificate`);
  return blocks.map((b) => fromPem(b, ["CERTIFICATE"], "CERT_MALFORMED"));
}

/**
 * Every check of an external CA certificate for the tca key and its chain (see the file comment).
 * Throws X509Error with a sentence naming the first problem; returns the parsed pieces.
 */
export function checkCaInstall(input: CaInstallInput): CheckedCaInstall {
  const certDer =
    typeof input.certificate === "string"
      ? one(pemCertificates(input.certificate, "the CA certificate"), "the CA certificate")
      : input.certificate;
  const chain =
    typeof input.chain === "string" ? pemCertificates(input.chain, "the chain") : [...input.chain];
  if (chain.length === 0) refuse("the chain is empty: give the issuer's certificate up to the root");
  if (chain.length > MAX_CHAIN) refuse(`the chain has ${chain.length} certificates; at most ${MAX_CHAIN}`);
  const facts = caCertFacts(certDer, "the CA certificate");
  const chainFacts = chain.map((d, i) => caCertFacts(d, `chain certificate ${i + 1}`));

  if (!bytesEqual(facts.tbs.spkiDer, ed25519Spki(input.caPublicKey)))
    refuse("the CA certificate is for another key than this CA's threshold key", "subjectPublicKeyInfo");
  if (!facts.isCa)
    refuse("the CA certificate is not a CA certificate (basicConstraints cA is not TRUE, RFC 5280 §4.2.1.9)");
  if (!facts.keyCertSign)
    refuse("the CA certificate's keyUsage lacks keyCertSign (RFC 5280 §4.2.1.3)", "keyUsage");
  if (!facts.tbs.extensions.some((e) => e.oid === OID.subjectKeyIdentifier))
    refuse(
      "the CA certificate has no subjectKeyIdentifier, which RFC 5280 §4.2.1.2 requires of CA certificates (openssl: subjectKeyIdentifier=hash)",
      "subjectKeyIdentifier",
    );
  if (!bytesEqual(facts.tbs.subjectDer, input.caSubjectDer))
    refuse(
      `the CA certificate's subject "${facts.subject}" is not ca-config's CA subject "${safeName(input.caSubjectDer)}" byte for byte: every certificate tca issues names that subject as its issuer`,
      "subject",
    );

  const all = [facts, ...chainFacts];
  const nodes = all.map((f) => new X509Certificate(Buffer.from(f.der)));
  for (let i = 0; i < chainFacts.length; i++) {
    const child = all[i]!;
    const parent = chainFacts[i]!;
    const childName = i === 0 ? "the CA certificate" : `chain certificate ${i}`;
    if (!parent.isCa || !parent.keyCertSign)
      refuse(`chain certificate ${i + 1} ("${parent.subject}") is not a CA that may sign certificates`);
    if (!nodes[i]!.checkIssued(nodes[i + 1]!) || !nodes[i]!.verify(nodes[i + 1]!.publicKey))
      refuse(
        `${childName} ("${child.subject}") is not signed by chain certificate ${i + 1} ("${parent.subject}"): give the chain issuer first, up to the root`,
      );
    // §4.2.1.9: chain certificate i+1 is followed in every path by the CA certificates below it
    // (the tca CA and the chain certificates between), then the leaf; it must allow them.
    const below = all.slice(0, i + 1).filter((f) => !f.selfIssued).length;
    if (parent.pathLen !== undefined && parent.pathLen < below)
      refuse(
        `chain certificate ${i + 1}'s pathLenConstraint ${parent.pathLen} does not allow the tca CA below it`,
      );
  }
  const root = chainFacts.at(-1)!;
  const rootNode = nodes.at(-1)!;
  if (!root.selfIssued || !rootNode.verify(rootNode.publicKey))
    refuse(
      `the chain does not end at a self-signed root: its last certificate ("${root.subject}") is not self-signed`,
    );
  for (const [i, f] of all.entries()) {
    const name = i === 0 ? "the CA certificate" : `chain certificate ${i}`;
    if (input.now < f.tbs.notBefore.date)
      refuse(`${name} ("${f.subject}") is not valid before ${f.tbs.notBefore.date.toISOString()}`);
    if (input.now > f.tbs.notAfter.date)
      refuse(`${name} ("${f.subject}") expired at ${f.tbs.notAfter.date.toISOString()}`);
  }
  if (input.pinnedRootSha256 !== undefined && root.sha256 !== input.pinnedRootSha256.toLowerCase())
    refuse(
      `the chain ends at root "${root.subject}" (SHA-256 ${root.sha256}), not at the root ca-config pins (ca.externalRoot.sha256 ${input.pinnedRootSha256})`,
    );
  return { certificate: certDer, chain, facts, root };
}

function one(list: Uint8Array[], what: string): Uint8Array {
  if (list.length !== 1) refuse(`${what} must be one certificate; got ${list.length}`);
  return list[0]!;
}

// ---- the lint before signing under it ---------------------------------------------------------

/**
 * Why a TBSCertificate must not be signed under `issuers` (the tca CA certificate first, then its
 * chain up to the root), or undefined. Path length: a CA certificate needs every certificate above
 * it to allow one more CA below (§4.2.1.9). Name constraints (§4.2.1.10) of every one of them:
 * each dNSName, iPAddress, rfc822Name and URI in the SAN, each CN that is a DNS name or an IP
 * address (as browsers and openssl check it), and the subject (against directoryName subtrees)
 * must lie within some permitted subtree of its form, when there are any, and in no excluded one.
 */
export function issuerConstraintsProblem(tbs: ParsedTbs, issuers: readonly Uint8Array[]): string | undefined {
  const facts = issuers.map((d, i) =>
    caCertFacts(d, i === 0 ? "the CA certificate" : `chain certificate ${i}`),
  );
  const bc = tbs.extensions.find((e) => e.oid === OID.basicConstraints);
  if (bc && readBasicConstraints(bc.value).ca) {
    let below = 0; // non-self-issued CA certificates between issuer i and the new one, exclusive
    for (const [i, f] of facts.entries()) {
      if (f.pathLen !== undefined && f.pathLen < below + 1)
        return `${i === 0 ? "the CA certificate" : `chain certificate ${i} ("${f.subject}")`} has pathLenConstraint ${f.pathLen}: no CA certificate may be issued under it (RFC 5280 §4.2.1.9)`;
      if (!f.selfIssued) below++;
    }
  }
  const names = namesOf(tbs);
  for (const [i, f] of facts.entries()) {
    const nc = f.nameConstraints;
    if (!nc) continue;
    const who = i === 0 ? "the CA certificate's" : `chain certificate ${i}'s ("${f.subject}")`;
    for (const n of names) {
      const permitted = nc.permitted.filter((s) => s.type === n.type);
      if (permitted.length > 0 && !permitted.some((s) => within(n, s)))
        return `${n.label} is outside ${who} permitted name constraints (${permitted.map(show).join(", ")}; RFC 5280 §4.2.1.10)`;
      const hit = nc.excluded.find((s) => s.type === n.type && (within(n, s) || wildcardReaches(n, s)));
      if (hit)
        return `${n.label} is inside ${who} excluded name constraint ${show(hit)} (RFC 5280 §4.2.1.10)`;
    }
  }
  return undefined;
}

type Named =
  | { type: "dns" | "email" | "uri"; value: string; label: string }
  | { type: "ip"; bytes: Uint8Array; label: string }
  | { type: "dn"; rdns: Uint8Array[]; label: string };

function namesOf(tbs: ParsedTbs): Named[] {
  const out: Named[] = [];
  const san = tbs.extensions.find((e) => e.oid === OID.subjectAltName);
  for (const s of san ? decodeGeneralNames(san.value, "LINT_FAILED") : []) {
    if (s.type === "ip") {
      const bytes = ipToBytes(s.value);
      if (bytes) out.push({ type: "ip", bytes, label: `IP address ${s.value}` });
    } else out.push({ type: s.type, value: s.value.toLowerCase(), label: `${LABEL[s.type]} ${s.value}` });
  }
  // §4.2.1.10 constrains SANs; checking the CN too is what browsers and openssl do where the CN
  // could be taken as a host name: an IP address, or a DNS name of two labels or more ("alice" is
  // a person's name, not a host; openssl's cn2dnsid asks for a dot likewise). Unlike openssl, such
  // a CN is checked even beside a dNSName: refusing costs little, a client that reads it may not.
  for (const cn of commonNames(tbs.subjectDer)) {
    const bytes = ipToBytes(cn);
    if (bytes) out.push({ type: "ip", bytes, label: `subject CN ${cn}` });
    else if (cn.replace(/\.$/, "").includes(".") && dnsNameProblem(cn) === undefined)
      out.push({ type: "dns", value: cn.toLowerCase(), label: `subject CN ${cn}` });
  }
  const rdns = children(readDer(tbs.subjectDer)).map((r) => r.raw);
  if (rdns.length > 0) out.push({ type: "dn", rdns, label: `subject "${safeName(tbs.subjectDer)}"` });
  return out;
}

const LABEL = { dns: "DNS name", email: "email address", uri: "URI" } as const;

/**
 * A wildcard dNSName "*.B" stands for every "x.B" with one label x (RFC 6125 §6.4.3): an excluded
 * subtree "x.B" (the name and its subdomains) covers one of them, so the wildcard may not be signed
 * though "*.B" itself is not inside it. (A subtree B or above is caught by `within`; ".x.B" names
 * only subdomains of x.B, which one label cannot reach.)
 */
function wildcardReaches(n: Named, s: Subtree): boolean {
  if (n.type !== "dns" || s.type !== "dns" || !n.value.startsWith("*.")) return false;
  const base = n.value.slice(2).replace(/\.$/, "");
  const c = s.value.replace(/\.$/, "");
  if (c.startsWith(".") || !c.endsWith(`.${base}`)) return false;
  return !c.slice(0, -base.length - 1).includes(".");
}

/** DNS: the constraint's labels end the name; a leading "." asks for a proper subdomain. */
function dnsWithin(name: string, c: string): boolean {
  const n = name.replace(/\.$/, "");
  c = c.replace(/(.)\.$/, "$1");
  if (c === "") return true;
  if (c.startsWith(".")) return n.endsWith(c);
  return n === c || n.endsWith(`.${c}`);
}

function within(n: Named, s: Subtree): boolean {
  if (n.type === "dns" && s.type === "dns") return dnsWithin(n.value, s.value);
  if (n.type === "email" && s.type === "email") {
    // A mailbox, a host (exactly), or ".domain" (any host under it).
    if (s.value.includes("@")) return n.value === s.value;
    const host = n.value.slice(n.value.lastIndexOf("@") + 1).replace(/\.$/, "");
    return s.value.startsWith(".") ? host.endsWith(s.value) : host === s.value;
  }
  if (n.type === "uri" && s.type === "uri") {
    let host: string;
    try {
      // "host." is the same host as "host" (an absolute DNS name): it must not escape a subtree.
      host = new URL(n.value).hostname.toLowerCase().replace(/\.$/, "");
    } catch {
      return false; // a URI without a host never lies within a host constraint
    }
    return s.value.startsWith(".") ? host.endsWith(s.value) : host === s.value;
  }
  if (n.type === "ip" && s.type === "ip") {
    if (n.bytes.length !== s.address.length) return false;
    return n.bytes.every((b, i) => (b & s.mask[i]!) === (s.address[i]! & s.mask[i]!));
  }
  if (n.type === "dn" && s.type === "dn")
    return (
      s.rdns.length <= n.rdns.length && s.rdns.every((r, i) => canonicalRdn(r) === canonicalRdn(n.rdns[i]!))
    );
  return false;
}

/** Directory string tags (X.520) whose values compare as text. */
const TEXT_TAGS: Record<number, BufferEncoding | "bmp" | "universal"> = {
  0x0c: "utf8", // UTF8String
  0x13: "latin1", // PrintableString
  0x16: "latin1", // IA5String
  0x14: "latin1", // TeletexString (as openssl reads it)
  0x1e: "bmp", // BMPString, UTF-16BE
  0x1c: "universal", // UniversalString, UTF-32BE
};

function decodeText(tag: number, value: Uint8Array): string | undefined {
  const enc = TEXT_TAGS[tag];
  if (enc === undefined) return undefined;
  if (enc === "bmp") return Buffer.from(value).swap16().toString("utf16le");
  if (enc === "universal") {
    let out = "";
    for (let i = 0; i + 4 <= value.length; i += 4)
      out += String.fromCodePoint(((value[i]! << 24) | (value[i + 1]! << 16) | (value[i + 2]! << 8) | value[i + 3]!) >>> 0); // prettier-ignore
    return out;
  }
  return Buffer.from(value).toString(enc);
}

/**
 * An RDN in a form that compares as RFC 5280 §7.1 asks of name constraints (and openssl does):
 * text values whatever their string type, case-folded, with leading, trailing and repeated
 * whitespace removed; other values byte for byte; the attributes of a multi-valued RDN in any order.
 */
function canonicalRdn(raw: Uint8Array): string {
  try {
    const atvs = children(readDer(raw)).map((atv) => {
      const [type, value] = children(atv);
      const text = value ? decodeText(value.tag, value.value) : undefined;
      const v =
        text !== undefined
          ? `t:${text.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase()}`
          : `b:${Buffer.from(value?.raw ?? []).toString("hex")}`;
      return `${Buffer.from(type?.raw ?? []).toString("hex")}=${v}`;
    });
    return atvs.sort().join("+");
  } catch {
    return `raw:${Buffer.from(raw).toString("hex")}`;
  }
}

function show(s: Subtree): string {
  switch (s.type) {
    case "dns":
      return `DNS:${s.value}`;
    case "email":
      return `email:${s.value}`;
    case "uri":
      return `URI:${s.value}`;
    case "ip":
      return `IP:${Array.from(s.address).join(s.address.length === 4 ? "." : ":")}/${Array.from(s.mask).join(s.mask.length === 4 ? "." : ":")}`;
    case "dn":
      return `dirName:${safeName(seq(...s.rdns))}`;
    default:
      return "another name form";
  }
}
