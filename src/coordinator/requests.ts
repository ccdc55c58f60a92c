// The request lifecycle: submit (validate, fix serial and validity, build the TBS), collect signed
// approvals, start a signing job among approvers once t have approved, and publish the certificate
// only after it has been assembled from the exact signed bytes and verified (DESIGN §3.8).
import { createHash, randomUUID, X509Certificate } from "node:crypto";
import type { LoadedConfig } from "../config/load.ts";
import type { Profile, Requester } from "../config/schema.ts";
import { openEnvelope, rosterKeys, type EnvelopeHeader } from "../protocol/envelope.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  ApprovalStatementSchema,
  requestState,
  type LeafParams,
  type RequestView,
} from "../protocol/approval.ts";
import { parseCsr, type ParsedCsr } from "../x509/csr.ts";
import { checkRequest, checkValidity } from "../x509/policy.ts";
import { X509Error, type X509ErrorCode } from "../x509/errors.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import { buildLeafTbs, BUILDER_VERSION } from "../x509/leaf.ts";
import { randomSerial } from "../x509/serial.ts";
import { assembleCertificate, verifyCertificateSignature } from "../x509/assemble.ts";
import { toPem } from "../x509/der.ts";
import { bytesToHex } from "../threshold/encoding.ts";
import { crashPoint } from "./crash-points.ts";
import { CoordinatorError, type CoordinatorErrorCode } from "./errors.ts";
import type { RequestRecord, RequestStatus, SigningJobRecord, Store } from "./store/types.ts";
import { STARVED_MS, type JobEvent, type SigningService } from "./signing.ts";
import type { CoordinatorHooks } from "./hooks.ts";
import type { ReviewItem } from "../protocol/signing-messages.ts";
import { z } from "zod";
import type { CaMaterial } from "./ca-material.ts";

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
}

