// `tca init`: writes a ca-config directory from a few answers (CA subject, custodians and their
// roster entries, threshold, profiles from templates, admins and requesters). Tokens are random
// (crypto.randomBytes), handed to the caller once, and only their SHA-256 goes into the file, the
// way the coordinator compares them (docs/security-model.md). The file is parsed by the same
// loader `tca serve` and `tca custodian dkg` use before and after it is written, so what this
// reports as written is what they accept. Nothing here prompts or prints: the CLI does that.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { isIP } from "node:net";
import { dirname, join, relative, resolve, sep } from "node:path";
import { Document, isScalar, parse as parseYaml, stringify as toYaml, visit } from "yaml";
import { sha256Hex } from "../common/hash.ts";
import { ConfigError } from "./errors.ts";
import { loadCaConfig, parseCaConfig } from "./load.ts";
import { placeholderCustodians, placeholderKey } from "./placeholders.ts";
import { CustodianEntrySchema, type CustodianEntry } from "./schema.ts";

/** A bad answer: the CLI reports it as a usage error (exit 2). */
export class InitSpecError extends Error {}

export const PROFILE_TEMPLATES = ["server", "client", "intermediate"] as const;
export type ProfileTemplate = (typeof PROFILE_TEMPLATES)[number];

/** The ca-config file inside the directory. */
export const CONFIG_FILE = "ca.yaml";

export interface InitSpec {
  /** The ca-config directory; the file is DIR/ca.yaml. */
  dir: string;
  /** The root's common name, and optionally its organization and country (RFC 4514 subject). */
  caName: string;
  caOrg?: string | undefined;
  caCountry?: string | undefined;
  rootValidityDays: number;
  /** Base URL clients reach the coordinator at (CRL distribution point and AIA in leaves). */
  publicUrl?: string | undefined;
  /** Custodian names in roster order. */
  custodians: string[];
  /** Roster entries known now (from `tca custodian init`); the others are written as placeholders. */
  entries: CustodianEntry[];
  threshold: number;
  profiles: ProfileTemplate[];
  /** DNS suffix requesters may ask names under, and the intermediate profile's name constraint. */
  domain?: string | undefined;
  requesters: string[];
  admins: string[];
  /** Names of the coordinator's own certificate (`tca serve --tls auto --tls-name`). */
  tlsNames: string[];
  /** Where token files go (mode 0600); without it the tokens are returned to be printed once. */
  tokenDir?: string | undefined;
}

export const INIT_DEFAULTS = {
  dir: "ca-config",
  rootValidityDays: 3650,
  profiles: ["server", "client"] as ProfileTemplate[],
  admins: ["admin"],
  custodians: ["alice", "bob", "carol"],
} as const;

/** The ca-config requester the coordinator's own TLS certificate comes from (docs/tls.md). */
export const SELF_TLS_REQUESTER = "coordinator";
/** The requester, profile and CN of the OCSP responder's delegated certificate (docs/ocsp.md). */
export const OCSP_REQUESTER = "ocsp";
export const OCSP_PROFILE = "ocsp-responder";
export const OCSP_SUBJECT_CN = "tca OCSP responder";

/**
 * The OCSP responder's profile (docs/ocsp.md): a P-256 key, ocspSigning, id-pkix-ocsp-nocheck, 4
 * days (at most 7: config validation refuses more), renewed by the coordinator at two thirds.
 */
export function ocspResponderProfile(): Record<string, unknown> {
  return {
    description: "The coordinator's delegated OCSP responder (RFC 6960 §4.2.2.2), renewed at 2/3 of its life",
    defaultValidityHours: 96,
    maxValidityHours: 168,
    keyTypes: ["ec-p256"],
    keyUsage: ["digitalSignature"],
    extKeyUsage: ["ocspSigning"],
    ocspNoCheck: true,
  };
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const DNS_LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/** A t-of-n default: a majority. */
export const majority = (n: number): number => Math.floor(n / 2) + 1;

/** Splits "a, b,c" into ["a", "b", "c"], dropping empty parts. */
export function splitList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function checkName(kind: string, n: string): void {
  if (!NAME.test(n))
    throw new InitSpecError(
      `${kind} name "${n}": use lowercase letters, digits and '-', 1-32 characters, starting with a letter`,
    );
}

export function checkUnique(kind: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new InitSpecError(`${kind} "${n}" is named twice`);
    seen.add(n);
  }
}

