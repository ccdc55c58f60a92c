// Intake: a requester submits a CSR for a profile. The coordinator checks the profile and the grant,
// parses and checks the CSR, fixes the serial (RFC 5280 §4.1.2.2, docs/architecture.md §3.8) and the
// validity, builds the TBSCertificate every custodian will re-derive (docs/architecture.md §3.2) and stores
// the request. Bad input gets a clear error and changes nothing (docs/architecture.md §3.10).
import { randomUUID } from "node:crypto";
import { sha256Hex } from "../../common/hash.ts";
import type { Profile, Requester } from "../../config/schema.ts";
import { bytesToHex } from "../../threshold/encoding.ts";
import { readCaCert } from "../../x509/ca-cert.ts";
import { parseCsr, type ParsedCsr } from "../../x509/csr.ts";
import { X509Error, type X509ErrorCode } from "../../x509/errors.ts";
import { buildLeafTbs } from "../../x509/leaf.ts";
import { checkExclusiveNames, checkRequest, checkValidity } from "../../x509/policy.ts";
import { displaySerial, randomSerial } from "../../x509/serial.ts";
import { crashPoint } from "../crash-points.ts";
import { CoordinatorError, type CoordinatorErrorCode } from "../errors.ts";
import type { RequestContext } from "./context.ts";
import type { RenewalRecord } from "../store/types.ts";
import type { RequestOrigin } from "../../protocol/origin.ts";
import { clock } from "../clock.ts";
import { appendAudit } from "../audit/log.ts";

export const MAX_CSR_BYTES = 16 * 1024;
/** Backdating absorbs clock differences between the CA and relying parties. */
const BACKDATE_MS = 60_000;

const X509_STATUS: Record<X509ErrorCode, CoordinatorErrorCode> = {
  CSR_MALFORMED: "BAD_REQUEST",
  CSR_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  CSR_BAD_SIGNATURE: "BAD_REQUEST",
  CSR_UNSUPPORTED_ALGORITHM: "UNPROCESSABLE",
  KEY_TYPE_NOT_ALLOWED: "UNPROCESSABLE",
  KEY_SIZE_NOT_ALLOWED: "UNPROCESSABLE",
  KEY_INVALID: "BAD_REQUEST",
  NAME_INVALID: "UNPROCESSABLE",
  NAME_NOT_ALLOWED: "FORBIDDEN",
  SAN_TYPE_NOT_ALLOWED: "UNPROCESSABLE",
  SAN_REQUIRED: "UNPROCESSABLE",
  TOO_MANY_NAMES: "UNPROCESSABLE",
  VALIDITY_NOT_ALLOWED: "UNPROCESSABLE",
  SERIAL_INVALID: "INTERNAL",
  CERT_MALFORMED: "INTERNAL",
  TBS_MALFORMED: "INTERNAL",
  TBS_MISMATCH: "INTERNAL",
  LINT_FAILED: "UNPROCESSABLE",
  CRL_INVALID: "INTERNAL",
  CRL_MALFORMED: "INTERNAL",
};

function asCoordinatorError(e: unknown): never {
  if (e instanceof X509Error)
    throw new CoordinatorError(X509_STATUS[e.code], e.message, {
      reason: e.code,
      ...(e.field ? { field: e.field } : {}),
    });
  throw e;
}

export interface Submission {
  requester: Requester;
  profile: string;
  csr: string | Uint8Array;
  validityHours?: number;
  /** A renewal: stored with the request, in one transaction (coordinator/http/renewals.ts). */
  renewal?: Omit<RenewalRecord, "requestId">;
  /** Where the request came from (ACME), stored with it and shown to custodians. */
  origin?: RequestOrigin;
  /**
   * Runs inside the transaction that stores the request, after the insert, with the new request's id: a caller's
   * own rows that must commit with it or not at all (ACME marks its order finalized this way). If it throws, nothing is stored.
   */
  inTransaction?: (requestId: string) => Promise<void>;
}

/** The requester with this name in ca-config, or UNAUTHORIZED. */
export function requesterFor(ctx: RequestContext, name: string): Requester {
  const r = ctx.config.config.requesters.find((x) => x.name === name);
  if (!r) throw new CoordinatorError("UNAUTHORIZED", "unknown requester");
  return r;
}

