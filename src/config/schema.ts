// The CA's declared truth (docs/architecture.md §1): every node loads the same ca-config and checks what the
// coordinator announces against its own copy. Unknown keys are refused so a typo never silently
// weakens a policy.
import { z } from "zod";

const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/, "must be base64url without padding");
const key32 = b64url.refine((s) => Buffer.from(s, "base64url").length === 32, "must encode 32 bytes");
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "must be a lowercase hex SHA-256");
const name = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "lowercase letters, digits and '-', 1-32 chars");

export const CustodianEntrySchema = z
  .object({
    name,
    /** Ed25519 identity key: signs every envelope this custodian sends (docs/architecture.md §3.3). */
    signingKey: key32,
    /** X25519 identity key, for messages encrypted to this custodian outside a ceremony. */
    hpkeKey: key32,
  })
  .strict();

export const KeyTypeSchema = z.enum(["rsa", "ec-p256", "ec-p384", "ec-p521", "ed25519", "ed448"]);
export const KeyUsageSchema = z.enum([
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "cRLSign",
]);
export const ExtKeyUsageSchema = z.enum([
  "serverAuth",
  "clientAuth",
  "codeSigning",
  "emailProtection",
  "timeStamping",
  "ocspSigning",
]);

/**
 * The longest validity of a certificate with id-pkix-ocsp-nocheck: 7 days. Its holder can vouch for
 * any certificate of this CA until it expires (docs/ocsp.md).
 */
export const OCSP_NOCHECK_MAX_HOURS = 168;

/** The one requester that may be granted a profile with ocspSigning: the coordinator's responder (docs/ocsp.md). */
export const OCSP_RESPONDER_REQUESTER = "ocsp";

export const ProfileSchema = z
  .object({
    description: z.string().optional(),
    /** Upper bound on notAfter - notBefore, in hours; the coordinator picks within it. */
    maxValidityHours: z.number().int().positive(),
    /** What a request gets when it asks for nothing else. */
    defaultValidityHours: z.number().int().positive(),
    keyTypes: z.array(KeyTypeSchema).min(1),
    rsaMinBits: z.number().int().min(2048).default(2048),
    rsaMaxBits: z.number().int().max(8192).default(4096),
    keyUsage: z.array(KeyUsageSchema).min(1),
    extKeyUsage: z.array(ExtKeyUsageSchema).default([]),
    /** basicConstraints cA; pathLen only for CA profiles. */
    ca: z.boolean().default(false),
    pathLen: z.number().int().min(0).max(8).optional(),
    /** Which SAN kinds a CSR may carry under this profile. */
    sans: z
      .object({
        dns: z.boolean().default(false),
        ip: z.boolean().default(false),
        email: z.boolean().default(false),
        uri: z.boolean().default(false),
        max: z.number().int().min(0).max(100).default(20),
        requireOne: z.boolean().default(false),
      })
      .strict()
      .default({ dns: false, ip: false, email: false, uri: false, max: 20, requireOne: false }),
    /** RFC 5280 §4.2.1.10 name constraints written into CA certificates of this profile. */
    nameConstraints: z
      .object({
        permittedDns: z.array(z.string()).default([]),
        excludedDns: z.array(z.string()).default([]),
      })
      .strict()
      .optional(),
    /**
     * Writes id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): for the coordinator's delegated OCSP
     * responder certificate (docs/ocsp.md). Relying parties never check such a certificate's own
     * revocation, so it must be short-lived, ocspSigning and not a CA.
     */
    ocspNoCheck: z.boolean().default(false),
  })
  .strict()
  .refine(
    (p) => p.defaultValidityHours <= p.maxValidityHours,
    "defaultValidityHours exceeds maxValidityHours",
  )
  .refine((p) => !p.ocspNoCheck || (p.extKeyUsage.includes("ocspSigning") && !p.ca), {
    message: "ocspNoCheck needs extKeyUsage [ocspSigning] and ca: false (RFC 6960 §4.2.2.2)",
    path: ["ocspNoCheck"],
  })
  .refine((p) => !p.ocspNoCheck || p.maxValidityHours <= OCSP_NOCHECK_MAX_HOURS, {
    message: `ocspNoCheck certificates cannot be revoked in any way a relying party checks: maxValidityHours at most ${OCSP_NOCHECK_MAX_HOURS} (7 days)`,
    path: ["maxValidityHours"],
  });