/** RFC 4514 §2.4: escapes a value's special characters so the subject parses back to it. */
export function escapeRdnValue(v: string): string {
  let out = v.replace(/[\\"+,;<>=]/g, (c) => `\\${c}`);
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`;
  if (out.endsWith(" ")) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** The root's RFC 4514 subject from CN, O and C (RFC 5280 Appendix A.1 bounds: 64, 64, 2). */
export function caSubject(cn: string, o?: string, c?: string): string {
  const parts: string[] = [];
  const add = (type: string, value: string | undefined, max: number, label: string): void => {
    if (value === undefined || value.trim() === "") return;
    const v = value.trim();
    if (v.length > max)
      throw new InitSpecError(`${label} is ${v.length} characters; RFC 5280 allows at most ${max}`);
    if ([...v].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f))
      throw new InitSpecError(`${label} contains a control character`);
    parts.push(`${type}=${escapeRdnValue(v)}`);
  };
  if (cn.trim() === "") throw new InitSpecError("the CA name (--ca-name) is empty");
  add("CN", cn, 64, "--ca-name");
  add("O", o, 64, "--ca-org");
  if (c !== undefined && c.trim() !== "" && !/^[A-Za-z]{2}$/.test(c.trim()))
    throw new InitSpecError(`--ca-country "${c}": give a two-letter ISO 3166 code such as US or DE`);
  add("C", c?.toUpperCase(), 2, "--ca-country");
  return parts.join(", ");
}

/** Normalizes a domain ("*.example.internal", ".Example.Internal" → "example.internal"). */
export function normalizeDomain(d: string): string {
  const v = d
    .trim()
    .toLowerCase()
    .replace(/^\*?\./, "");
  if (!DNS_NAME.test(v)) throw new InitSpecError(`--domain "${d}": not a DNS name such as example.internal`);
  return v;
}

export function checkTlsName(n: string): void {
  if (isIP(n) !== 0) return;
  if (!DNS_NAME.test(n.toLowerCase()))
    throw new InitSpecError(`--tls-name "${n}": not a DNS name or IP address`);
}

/**
 * A profile from its template, with the defaults of ca-config/ca.yaml: 30-day leaves (90 at most),
 * every key type, serverAuth or clientAuth; intermediates 5 years (10 at most), pathLen 0 and,
 * with a domain, constrained to it (RFC 5280 §4.2.1.10).
 */
export function profileTemplate(name: ProfileTemplate, domain?: string): Record<string, unknown> {
  const leafKeys = ["rsa", "ec-p256", "ec-p384", "ec-p521", "ed25519", "ed448"];
  switch (name) {
    case "server":
      return {
        description: "TLS server certificates for internal services",
        defaultValidityHours: 720,
        maxValidityHours: 2160,
        keyTypes: leafKeys,
        keyUsage: ["digitalSignature", "keyEncipherment"],
        extKeyUsage: ["serverAuth"],
        sans: { dns: true, ip: true, max: 20, requireOne: true },
      };
    case "client":
      return {
        description: "TLS client certificates (mTLS) for services and people",
        defaultValidityHours: 720,
        maxValidityHours: 2160,
        keyTypes: leafKeys,
        keyUsage: ["digitalSignature"],
        extKeyUsage: ["clientAuth"],
        sans: { dns: true, email: true, uri: true, max: 20 },
      };
    case "intermediate":
      return {
        description: domain === undefined ? "Subordinate CAs" : `Subordinate CAs, constrained to ${domain}`,
        defaultValidityHours: 43800,
        maxValidityHours: 87600,
        keyTypes: ["ec-p256", "ec-p384", "ed25519"],
        keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"],
        ca: true,
        pathLen: 0,
        ...(domain === undefined ? {} : { nameConstraints: { permittedDns: [`.${domain}`] } }),
      };
  }
}

/**
 * A roster entry from what `tca custodian init` printed: its JSON (`--json`), its text (the
 * `- name: … signingKey: … hpkeKey: …` lines), or a YAML/JSON object with those three fields.
 */
export function parseCustodianEntry(text: string, source: string): CustodianEntry {
  const trimmed = text.trim();
  let raw: unknown;
  if (trimmed.startsWith("{")) {
    try {
      raw = JSON.parse(trimmed);
    } catch (e) {
      throw new InitSpecError(`${source}: not valid JSON: ${(e as Error).message}`);
    }
  } else {
    const field = (k: string): string | undefined =>
      new RegExp(`^\\s*(?:-\\s+)?${k}:\\s*["']?([^"'\\s#]+)["']?\\s*(?:#.*)?$`, "m").exec(trimmed)?.[1];
    raw = { name: field("name"), signingKey: field("signingKey"), hpkeKey: field("hpkeKey") };
  }
  if (typeof raw !== "object" || raw === null)
    throw new InitSpecError(`${source}: expected a roster entry (name, signingKey, hpkeKey)`);
  const r = raw as Record<string, unknown>;
  const picked = { name: r.name, signingKey: r.signingKey, hpkeKey: r.hpkeKey };
  const missing = Object.entries(picked)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  if (missing.length > 0)
    throw new InitSpecError(
      `${source}: no ${missing.join(", ")} found; give the output of \`tca custodian init\` (text or --json)`,
    );
  const parsed = CustodianEntrySchema.safeParse(picked);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new InitSpecError(`${source}: ${i.path.join(".")}: ${i.message}`);
  }
  return parsed.data;
}

/** Checks the custodian names: 2 to 64, valid and distinct. */
export function checkCustodians(names: readonly string[]): void {
  if (names.length < 2 || names.length > 64)
    throw new InitSpecError(
      `--custodians: give 2 to 64 custodian names, comma-separated (got ${names.length})`,
    );
  for (const c of names) checkName("custodian", c);
  checkUnique("custodian", names);
}

/** Checks 1 < t <= n; returns a warning when t = n. */
export function checkThreshold(t: number, n: number): string[] {
  if (!Number.isInteger(t))
    throw new InitSpecError(`--threshold: a whole number from 2 to the ${n} custodians`);
  if (t === 1)
    throw new InitSpecError(
      "--threshold 1 would let any one custodian sign alone; tca needs 2 or more (1 < t <= n)",
    );
  if (t < 1 || t > n) throw new InitSpecError(`--threshold ${t}: must be from 2 to the ${n} custodians`);
  if (t === n)
    return [
      `threshold ${t} of ${n}: every custodian must sign every certificate and CRL, and losing any one share stops the CA for good; consider ${majority(n)} of ${n}`,
    ];
  return [];
}

/** Checks profile names against the templates. */
export function checkProfiles(profiles: readonly string[]): asserts profiles is ProfileTemplate[] {
  if (profiles.length === 0) throw new InitSpecError("--profiles: give at least one profile");
  for (const p of profiles)
    if (!(PROFILE_TEMPLATES as readonly string[]).includes(p))
      throw new InitSpecError(
        `--profiles: unknown profile "${p}"; templates: ${PROFILE_TEMPLATES.join(", ")}`,
      );
  checkUnique("profile", profiles);
}

/** Checks the answers; returns warnings worth showing. Throws InitSpecError naming the bad one. */
export function checkSpec(spec: InitSpec): string[] {
  const warnings: string[] = [];
  caSubject(spec.caName, spec.caOrg, spec.caCountry);
  if (!Number.isInteger(spec.rootValidityDays) || spec.rootValidityDays < 1 || spec.rootValidityDays > 36500)
    throw new InitSpecError(`--root-validity-days: a whole number of days from 1 to 36500`);
  if (spec.publicUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(spec.publicUrl);
    } catch {
      throw new InitSpecError(
        `--public-url "${spec.publicUrl}": not a URL such as https://ca.example.internal`,
      );
    }
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new InitSpecError(`--public-url "${spec.publicUrl}": use an http:// or https:// URL`);
  }

  if (spec.domain !== undefined) normalizeDomain(spec.domain);
  const n = spec.custodians.length;
  checkCustodians(spec.custodians);
  const keys = new Map<string, string>();
  const given = new Set<string>();
  for (const e of spec.entries) {
    if (!spec.custodians.includes(e.name))
      throw new InitSpecError(
        `--custodian-entry: the entry for "${e.name}" names no custodian in --custodians (${spec.custodians.join(", ")})`,
      );
    if (given.has(e.name)) throw new InitSpecError(`--custodian-entry: "${e.name}" is given twice`);
    given.add(e.name);
    for (const k of [e.signingKey, e.hpkeKey]) {
      const other = keys.get(k);
      if (other !== undefined)
        throw new InitSpecError(
          `--custodian-entry: ${e.name} and ${other} have the same key; each custodian runs its own \`tca custodian init\``,
        );
      keys.set(k, e.name);
    }
  }

  warnings.push(...checkThreshold(spec.threshold, n));

  checkProfiles(spec.profiles);

  for (const r of spec.requesters) checkName("requester", r);
  for (const a of spec.admins) checkName("admin", a);
  checkUnique("requester", spec.requesters);
  checkUnique("admin", spec.admins);
  if (spec.requesters.includes(SELF_TLS_REQUESTER))
    throw new InitSpecError(
      `requester name "${SELF_TLS_REQUESTER}" is kept for the coordinator's own TLS certificate: use --tls-name for that, another name otherwise`,
    );
  if (spec.requesters.includes(OCSP_REQUESTER))
    throw new InitSpecError(
      `requester name "${OCSP_REQUESTER}" is kept for the coordinator's OCSP responder (docs/ocsp.md): choose another name`,
    );
  if (spec.admins.length === 0)
    warnings.push(
      "no admin: nobody can start the key ceremony (tca ceremony start) or revoke any certificate",
    );
  if (spec.requesters.length === 0)
    warnings.push("no requester: nobody can request certificates until one is added (--requester NAME)");
  else if (spec.domain === undefined)
    warnings.push(
      'requesters may ask for any name (allowedNames: ["*"]); pass --domain to keep them under one',
    );
  if (spec.profiles.includes("intermediate") && spec.domain === undefined)
    warnings.push(
      "the intermediate profile has no name constraints: a subordinate CA could issue for any name; pass --domain",
    );

  for (const name of spec.tlsNames) checkTlsName(name);
  checkUnique("--tls-name", spec.tlsNames);
  if (spec.tlsNames.length > 0 && !spec.profiles.includes("server"))
    throw new InitSpecError("--tls-name needs the server profile: add server to --profiles");

  if (spec.tokenDir !== undefined) {
    const inside = relative(resolve(spec.dir), resolve(spec.tokenDir));
    if (inside === "" || (!inside.startsWith("..") && !inside.startsWith(sep)))
      throw new InitSpecError(
        `--token-dir ${spec.tokenDir} is inside --dir ${spec.dir}: ca-config is kept in git and copied to every node, tokens must not be`,
      );
  }
  return warnings;
}