/** Checks and stores a submission; returns the new request's id. */
export async function submit(ctx: RequestContext, s: Submission): Promise<string> {
  const profile: Profile | undefined = ctx.config.config.profiles[s.profile];
  if (!profile)
    throw new CoordinatorError(
      "BAD_REQUEST",
      `unknown profile "${s.profile}"; this CA offers: ${Object.keys(ctx.config.config.profiles).join(", ")}`,
    );
  if (!s.requester.profiles.includes(s.profile))
    throw new CoordinatorError(
      "FORBIDDEN",
      `requester ${s.requester.name} is not granted the "${s.profile}" profile`,
    );
  const caDer = await ctx.ca.certificate();
  if (!caDer)
    throw new CoordinatorError("CONFLICT", "the CA has no root certificate yet: run the key ceremony first");
  const ca = readCaCert(caDer);
  let tbs: Uint8Array;
  let csrDer: Uint8Array;
  let parsed: ParsedCsr;
  const serial = randomSerial();
  const notBefore = new Date(Math.floor((clock.now() - BACKDATE_MS) / 1000) * 1000);
  const hours = s.validityHours ?? profile.defaultValidityHours;
  let notAfter = new Date(notBefore.getTime() + hours * 3_600_000);
  // Never past the CA's own expiry (RFC 5280 §6.1.3 would reject the chain); a renewal too.
  if (notAfter > ca.notAfter && (s.validityHours === undefined || s.renewal)) notAfter = ca.notAfter;
  try {
    const csr = parseCsr(s.csr, { maxBytes: MAX_CSR_BYTES });
    parsed = csr;
    csrDer = csr.der;
    checkRequest(csr, profile, s.requester);
    checkExclusiveNames(csr, s.requester.name, ctx.config.config.requesters);
    checkValidity({ notBefore, notAfter, profile, caNotAfter: ca.notAfter });
    tbs = buildLeafTbs({
      csr,
      profile,
      caCertDer: caDer,
      serial,
      notBefore,
      notAfter,
      publicUrl: ctx.config.config.ca.publicUrl,
    });
  } catch (e) {
    asCoordinatorError(e);
  }
  const id = randomUUID();
  const now = clock.iso();
  // Its place in the review order (seq) is given by the database as it is stored.
  await ctx.store.transaction(async (tx) => {
    // One live renewal per certificate (docs/revocation.md), decided here under the write lock that
    // serializes every replica's writes; the renewal route's earlier check only answers sooner.
    if (s.renewal) {
      const live = (await tx.listRenewalsOf(s.renewal.renewalOf)).find((x) =>
        ["pending", "signing", "issued"].includes(x.status),
      );
      if (live)
        throw new CoordinatorError(
          "CONFLICT",
          `certificate ${displaySerial(s.renewal.renewalOf)} already has a renewal: request ${live.requestId} is ${live.status}`,
        );
    }
    await tx.insertRequest({
      id,
      requester: s.requester.name,
      profile: s.profile,
      csr: csrDer,
      tbs,
      tbsSha256: sha256Hex(tbs),
      serial: bytesToHex(serial),
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      status: "pending",
      signingJob: null,
      certificate: null,
      outcome: null,
      origin: s.origin ?? null,
      createdAt: now,
      updatedAt: now,
    });
    if (s.renewal) await tx.insertRenewal({ requestId: id, ...s.renewal });
    await appendAudit(tx, {
      kind: "request",
      subject: id,
      body: {
        requestId: id,
        requester: s.requester.name,
        profile: s.profile,
        csr: Buffer.from(csrDer).toString("base64"),
        tbsSha256: sha256Hex(tbs),
        tbs: Buffer.from(tbs).toString("hex"),
        serial: bytesToHex(serial),
        notBefore: notBefore.toISOString(),
        notAfter: notAfter.toISOString(),
        origin: s.origin ?? null,
        ...(s.renewal ? { renewalOf: s.renewal.renewalOf } : {}),
      },
    });
    if (s.inTransaction) await s.inTransaction(id);
  });
  crashPoint("after-intake");
  ctx.hooks.metrics.submitted.inc({ profile: s.profile });
  ctx.hooks.changed();
  ctx.csrs.remember(id, parsed); // the view, and every later one, need not parse it again
  return id;
}
