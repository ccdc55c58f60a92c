// What a custodian checks before it approves or signs a certificate (docs/architecture.md §3.2): it
// re-derives the TBSCertificate from the CSR, its own ca-config profile and CA certificate, and the
// coordinator's serial and validity, which it bounds; it lints the result as a CA would before issuing.
import { createHash } from "node:crypto";
import type { LoadedConfig } from "../config/load.ts";
import { LeafParamsSchema, type LeafParams } from "../protocol/approval.ts";
import type { SigningTask } from "../protocol/signing-messages.ts";
import { hexToBytes } from "../threshold/encoding.ts";
import { parseCsr } from "../x509/csr.ts";
import { checkExclusiveNames, checkRequest, checkValidity } from "../x509/policy.ts";
import { checkSerial } from "../x509/serial.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import { buildLeafTbs } from "../x509/leaf.ts";
import { lintTbs } from "../x509/lint.ts";
import { issuerConstraintsProblem } from "../x509/ca-chain.ts";
import { readTbs } from "../x509/tbs-read.ts";
import { refuse, type TbsDeriver } from "./signer.ts";
import type { Journal } from "./journal.ts";

/**
 * How far behind this custodian's clock a notBefore may lie when it approves. The TBS (and so its
 * notBefore) is fixed when the request is submitted, and a person may approve hours later; a day
 * bounds how far a compromised coordinator can backdate. Older requests must be submitted again.
 */
export const NOT_BEFORE_PAST_MS = 24 * 3_600_000;
export const NOT_BEFORE_FUTURE_MS = 5 * 60_000;

/** How a refusal under the issuers' path-length or name constraints begins (docs/intermediate.md). */
export const ISSUER_CONSTRAINTS = "the certificate would break its issuers' constraints";

export const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Re-derives a leaf TBS, checking the request against this custodian's own policy. */
export function deriveLeafTbs(
  config: LoadedConfig,
  caCertDer: Uint8Array,
  p: LeafParams,
  opts: {
    now?: number;
    checkNotBefore?: boolean;
    /** Intermediate mode: the chain above the CA certificate (issuer first), docs/intermediate.md. */
    chain?: readonly Uint8Array[];
  } = {},
): Uint8Array {
  const c = config.config;
  const profile = c.profiles[p.profile];
  if (!profile) refuse(`profile "${p.profile}" is not in my ca-config`);
  const requester = c.requesters.find((r) => r.name === p.requester);
  if (!requester) refuse(`requester "${p.requester}" is not in my ca-config`);
  if (!requester.profiles.includes(p.profile))
    refuse(`requester ${p.requester} is not granted the "${p.profile}" profile in my ca-config`);
  const csr = parseCsr(Buffer.from(p.csr, "base64"));
  checkRequest(csr, profile, requester);
  checkExclusiveNames(csr, requester.name, c.requesters);
  const serial = hexToBytes(p.serial);
  checkSerial(serial);
  const ca = readCaCert(caCertDer);
  const notBefore = new Date(p.notBefore);
  const notAfter = new Date(p.notAfter);
  checkValidity({ notBefore, notAfter, profile, caNotAfter: ca.notAfter });
  if (opts.checkNotBefore) {
    const now = opts.now ?? Date.now();
    if (notBefore.getTime() > now + NOT_BEFORE_FUTURE_MS)
      refuse(`notBefore ${p.notBefore} lies in the future`);
    if (notBefore.getTime() < now - NOT_BEFORE_PAST_MS)
      refuse(`notBefore ${p.notBefore} is more than 24 hours in the past: submit the request again`);
  }
  const tbs = buildLeafTbs({
    csr,
    profile,
    caCertDer,
    serial,
    notBefore,
    notAfter,
    publicUrl: c.ca.publicUrl,
  });
  lintTbs(tbs, { caSubjectDer: ca.subjectDer, caSkiHex: ca.skiHex });
  // Path length and name constraints of the CA certificate and of every certificate above it
  // (RFC 5280 §4.2.1.9, §4.2.1.10): nothing is signed that a relying party would refuse under them.
  const outside = issuerConstraintsProblem(readTbs(tbs), [caCertDer, ...(opts.chain ?? [])]);
  if (outside) refuse(`${ISSUER_CONSTRAINTS}: ${outside}`);
  return tbs;
}

/**
 * TBS bytes this custodian derived itself when it reviewed a request, kept so that signing compares
 * bytes instead of deriving a second time. Bounded; a miss (a restart, another process) derives again.
 */
export class DerivedTbsCache {
  /** Keyed by request id; holds a hash of the parameters (not the CSR itself) and the TBS. */
  readonly #map = new Map<string, { params: string; tbs: Uint8Array }>();
  constructor(private readonly max = 5_000) {}
  put(p: LeafParams, tbs: Uint8Array): void {
    if (this.#map.size >= this.max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(p.requestId, { params: paramsKey(p), tbs });
  }
  /** The bytes derived for exactly these parameters (every field must match what was reviewed). */
  get(p: LeafParams): Uint8Array | undefined {
    const hit = this.#map.get(p.requestId);
    return hit && hit.params === paramsKey(p) ? hit.tbs : undefined;
  }
  delete(requestId: string): void {
    this.#map.delete(requestId);
  }
}
const paramsKey = (p: LeafParams) =>
  sha256Hex(
    new TextEncoder().encode(
      [p.requestId, p.requester, p.profile, p.csr, p.serial, p.notBefore, p.notAfter].join("\n"),
    ),
  );

/** At signing time: the same derivation, plus this custodian's own unexpired approval of these bytes. */
export function leafTbsDeriver(
  config: LoadedConfig,
  caCertDer: Uint8Array,
  journal: Journal,
  cache?: DerivedTbsCache,
  chain: readonly Uint8Array[] = [],
): TbsDeriver {
  return (job: SigningTask) => {
    const p = LeafParamsSchema.safeParse(job.params);
    if (!p.success) refuse("leaf job parameters are malformed");
    if (job.subjectRef !== p.data.requestId) refuse("leaf job names another request than its parameters");
    const tbs = cache?.get(p.data) ?? deriveLeafTbs(config, caCertDer, p.data, { chain });
    cache?.delete(p.data.requestId);
    const hash = sha256Hex(tbs);
    if (!journal.approvalFor(p.data.requestId, hash))
      refuse(`I have no unexpired approval of TBS ${hash.slice(0, 16)}… for request ${p.data.requestId}`);
    const conflict = journal.serialConflict(p.data.serial, hash, job.id);
    if (conflict) refuse(conflict);
    return tbs;
  };
}