export interface GeneratedToken {
  role: "admin" | "requester";
  name: string;
  /** The bearer token itself: shown once, never stored in ca-config. */
  token: string;
  /** Where it is written (mode 0600) when a token directory is given. */
  file?: string;
}

export interface InitPlan {
  spec: InitSpec;
  configPath: string;
  text: string;
  tokens: GeneratedToken[];
  /** Custodians written as placeholders, in roster order. */
  placeholders: string[];
  warnings: string[];
}

/** A token: 32 random bytes, base64url (43 characters, within the bearer token syntax). */
export const newToken = (random: (n: number) => Buffer = randomBytes): string =>
  random(32).toString("base64url");

/**
 * The ca-config text and the tokens for `spec`. Checked with the real loader before anything is
 * written (placeholders replaced by stand-in keys for that check only).
 */
export function planInit(spec: InitSpec, random: (n: number) => Buffer = randomBytes): InitPlan {
  const warnings = checkSpec(spec);
  const domain = spec.domain === undefined ? undefined : normalizeDomain(spec.domain);
  const byName = new Map(spec.entries.map((e) => [e.name, e]));
  const placeholders = spec.custodians.filter((c) => !byName.has(c));
  const tokens: GeneratedToken[] = [];
  const token = (role: GeneratedToken["role"], name: string): string => {
    const t = newToken(random);
    const file = spec.tokenDir === undefined ? undefined : join(spec.tokenDir, `${role}-${name}.token`);
    tokens.push({ role, name, token: t, ...(file === undefined ? {} : { file }) });
    return sha256Hex(t);
  };
  const leafProfiles = spec.profiles.filter((p) => p !== "intermediate");
  const granted = leafProfiles.length > 0 ? leafProfiles : spec.profiles;

  const raw = {
    version: 1,
    ca: {
      subject: caSubject(spec.caName, spec.caOrg, spec.caCountry),
      rootValidityDays: spec.rootValidityDays,
      ...(spec.publicUrl === undefined ? {} : { publicUrl: spec.publicUrl }),
    },
    threshold: spec.threshold,
    custodians: spec.custodians.map(
      (name) => byName.get(name) ?? { name, signingKey: placeholderKey(name), hpkeKey: placeholderKey(name) },
    ),
    admins: spec.admins.map((name) => ({ name, tokenSha256: token("admin", name) })),
    requesters: [
      ...spec.requesters.map((name) => ({
        name,
        tokenSha256: token("requester", name),
        profiles: granted,
        allowedNames: domain === undefined ? ["*"] : [`*.${domain}`],
      })),
      ...(spec.tlsNames.length === 0
        ? []
        : [
            {
              name: SELF_TLS_REQUESTER,
              // The coordinator submits its own request without a token (docs/tls.md), so the
              // token behind this hash is thrown away at once.
              tokenSha256: sha256Hex(newToken(random)),
              profiles: ["server"],
              allowedNames: spec.tlsNames,
              // Its names are its alone: no other requester can get a certificate that clients
              // would take for the coordinator's (docs/tls.md).
              exclusive: true,
            },
          ]),
      {
        name: OCSP_REQUESTER,
        // The coordinator asks for its OCSP responder certificate without a token (docs/ocsp.md).
        tokenSha256: sha256Hex(newToken(random)),
        profiles: [OCSP_PROFILE],
        allowedNames: [OCSP_SUBJECT_CN],
      },
    ],
    profiles: {
      ...Object.fromEntries(spec.profiles.map((p) => [p, profileTemplate(p, domain)])),
      [OCSP_PROFILE]: ocspResponderProfile(),
    },
  };

  const doc = new Document(raw);
  // Short lists of scalars on one line (`profiles: [server, client]`), as in ca-config/ca.yaml.
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  doc.commentBefore = [
    ` tca ca-config written by \`tca init\`: ${spec.threshold} of ${spec.custodians.length} custodians sign.`,
    " Every node keeps an identical copy: the coordinator (tca serve --config) and each custodian",
    " (HOME/ca-config.yaml). Its digest is compared at the key ceremony and signed into every approval,",
    " so change it only before the ceremony, or on every node at once. Reference: README, ca-config reference.",
    ...(placeholders.length === 0
      ? []
      : [
          "",
          ` NOT READY: the entries of ${placeholders.join(", ")} are placeholders ("${placeholderKey("NAME").split(" the")[0]}").`,
          " Each of them runs `tca custodian init --home DIR --name NAME` and sends the printed entry; put",
          " its signingKey and hpkeKey here. tca serve and tca custodian dkg refuse this file until then.",
        ]),
  ].join("\n");
  const tokenComment =
    " Only SHA-256 hashes of tokens are stored here; the tokens were shown once by tca init.";
  const admins = doc.get("admins", true) as { commentBefore?: string | null } | undefined;
  if (admins && spec.admins.length > 0) admins.commentBefore = tokenComment;
  const requesters = doc.get("requesters", true) as { commentBefore?: string | null } | undefined;
  if (requesters && spec.requesters.length > 0 && spec.admins.length === 0)
    requesters.commentBefore = tokenComment;
  const text = doc.toString({ lineWidth: 0, flowCollectionPadding: false });

  const configPath = join(spec.dir, CONFIG_FILE);
  checkText(text, configPath, placeholders);
  return { spec, configPath, text, tokens, placeholders, warnings };
}