/**
 * Whether certificates of this profile can sign OCSP answers for this CA (RFC 6960 §4.2.2.2):
 * extKeyUsage ocspSigning (ocspNoCheck requires it). Such a certificate is never renewed by its
 * holder, and only the coordinator's requester `ocsp` may get one (docs/ocsp.md).
 */
export function signsOcsp(p: Pick<Profile, "extKeyUsage" | "ocspNoCheck">): boolean {
  return p.ocspNoCheck || p.extKeyUsage.includes("ocspSigning");
}

export const RequesterSchema = z
  .object({
    name,
    /** SHA-256 of the bearer token; tokens themselves are never stored. */
    tokenSha256: sha256Hex,
    profiles: z.array(name).min(1),
    /**
     * Names the requester may ask for, every SAN and the CN: "*" (anything), DNS "*.svc.internal" or
     * exact, IP addresses exactly, emails exactly or "*@example.com", URIs exactly or "spiffe://x/*".
     */
    allowedNames: z.array(z.string()).default(["*"]),
    /**
     * The names this grant covers are this requester's alone: any other requester asking for one
     * is refused, by the coordinator and by every custodian. Set on `coordinator`, whose
     * certificate clients accept as the coordinator's (docs/tls.md); needs explicit allowedNames.
     */
    exclusive: z.boolean().default(false),
  })
  .strict()
  .refine((r) => !r.exclusive || !r.allowedNames.includes("*"), {
    message: 'an exclusive grant needs explicit allowedNames, not "*"',
    path: ["allowedNames"],
  });

/**
 * ACME (RFC 8555, docs/acme.md). Present = the coordinator serves ACME at /acme/directory. Every ACME
 * account acts under a requester grant of this file: the one its external account binding key was
 * made for, or `openRegistration.requester` for accounts registered without one.
 */
export const AcmeConfigSchema = z
  .object({
    /** Profiles ACME orders may use; the first is the default (an account's grant must include it too). */
    profiles: z.array(name).min(1),
    /**
     * Registration without external account binding (RFC 8555 §7.3.4), off when absent: such
     * accounts get this requester's grant (profiles and names) and nothing more.
     */
    openRegistration: z.object({ requester: name }).strict().optional(),
    /** Hours a new order and its authorizations stay usable before they expire. */
    orderLifetimeHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 30)
      .default(24),
    /** Hours a validated authorization may be used by the order it belongs to. */
    authorizationLifetimeHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 30)
      .default(24 * 7),
    /** New orders one account may create in any hour (RFC 8555 §6.6 rateLimited beyond). */
    ordersPerHour: z.number().int().min(1).max(100_000).default(300),
    /** Identifiers one order may carry. */
    maxIdentifiers: z.number().int().min(1).max(100).default(20),
  })
  .strict();