export class RequestService {
  readonly #roster: Map<string, string>;
  readonly #csrs = new Map<string, ParsedCsr>();
  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly signing: SigningService,
    private readonly ca: CaMaterial,
    private readonly hooks: CoordinatorHooks,
  ) {
    this.#roster = rosterKeys(config.config.custodians);
  }

  requesterFor(name: string): Requester {
    const r = this.config.config.requesters.find((x) => x.name === name);
    if (!r) throw new CoordinatorError("UNAUTHORIZED", "unknown requester");
    return r;
  }

  async submit(s: Submission): Promise<RequestView> {
    const profile: Profile | undefined = this.config.config.profiles[s.profile];
    if (!profile)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `unknown profile "${s.profile}"; this CA offers: ${Object.keys(this.config.config.profiles).join(", ")}`,
      );
    if (!s.requester.profiles.includes(s.profile))
      throw new CoordinatorError(
        "FORBIDDEN",
        `requester ${s.requester.name} is not granted the "${s.profile}" profile`,
      );
    const caDer = await this.ca.certificate();
    if (!caDer)
      throw new CoordinatorError(
        "CONFLICT",
        "the CA has no root certificate yet: run the key ceremony first",
      );
    const ca = readCaCert(caDer);
    let tbs: Uint8Array;
    let csrDer: Uint8Array;
    let parsed: ParsedCsr;
    const serial = randomSerial();
    const notBefore = new Date(Math.floor((Date.now() - BACKDATE_MS) / 1000) * 1000);
    const hours = s.validityHours ?? profile.defaultValidityHours;
    let notAfter = new Date(notBefore.getTime() + hours * 3_600_000);
    // Never past the CA's own expiry (RFC 5280 §6.1.3 would reject the chain).
    if (notAfter > ca.notAfter && s.validityHours === undefined) notAfter = ca.notAfter;
    try {
      const csr = parseCsr(s.csr, { maxBytes: MAX_CSR_BYTES });
      parsed = csr;
      csrDer = csr.der;
      checkRequest(csr, profile, s.requester);
      checkValidity({ notBefore, notAfter, profile, caNotAfter: ca.notAfter });
      tbs = buildLeafTbs({
        csr,
        profile,
        caCertDer: caDer,
        serial,
        notBefore,
        notAfter,
        publicUrl: this.config.config.ca.publicUrl,
      });
    } catch (e) {
      asCoordinatorError(e);
    }
    const id = randomUUID();
    const now = new Date().toISOString();
    // Its place in the review order (seq) is given by the database as it is stored.
    await this.store.transaction((tx) =>
      tx.insertRequest({
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
        createdAt: now,
        updatedAt: now,
      }),
    );
    crashPoint("after-intake");
    this.hooks.metrics.submitted.inc({ profile: s.profile });
    this.hooks.changed();
    this.rememberCsr(id, parsed); // the view below, and every later one, need not parse it again
    return this.view(id);
  }

  async list(status?: RequestStatus): Promise<RequestView[]> {
    const rows = await this.store.listRequests({ status, limit: 200 });
    return Promise.all(rows.map((r) => this.render(r)));
  }

  /**
   * A request's view. With `waitMs` and `since` (a state as `requestState` writes it), waits that
   * long for the state to differ from `since` — a long-poll for progress lines and the outcome.
   */
  async view(
    id: string,
    o: { waitMs?: number; since?: string; signal?: AbortSignal } = {},
  ): Promise<RequestView> {
    const waiting = (v: RequestView) => o.since !== undefined && requestState(v) === o.since;
    return this.whileOpen(id, async () => this.render(await this.require(id)), waiting, o);
  }

  /**
   * Reads a request, and while `still(value)` holds and the request is open, waits for this
   * request's own notifications (not every change: many requesters may be waiting) up to `waitMs`.
   */
  private async whileOpen<T extends { status: RequestStatus }>(
    id: string,
    read: () => Promise<T>,
    still: (value: T) => boolean,
    o: { waitMs?: number; signal?: AbortSignal },
  ): Promise<T> {
    const key = `request:${id}`;
    let mark = this.hooks.feed.mark(key);
    let v = await read();
    const deadline = Date.now() + (o.waitMs ?? 0);
    while (
      still(v) &&
      (v.status === "pending" || v.status === "signing") &&
      Date.now() < deadline &&
      !o.signal?.aborted
    ) {
      await this.hooks.feed.waitFor(key, mark, deadline - Date.now(), o.signal);
      mark = this.hooks.feed.mark(key);
      v = await read();
    }
    return v;
  }

  private async require(id: string): Promise<RequestRecord> {
    const r = /^[0-9a-f-]{36}$/.test(id) ? await this.store.getRequest(id) : undefined;
    if (!r) throw new CoordinatorError("NOT_FOUND", `no request ${id}`);
    return r;
  }

  /** A custodian's signed approval or rejection of one request's exact TBS (one envelope on its own). */
  async decide(id: string, envelope: unknown): Promise<RequestView> {
    await this.store.transaction(async () => {
      let h: EnvelopeHeader;
      try {
        h = openEnvelope(envelope, this.#roster, {
          type: "approval",
          scope: id,
          recipient: "coordinator",
          caKeyId: await this.ca.keyId(),
        });
      } catch (e) {
        if (e instanceof ProtocolError)
          throw new CoordinatorError("BAD_REQUEST", e.message, { culprit: e.culprit });
        throw e;
      }
      await this.decideOpened(h, JSON.stringify(envelope));
    });
    return this.view(id);
  }

  /**
   * An approval whose envelope signature and context were checked by the caller, inside transaction()
   * (the batch exchange, or decide() above).
   */
  async decideOpened(h: EnvelopeHeader, envelopeJson: string): Promise<void> {
    const id = h.scope;
    if (h.type !== "approval" || h.recipient !== "coordinator")
      throw new CoordinatorError(
        "BAD_REQUEST",
        `${h.type} from ${h.sender} is not an approval for the coordinator`,
      );
    const r = await this.require(id);
    // The very same envelope again (a client that lost the answer and resent it, perhaps to another
    // replica): already recorded, so the answer is the same as the first time, and nothing changes.
    const earlier = (await this.store.listApprovals(id)).find((x) => x.custodian === h.sender);
    if (earlier && earlier.envelope === envelopeJson) return;
    {
      const st = ApprovalStatementSchema.safeParse(h.body);
      if (!st.success) throw new CoordinatorError("BAD_REQUEST", `approval from ${h.sender} is malformed`);
      const a = st.data;
      if (a.requestId !== id || a.tbsSha256 !== r.tbsSha256)
        throw new CoordinatorError(
          "CONFLICT",
          `approval from ${h.sender} is about another TBS than request ${id}'s`,
        );
      if (a.caKeyId !== h.caKeyId)
        throw new CoordinatorError(
          "BAD_REQUEST",
          `approval from ${h.sender} names another CA key than its envelope`,
        );
      if (a.builderVersion !== BUILDER_VERSION)
        throw new CoordinatorError(
          "CONFLICT",
          `${h.sender} derives certificates with ${a.builderVersion}, the coordinator with ${BUILDER_VERSION}: upgrade one of them`,
        );
      if (a.configDigest !== this.config.digest)
        throw new CoordinatorError(
          "CONFLICT",
          `${h.sender}'s ca-config differs from the coordinator's (digest ${a.configDigest.slice(0, 12)}…)`,
        );
      if (Date.parse(a.expiresAt) <= Date.now())
        throw new CoordinatorError("BAD_REQUEST", `approval from ${h.sender} has already expired`);
      if (r.status !== "pending" && r.status !== "signing")
        throw new CoordinatorError("CONFLICT", `request ${id} is already ${r.status}`);
      const inserted = await this.store.insertApproval({
        requestId: id,
        custodian: h.sender,
        decision: a.decision,
        reason: a.reason ?? null,
        expiresAt: a.expiresAt,
        envelope: envelopeJson,
        createdAt: new Date().toISOString(),
      });
      if (!inserted)
        throw new CoordinatorError("CONFLICT", `${h.sender} has already decided on request ${id}`);
      this.hooks.heard(h.sender, "approval");
      this.hooks.moved(id); // a requester long-polling this request sees the count move
      this.store.afterCommit(() => crashPoint("after-approval"));
      this.hooks.metrics.approvals.inc({ custodian: h.sender, decision: a.decision });
      this.hooks.changed();
      if (a.decision === "reject") {
        // One custodian's rejection is final: a CA fails closed.
        if (r.signingJob) await this.signing.cancel(r.signingJob, `rejected by ${h.sender}`);
        await this.store.updateRequest(id, {
          status: "rejected",
          outcome: JSON.stringify({ by: h.sender, reason: a.reason ?? "no reason given" }),
        });
        this.hooks.finished(id);
        return;
      }
      const approvers = (await this.store.listApprovals(id))
        .filter((x) => x.decision === "approve" && Date.parse(x.expiresAt) > Date.now())
        .map((x) => x.custodian);
      if (r.signingJob) {
        await this.signing.addEligible(r.signingJob, h.sender);
      } else if (approvers.length >= this.config.config.threshold) {
        const params: LeafParams = {
          requestId: id,
          requester: r.requester,
          profile: r.profile,
          csr: Buffer.from(r.csr).toString("base64"),
          serial: r.serial,
          notBefore: r.notBefore,
          notAfter: r.notAfter,
        };
        const job = await this.signing.createJob({
          kind: "leaf",
          subjectRef: id,
          tbs: r.tbs,
          params: { ...params },
          eligible: approvers,
        });
        await this.store.updateRequest(id, { status: "signing", signingJob: job });
      }
    }
  }

  /**
   * Requests for one custodian to review, oldest first. Each pending request goes at once to t of
   * the custodians (a ranking by request id that spreads the work evenly), and to the others once it
   * has waited REVIEW_FALLBACK_MS or its signing job starves for signers: t reviews per certificate
   * in the common case, and no request left waiting for a custodian that is down or says no.
   */
  async reviewItems(
    custodian: string,
    cursorText: string | null,
    limit: number,
    now = Date.now(),
    viewer?: string,
  ): Promise<{ items: ReviewItem[]; cursor: string; wakeAt?: number }> {
    const cursor = parseCursor(cursorText);
    const out = new Map<string, RequestRecord>();
    const page = 256;
    for (let more = true; more && out.size < limit;) {
      const rows = await this.store.listRequestsAfter("pending", cursor.p, page);
      more = rows.length === page;
      for (const r of rows) {
        cursor.p = r.seq;
        if (this.preferred(custodian, r.id)) out.set(r.id, r);
        if (out.size >= limit) break;
      }
    }
    const cutoff = new Date(now - REVIEW_FALLBACK_MS).toISOString();
    let wakeAt: number | undefined;
    for (let more = true; more && out.size < limit;) {
      const rows = await this.store.listRequestsAfter("pending", cursor.f, page);
      more = rows.length === page;
      for (const r of rows) {
        if (r.createdAt >= cutoff) {
          // Not yet for everyone: the caller's long-poll should end when it is.
          wakeAt = Date.parse(r.createdAt) + REVIEW_FALLBACK_MS;
          more = false;
          break;
        }
        cursor.f = r.seq;
        if (!this.preferred(custodian, r.id)) out.set(r.id, r);
        if (out.size >= limit) break;
      }
    }
    for (const id of this.signing.starvedFor(
      viewer ?? custodian,
      REVIEW_FALLBACK_MS,
      limit - out.size,
      now,
    )) {
      const r = await this.store.getRequest(id);
      if (r?.status === "signing") out.set(r.id, r);
    }
    const items = [...out.values()].map((r): ReviewItem => ({
      id: r.id,
      requester: r.requester,
      profile: r.profile,
      csr: Buffer.from(r.csr).toString("base64"),
      serial: r.serial,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      tbs: Buffer.from(r.tbs).toString("hex"),
      tbsSha256: r.tbsSha256,
      status: r.status as ReviewItem["status"],
      createdAt: r.createdAt,
    }));
    return { items, cursor: JSON.stringify(cursor), ...(wakeAt !== undefined ? { wakeAt } : {}) };
  }

  /** Whether this custodian is among the t that review a request first. */
  private preferred(custodian: string, requestId: string): boolean {
    const rank = (name: string) => createHash("sha256").update(`${requestId}/${name}`).digest("hex");
    const mine = rank(custodian);
    let before = 0;
    for (const c of this.config.config.custodians) if (c.name !== custodian && rank(c.name) < mine) before++;
    return before < this.config.config.threshold;
  }

  /** Signing job ended: assemble, parse again, verify against the CA key, then release. */
  async onLeafSigned(job: SigningJobRecord, signature: Uint8Array | null, failure?: string): Promise<void> {
    const r = await this.store.getRequest(job.subjectRef);
    if (!r) return;
    if (!signature) {
      await this.store.updateRequest(r.id, {
        status: "failed",
        outcome: JSON.stringify({ reason: failure ?? "signing failed" }),
      });
      this.hooks.finished(r.id);
      return;
    }
    const pk = await this.ca.publicKey();
    const cert = assembleCertificate(r.tbs, signature);
    let ok = !!pk && verifyCertificateSignature(cert, pk);
    try {
      ok &&=
        new X509Certificate(Buffer.from(cert)).serialNumber.toLowerCase().replace(/^0+/, "") ===
        r.serial.replace(/^0+/, "");
    } catch {
      ok = false;
    }
    if (!ok) {
      await this.store.updateRequest(r.id, {
        status: "failed",
        outcome: JSON.stringify({ reason: "assembled certificate does not verify" }),
      });
      this.hooks.finished(r.id);
      return;
    }
    crashPoint("before-publish");
    await this.store.updateRequest(r.id, { status: "issued", certificate: cert });
    this.hooks.metrics.issued.inc({ profile: r.profile });
    this.hooks.metrics.issuanceSeconds.observe(
      { profile: r.profile },
      (Date.now() - Date.parse(r.createdAt)) / 1000,
    );
    this.hooks.finished(r.id);
  }

  /** The PEM chain, leaf first. With `waitMs`, waits that long for a pending request to finish. */
  async certificateChain(id: string, waitMs = 0, signal?: AbortSignal): Promise<string> {
    const r = await this.whileOpen(
      id,
      () => this.require(id),
      () => true,
      {
        waitMs,
        ...(signal ? { signal } : {}),
      },
    );
    if (r.status !== "issued" || !r.certificate)
      throw new CoordinatorError(
        "CONFLICT",
        `request ${id} is ${r.status}; the certificate exists once it is issued`,
        { requestStatus: r.status },
      );
    const ca = await this.ca.certificate();
    return toPem(r.certificate, "CERTIFICATE") + (ca ? toPem(ca, "CERTIFICATE") : "");
  }

  /**
   * A request's CSR never changes and was verified at submission; views are read on every agent
   * poll, so keep the parsed form instead of re-verifying its signature each time.
   */
  private csrOf(r: RequestRecord): ParsedCsr {
    return this.#csrs.get(r.id) ?? this.rememberCsr(r.id, parseCsr(r.csr));
  }
  private rememberCsr(id: string, csr: ParsedCsr): ParsedCsr {
    if (this.#csrs.size >= 1_000) this.#csrs.delete(this.#csrs.keys().next().value!);
    this.#csrs.set(id, csr);
    return csr;
  }

  private async render(r: RequestRecord): Promise<RequestView> {
    const csr = this.csrOf(r);
    const approvals = await this.store.listApprovals(r.id);
    const approved = approvals.filter((a) => a.decision === "approve").length;
    const outcome = r.outcome ? (JSON.parse(r.outcome) as { by?: string; reason: string }) : null;
    let signing: RequestView["signing"] = null;
    if (r.signingJob) {
      const job = await this.signing.record(r.signingJob);
      if (job) {
        const events = JSON.parse(job.events) as JobEvent[];
        signing = {
          job: job.id,
          attempt: job.attempt,
          culprits: events
            .filter((e) => (e.kind === "bad-share" || e.kind === "refusal") && e.custodian)
            .map((e) => ({
              custodian: e.custodian!,
              reason:
                e.kind === "bad-share"
                  ? `invalid signature share: ${e.detail ?? ""}`.trim()
                  : `refused: ${e.detail ?? ""}`,
            })),
          events: events.map((e) => ({
            at: e.at,
            kind: e.kind,
            ...(e.custodian ? { custodian: e.custodian } : {}),
            ...(e.detail ? { detail: e.detail } : {}),
          })),
        };
      }
    }
    return {
      id: r.id,
      status: r.status,
      requester: r.requester,
      profile: r.profile,
      subject: csr.subjectString,
      sans: csr.sans,
      keyType: csr.keyType === "rsa" ? `rsa-${csr.keyBits}` : csr.keyType,
      keyFingerprint: csr.keyFingerprint,
      serial: r.serial,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      tbsSha256: r.tbsSha256,
      tbs: Buffer.from(r.tbs).toString("hex"),
      csr: toPem(r.csr, "CERTIFICATE REQUEST"),
      threshold: this.config.config.threshold,
      approvals: approvals.map((a) => ({
        custodian: a.custodian,
        decision: a.decision,
        at: a.createdAt,
        expiresAt: a.expiresAt,
        reason: a.reason,
      })),
      missing: Math.max(0, this.config.config.threshold - approved),
      rejection: r.status === "rejected" && outcome?.by ? { by: outcome.by, reason: outcome.reason } : null,
      failure: r.status === "failed" && outcome ? outcome.reason : null,
      signing,
      createdAt: r.createdAt,
    };
  }
}

/** How long a request waits for its preferred reviewers before every custodian is shown it. */
export const REVIEW_FALLBACK_MS = STARVED_MS;

/** Where a custodian's review stands: the last intake sequence number seen, for preferred (p) and fallback (f) reviews. */
type Cursor = { p: number; f: number };
const CursorSchema = z
  .object({ p: z.number().int().nonnegative(), f: z.number().int().nonnegative() })
  .strict();
function parseCursor(text: string | null): Cursor {
  if (!text) return { p: 0, f: 0 };
  try {
    return CursorSchema.parse(JSON.parse(text));
  } catch {
    throw new CoordinatorError("BAD_REQUEST", "reviewCursor is not a cursor this coordinator gave out");
  }
}

export const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