/** A stand-in key (32 bytes, base64url), used only to check the rest of a file that has placeholders. */
const keyFor = (i: number, kind: string): string =>
  Buffer.from(sha256Hex(`tca init stand-in ${kind} ${i}`), "hex").toString("base64url");

/** Parses `text` with the real loader; with placeholders, checks the rest with stand-in keys. */
function checkText(text: string, source: string, placeholders: readonly string[]): void {
  try {
    if (placeholders.length === 0) {
      parseCaConfig(text, source);
      return;
    }
    const raw = parseYaml(text) as { custodians: { name: string; signingKey: string; hpkeKey: string }[] };
    if (placeholderCustodians(raw).join(",") !== placeholders.join(","))
      throw new ConfigError("CONFIG_INVALID", `${source}: the placeholders were not written as intended`);
    raw.custodians = raw.custodians.map((c, i) =>
      placeholders.includes(c.name) ? { ...c, signingKey: keyFor(i, "s"), hpkeKey: keyFor(i, "h") } : c,
    );
    parseCaConfig(toYaml(raw), source);
  } catch (e) {
    if (e instanceof ConfigError)
      throw new InitSpecError(`the generated ca-config does not load: ${e.message}`);
    throw e;
  }
}

export interface InitResult {
  configPath: string;
  /** The config digest every node compares; absent while placeholders remain. */
  digest?: string;
  tokenFiles: string[];
}