export const CaConfigSchema = z
  .object({
    version: z.literal(1),
    ca: z
      .object({
        /** RFC 4514 string, e.g. "CN=Example Root CA, O=Example". */
        subject: z.string().min(3).max(512),
        rootValidityDays: z.number().int().min(1).max(36500),
        /** Base URL of the coordinator as clients reach it; written into AIA / CRL DP extensions. */
        publicUrl: z.string().url().optional(),
        /** nextUpdate - thisUpdate of every CRL; custodians refuse longer (docs/architecture.md §3.9). */
        crlValidityHours: z
          .number()
          .int()
          .min(1)
          .max(24 * 90)
          .default(168),
        /**
         * Intermediate mode (docs/intermediate.md): the external root tca's CA certificate must chain
         * to, by the SHA-256 of its DER. With it, a CA certificate whose chain ends at any other root
         * is refused by the coordinator and by every custodian.
         */
        externalRoot: z.object({ sha256: sha256Hex }).strict().optional(),
      })
      .strict(),
    threshold: z.number().int().min(2),
    custodians: z.array(CustodianEntrySchema).min(2).max(64),
    admins: z.array(z.object({ name, tokenSha256: sha256Hex }).strict()).default([]),
    requesters: z.array(RequesterSchema).default([]),
    profiles: z.record(name, ProfileSchema).default({}),
    acme: AcmeConfigSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.threshold > c.custodians.length) {
      ctx.addIssue({
        code: "custom",
        message: `threshold ${c.threshold} exceeds the ${c.custodians.length} custodians`,
        path: ["threshold"],
      });
    }
    const seen = new Set<string>();
    for (const [i, cu] of c.custodians.entries()) {
      if (seen.has(cu.name))
        ctx.addIssue({
          code: "custom",
          message: `duplicate custodian ${cu.name}`,
          path: ["custodians", i, "name"],
        });
      seen.add(cu.name);
    }
    for (const [i, r] of c.requesters.entries()) {
      for (const p of r.profiles) {
        if (!(p in c.profiles))
          ctx.addIssue({
            code: "custom",
            message: `requester ${r.name} is granted unknown profile ${p}`,
            path: ["requesters", i, "profiles"],
          });
      }
    }
    // A certificate with ocspSigning answers OCSP for every certificate of this CA (RFC 6960
    // §4.2.2.2): only the coordinator's responder, requester `ocsp`, may get one, never a CA
    // certificate, and never through ACME, where anyone who proves a name could ask (docs/ocsp.md).
    const ocspProfiles = new Set(
      Object.entries(c.profiles)
        .filter(([, p]) => signsOcsp(p))
        .map(([n]) => n),
    );
    for (const n of ocspProfiles)
      if (c.profiles[n]!.ca)
        ctx.addIssue({
          code: "custom",
          message: `profile ${n} is a CA profile with extKeyUsage ocspSigning: a CA does not delegate OCSP to a CA certificate (RFC 6960 §4.2.2.2)`,
          path: ["profiles", n, "extKeyUsage"],
        });
    for (const [i, r] of c.requesters.entries()) {
      const granted = r.profiles.filter((p) => ocspProfiles.has(p));
      if (granted.length > 0 && r.name !== OCSP_RESPONDER_REQUESTER)
        ctx.addIssue({
          code: "custom",
          message: `requester ${r.name} is granted ${granted.join(", ")}, with extKeyUsage ocspSigning: its holder could answer OCSP for every certificate of this CA; grant such profiles to "${OCSP_RESPONDER_REQUESTER}" alone (docs/ocsp.md)`,
          path: ["requesters", i, "profiles"],
        });
    }
    if (c.acme) {
      for (const [i, p] of c.acme.profiles.entries()) {
        if (!(p in c.profiles))
          ctx.addIssue({
            code: "custom",
            message: `acme.profiles names unknown profile ${p}`,
            path: ["acme", "profiles", i],
          });
        else if (ocspProfiles.has(p))
          ctx.addIssue({
            code: "custom",
            message: `acme.profiles names profile ${p}, with extKeyUsage ocspSigning: OCSP responder certificates are not issued through ACME (docs/ocsp.md)`,
            path: ["acme", "profiles", i],
          });
      }
      const open = c.acme.openRegistration?.requester;
      if (open) {
        const r = c.requesters.find((x) => x.name === open);
        if (!r)
          ctx.addIssue({
            code: "custom",
            message: `acme.openRegistration names unknown requester ${open}`,
            path: ["acme", "openRegistration", "requester"],
          });
        else if (r.profiles.some((p) => ocspProfiles.has(p)))
          ctx.addIssue({
            code: "custom",
            message: `acme.openRegistration names requester ${open}, which is granted a profile with extKeyUsage ocspSigning: accounts registered without a binding must not act under it (docs/ocsp.md)`,
            path: ["acme", "openRegistration", "requester"],
          });
        else if (!r.profiles.some((p) => c.acme!.profiles.includes(p)))
          ctx.addIssue({
            code: "custom",
            message: `acme.openRegistration requester ${open} is granted none of acme.profiles`,
            path: ["acme", "openRegistration", "requester"],
          });
      }
    }
  });

export type CaConfig = z.infer<typeof CaConfigSchema>;
export type CustodianEntry = z.infer<typeof CustodianEntrySchema>;
export type Profile = z.infer<typeof ProfileSchema>;
export type KeyType = z.infer<typeof KeyTypeSchema>;
export type Requester = z.infer<typeof RequesterSchema>;
export type AcmeConfig = z.infer<typeof AcmeConfigSchema>;