/** Files `plan` would overwrite. */
export function existingTargets(plan: InitPlan): string[] {
  return [plan.configPath, ...plan.tokens.flatMap((t) => (t.file === undefined ? [] : [t.file]))].filter(
    (f) => existsSync(f),
  );
}

/**
 * Writes an atomically replaced file: a temp file with an unpredictable name, created exclusively
 * (`wx`: never an existing file or a planted symlink) with `mode` from the start, then renamed.
 */
function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${randomBytes(8).toString("hex")}.tmp`;
  const fd = openSync(tmp, "wx", mode);
  try {
    fchmodSync(fd, mode); // the umask may have narrowed it; never wider than asked
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Token files go only into a directory nobody else can write to (or read). */
function checkTokenDir(dir: string): void {
  const st = statSync(dir);
  if (typeof process.getuid === "function" && st.uid !== process.getuid())
    throw new InitSpecError(`token directory ${dir} belongs to another user; choose a directory of your own`);
  if (st.mode & 0o077)
    throw new InitSpecError(
      `token directory ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); chmod 700 it or choose another`,
    );
}

/**
 * Writes the plan: refuses to overwrite anything without `force`, writes tokens (mode 0600, in a
 * directory of mode 0700) and ca.yaml, then loads ca.yaml back with the loader `tca serve` uses.
 */
export function writeInit(plan: InitPlan, o: { force: boolean }): InitResult {
  const existing = existingTargets(plan);
  if (existing.length > 0 && !o.force)
    throw new InitSpecError(
      `${existing.join(", ")} already exist${existing.length === 1 ? "s" : ""}; pass --force to overwrite`,
    );
  mkdirSync(dirname(plan.configPath), { recursive: true });
  const tokenFiles: string[] = [];
  for (const t of plan.tokens) {
    if (t.file === undefined) continue;
    mkdirSync(dirname(t.file), { recursive: true, mode: 0o700 });
    checkTokenDir(dirname(t.file));
    writeAtomic(t.file, `${t.token}\n`, 0o600);
    tokenFiles.push(t.file);
  }
  writeAtomic(plan.configPath, plan.text, 0o644);

  // Read back from disk with the real loader (README, ca-config reference).
  if (plan.placeholders.length === 0) {
    try {
      return { configPath: plan.configPath, digest: loadCaConfig(plan.configPath).digest, tokenFiles };
    } catch (e) {
      throw new InitSpecError(`${plan.configPath} was written but does not load: ${(e as Error).message}`);
    }
  }
  checkText(readFileSync(plan.configPath, "utf8"), plan.configPath, plan.placeholders);
  try {
    loadCaConfig(plan.configPath);
  } catch (e) {
    if (e instanceof ConfigError && e.message.includes("placeholder"))
      return { configPath: plan.configPath, tokenFiles };
    throw e;
  }
  throw new InitSpecError(`${plan.configPath}: the loader accepted placeholders it must refuse`);
}

export interface NextStep {
  what: string;
  commands: string[];
}

/** A path as the user would type it from here: relative when under the working directory. */
export function shownPath(p: string, cwd = process.cwd()): string {
  const abs = resolve(cwd, p);
  const rel = relative(cwd, abs);
  return rel === "" ? "." : rel.startsWith("..") || rel.startsWith(sep) ? abs : rel;
}

/** The rest of the key ceremony, as commands with this plan's paths. */
export function nextSteps(plan: InitPlan, cwd = process.cwd()): NextStep[] {
  const s = plan.spec;
  const config = shownPath(plan.configPath, cwd);
  const url = s.publicUrl?.replace(/\/+$/, "") ?? "http://127.0.0.1:8443";
  const home = "~/.tca/custodian";
  const steps: NextStep[] = [];
  if (plan.placeholders.length > 0)
    steps.push({
      what:
        `Each of ${plan.placeholders.join(", ")} creates a custodian identity on their own machine and sends the ` +
        `printed entry; put it into ${config} in place of its FILL IN keys (or run tca init again with --custodian-entry FILE for each, and --force)`,
      commands: plan.placeholders.map((c) => `tca custodian init --home ${home} --name ${c}`),
    });
  steps.push({
    what: `Give every custodian an identical copy of ${config} as HOME/ca-config.yaml (keep the file in git)`,
    commands: [`cp ${config} ${home}/ca-config.yaml`],
  });
  const tls = s.tlsNames.length > 0 ? ` --tls auto${s.tlsNames.map((n) => ` --tls-name ${n}`).join("")}` : "";
  steps.push({
    what: "Start the coordinator (add --host ADDRESS to listen beyond 127.0.0.1; serve TLS before that: README, TLS)",
    commands: [`tca serve --config ${config} --db tca.db${tls}`],
  });
  const admin = plan.tokens.find((t) => t.role === "admin");
  const adminToken =
    admin === undefined
      ? "<an admin token>"
      : admin.file === undefined
        ? `<the token of admin ${admin.name} above>`
        : `$(cat ${shownPath(admin.file, cwd)})`;
  steps.push({
    what: "Start the key ceremony (admin)",
    commands: [`TCA_ADMIN_TOKEN=${adminToken} tca ceremony start --coordinator ${url} --wait`],
  });
  steps.push({
    what: `Each custodian (${s.custodians.join(", ")}) takes part; ${s.threshold} of them then sign the root certificate`,
    commands: [`tca custodian dkg --home ${home} --coordinator ${url}`],
  });
  if (s.tlsNames.length > 0)
    steps.push({
      what:
        `The coordinator then requests its own TLS certificate as requester ${SELF_TLS_REQUESTER} (${s.tlsNames.join(", ")}): ` +
        `${s.threshold} custodians approve it like any request, or an agent policy rule does (docs/tls.md)`,
      commands: [
        `tca custodian requests --home ${home} --coordinator ${url}`,
        `tca custodian approve ID --home ${home} --coordinator ${url}`,
      ],
    });
  steps.push({
    what:
      `The coordinator's OCSP responder requests its delegated certificate as requester ${OCSP_REQUESTER} ` +
      `every few days: ${s.threshold} custodians approve it, or an agent policy rule does (docs/ocsp.md)`,
    commands: [
      `tca custodian requests --home ${home} --coordinator ${url}`,
      `tca custodian approve ID --home ${home} --coordinator ${url}`,
    ],
  });
  const req = plan.tokens.find((t) => t.role === "requester");
  if (req !== undefined) {
    const domain = s.domain === undefined ? "example.internal" : normalizeDomain(s.domain);
    const tokenArg = req.file === undefined ? `TCA_TOKEN=<the token of requester ${req.name} above> ` : "";
    const fileArg = req.file === undefined ? "" : ` --token-file ${shownPath(req.file, cwd)}`;
    steps.push({
      what: `Request a first certificate as ${req.name}; ${s.threshold} custodians approve it (tca custodian approve ID, or agents by policy: README, Setting up a real CA)`,
      commands: [`${tokenArg}tca request svc.${domain} --coordinator ${url}${fileArg}`],
    });
  }
  return steps;
}
