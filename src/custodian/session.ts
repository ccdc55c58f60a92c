// A custodian at work: its unlocked identity and key share, its journal, and the operations a person
// (CLI) or an agent performs — review, approve, reject, and take part in signing.
import { readFileSync, existsSync } from "node:fs";
import { inspect } from "node:util";
import { z } from "zod";
import type { LoadedConfig } from "../config/load.ts";
import { signsOcsp } from "../config/schema.ts";
import { sealEnvelope, type SignedEnvelope, type Signer } from "../protocol/envelope.ts";
import type { ReviewItem, SigningTask } from "../protocol/signing-messages.ts";
import type { RequestOrigin } from "../protocol/origin.ts";
import {
  APPROVAL_DOMAIN,
  RequestViewSchema,
  type ApprovalStatement,
  type LeafParams,
  type RequestView,
} from "../protocol/approval.ts";
import { publicFromWire, hexToBytes } from "../threshold/encoding.ts";
import { describeTbs, type TbsDescription } from "../x509/inspect.ts";
import { commonNames } from "../x509/names.ts";
import { readTbs } from "../x509/tbs-read.ts";
import { BUILDER_VERSION } from "../x509/leaf.ts";
import { fromPem } from "../x509/der.ts";
import { displaySerial, storedSerial } from "../x509/serial.ts";
import type { CoordinatorClient } from "./client.ts";
import { adoptRoster, settlePendingShare } from "./lifecycle/participate.ts";
import { connectCustodian } from "./connect.ts";
import { CustodianError } from "./errors.ts";
import type { CustodianHome } from "./home.ts";
import { Journal, type NewEntry } from "./journal.ts";
import { DerivedTbsCache, deriveLeafTbs, leafTbsDeriver, sha256Hex } from "./leaf-check.ts";
import { SigningParticipant, type SigningHooks, type TaskOutcome } from "./signer.ts";
import { ExchangeLink } from "./exchange.ts";
import { crlTbsDeriver, fetchPublishedCrl } from "./crl-check.ts";
import { CrlParamsSchema } from "../protocol/crl-params.ts";
import { CheckpointParamsSchema } from "../protocol/audit-checkpoint.ts";
import { checkpointTbsDeriver } from "./checkpoint-check.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import { groupPublicKey } from "../threshold/dkg.ts";
import { CaCsrParamsSchema } from "../protocol/signing-messages.ts";
import { caCsrTbsDeriver } from "./ca-csr-check.ts";
import { adoptCoordinatorCa, readAdoptedCa, readCaChain, type Adoption } from "./ca-install.ts";

/**
 * What a custodian needs of a request to judge it: from a full view (CLI) or a review item (agent).
 * `origin` and `createdAt` are the coordinator's statements, for policy rules that ask for ACME
 * validation (policy.ts).
 */
export type ReviewSubject = Pick<
  RequestView,
  "id" | "requester" | "profile" | "serial" | "tbsSha256" | "createdAt" | "origin"
>;

export interface Review<R extends ReviewSubject = RequestView> {
  request: R;
  tbs: TbsDescription;
  /** Every CN of the derived subject (name policy must see all of them). */
  commonNames: string[];
  /** Why this custodian would refuse, if it would. */
  problem?: string;
}

/** The CA certificate leaves and CRLs name: the one adopted in intermediate mode, else the ceremony's root. */
export function caCertificateOf(home: CustodianHome): Uint8Array {
  const adopted = readAdoptedCa(home);
  if (adopted) return adopted;
  if (!existsSync(home.caCertPath))
    throw new CustodianError(
      "NO_KEY_SHARE",
      `${home.caCertPath} is missing: this custodian has not completed the key ceremony`,
    );
  return fromPem(readFileSync(home.caCertPath, "utf8"), ["CERTIFICATE"]);
}

/** Reads a request and re-derives its TBS here; works without the passphrase. */
export async function reviewRequest(
  client: CoordinatorClient,
  home: CustodianHome,
  config: LoadedConfig,
  id: string,
): Promise<Review> {
  const request = await client.get(`/api/v1/requests/${encodeURIComponent(id)}`, RequestViewSchema);
  return judge(config, caCertificateOf(home), request, leafParamsOf(request), request.tbs, readCaChain(home))
    .review;
}

/**
 * Re-derives a request's TBS from the CSR and this custodian's own ca-config (docs/architecture.md §3.2) and
 * compares it with the coordinator's bytes. Returns the review and the derived bytes.
 */
export function judge<R extends ReviewSubject>(
  config: LoadedConfig,
  caCert: Uint8Array,
  request: R,
  params: LeafParams,
  coordinatorTbsHex: string,
  /** Intermediate mode: the chain above the CA certificate, whose constraints the lint enforces. */
  chain: readonly Uint8Array[] = [],
): { review: Review<R>; derived?: Uint8Array } {
  let problem: string | undefined;
  let tbs: Uint8Array = hexToBytes(coordinatorTbsHex);
  let derived: Uint8Array | undefined;
  try {
    const mine = deriveLeafTbs(config, caCert, params, { checkNotBefore: true, chain });
    if (sha256Hex(mine) !== request.tbsSha256 || Buffer.from(mine).toString("hex") !== coordinatorTbsHex) {
      problem =
        "the coordinator's TBS differs from the one this custodian derived from the CSR and its own ca-config";
    } else derived = mine;
    tbs = mine;
  } catch (e) {
    problem = (e as Error).message;
  }
  // A renewal (the holder's proof in a review item) of a certificate that can sign OCSP answers is
  // never approved, whatever the coordinator says: a stolen responder key could otherwise renew its
  // own certificate for ever. The coordinator asks for a new responder certificate with a new key
  // instead, a plain request (docs/ocsp.md).
  problem ??= ocspRenewalProblem(config, request);
  let review: Review<R>;
  try {
    review = {
      request,
      tbs: describeTbs(tbs),
      commonNames: commonNames(readTbs(tbs).subjectDer),
      ...(problem ? { problem } : {}),
    };
  } catch (e) {
    // The coordinator's bytes do not even parse: nothing to show but the problem.
    throw new CustodianError("REFUSED", `request ${request.id}: ${problem ?? (e as Error).message}`);
  }
  return { review, ...(derived ? { derived } : {}) };
}

/**
 * Why a request that claims to renew a certificate may not be approved because its profile (in this
 * custodian's own ca-config) can sign OCSP answers, or undefined.
 */
export function ocspRenewalProblem(config: LoadedConfig, request: ReviewSubject): string | undefined {
  const renewal = (request as { renewal?: { of?: unknown } }).renewal;
  if (renewal === undefined || renewal === null) return undefined;
  const profile = config.config.profiles[request.profile];
  if (!profile || !signsOcsp(profile)) return undefined; // an unknown profile fails derivation
  return `it renews a certificate of profile ${request.profile}, which can sign OCSP answers: a responder certificate is never renewed by its holder, only requested anew (docs/ocsp.md)`;
}

/** A journal note naming a request's origin ("from ACME account A, order O"), or undefined for none. */
export function originNote(origin: RequestOrigin | null | undefined): string | undefined {
  if (!origin) return undefined;
  return `from ACME account ${origin.account}, order ${origin.order}`;
}

export function leafParamsOfItem(r: ReviewItem): LeafParams {
  return {
    requestId: r.id,
    requester: r.requester,
    profile: r.profile,
    csr: r.csr,
    serial: r.serial,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
  };
}

export function leafParamsOf(r: RequestView): LeafParams {
  return {
    requestId: r.id,
    requester: r.requester,
    profile: r.profile,
    csr: Buffer.from(fromPem(r.csr, ["CERTIFICATE REQUEST"])).toString("base64"),
    // A view shows the serial without its sign octet; the TBS carries the DER content octets.
    serial: storedSerial(r.serial) ?? r.serial,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
  };
}

export class CustodianSession {
  /** Requests whose signing this custodian refused, with its reason. */
  readonly #refused = new Map<string, string>();
  readonly journal: Journal;
  readonly participant: SigningParticipant;
  readonly link: ExchangeLink;
  readonly signer: Signer;
  readonly caKeyId: string;
  /** The raw group key (the CA's public key). */
  readonly caPublicKey: Uint8Array;
  /** HOME/ca.pem, and in intermediate mode the chain above it: replaced when a new one is adopted. */
  #caCert: Uint8Array;
  #caChain: Uint8Array[];
  get caCert(): Uint8Array {
    return this.#caCert;
  }
  get caChain(): readonly Uint8Array[] {
    return this.#caChain;
  }
  /** TBS bytes this process derived when it reviewed a request: signing compares, never re-derives. */
  readonly derived = new DerivedTbsCache();

  private constructor(
    readonly client: CoordinatorClient,
    readonly home: CustodianHome,
    readonly config: LoadedConfig,
    signer: Signer,
    share: NonNullable<Awaited<ReturnType<CustodianHome["open"]>>["share"]>,
    hooks: SigningHooks,
    role: "agent" | "cli",
    journal: Journal,
  ) {
    this.signer = signer;
    this.caKeyId = share.caKeyId;
    // Checked against the keystore's anchor; appending re-anchors before anything leaves (docs/journal.md).
    this.journal = journal;
    this.#caCert = caCertificateOf(home);
    this.#caChain = readCaChain(home);
    this.caPublicKey = groupPublicKey(publicFromWire(share.publicPackage));
    this.participant = new SigningParticipant(
      signer,
      {
        secret: { identifier: share.identifier, signingShare: hexToBytes(share.signingShare) },
        public: publicFromWire(share.publicPackage),
        caKeyId: share.caKeyId,
        threshold: config.config.threshold,
        roster: config.config.custodians.map((c) => c.name),
        epoch: share.epoch ?? 0,
      },
      {
        // The CA certificate in force when the task is checked (a new one may be adopted meanwhile).
        leaf: (task) => leafTbsDeriver(config, this.#caCert, this.journal, this.derived, this.#caChain)(task),
        crl: (task) =>
          crlTbsDeriver(config, this.#caCert, this.journal, () =>
            fetchPublishedCrl(client.http, readCaCert(this.#caCert).publicKeyRaw),
          )(task),
        checkpoint: checkpointTbsDeriver(share.caKeyId, this.journal),
        "ca-csr": caCsrTbsDeriver(config, this.caPublicKey, share.caKeyId, this.journal),
      },
      {
        ...hooks,
        // Journal first: what this custodian signs is on its own record before anyone sees a share.
        beforeShare: async (task) => {
          this.journal.append(signer.signingSecret, journalEntryFor(task), { anchor: false });
          await hooks.beforeShare?.(task);
        },
        // One anchor (fsynced keystore rewrite) per batch, before any of its shares leaves.
        beforeRelease: async () => {
          this.journal.anchorNow(signer.signingSecret);
          await hooks.beforeRelease?.();
        },
      },
      role === "agent",
    );
    this.link = new ExchangeLink(client, signer.name, this.participant);
  }

  static async open(o: {
    home: CustodianHome;
    passphrase: string;
    coordinatorUrl: string;
    config: LoadedConfig;
    hooks?: SigningHooks;
    role?: "agent" | "cli";
    /** Where to say what opening did beyond the usual (a pending share settled, a roster adopted). */
    note?: (line: string) => void;
  }): Promise<CustodianSession> {
    let secrets = await o.home.open(o.passphrase);
    const signer = {
      name: secrets.identity.name,
      signingSecret: new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url")),
    };
    const client = connectCustodian({
      urls: o.coordinatorUrl,
      role: o.role ?? "cli",
      identity: signer,
      home: o.home,
    });
    // A lifecycle ceremony's outcome (docs/key-lifecycle.md): a pending share is settled with the
    // coordinator, and a new roster is adopted only with t signatures of the share's roster.
    const note = o.note ?? (() => undefined);
    if (secrets.pendingShare) secrets = await settlePendingShare(o.home, o.passphrase, client, secrets, note);
    if (!secrets.share)
      throw new CustodianError(
        "NO_KEY_SHARE",
        "this custodian holds no key share: run the key ceremony first",
      );
    secrets = await adoptRoster(o.home, o.passphrase, client, o.config, secrets, note);
    const session = new CustodianSession(
      client,
      o.home,
      o.config,
      signer,
      secrets.share!,
      o.hooks ?? {},
      o.role ?? "cli",
      await o.home.openJournal(secrets, o.passphrase),
    );
    // Intermediate mode: take up the coordinator's CA certificate at start, if it passes our checks.
    session.lastAdoption = await session
      .adoptCaCertificate()
      .catch((e: Error): Adoption => ({ kind: "refused", reason: `cannot fetch it: ${e.message}` }));
    return session;
  }
  /** What the last look at the coordinator's CA certificate found (docs/intermediate.md). */
  lastAdoption: Adoption | undefined;

  /** Reviews a request delivered by the exchange; remembers the derived bytes for signing. */
  reviewItem(item: ReviewItem): Review<ReviewItem> {
    const params = leafParamsOfItem(item);
    const { review, derived } = judge(this.config, this.#caCert, item, params, item.tbs, this.#caChain);
    if (derived) this.#derivedFor.set(review, { params, tbs: derived });
    return review;
  }
  /** Derived bytes of reviews not yet decided; kept for signing only once approved. */
  readonly #derivedFor = new WeakMap<object, { params: LeafParams; tbs: Uint8Array }>();

  /**
   * Signed approvals or rejections of the exact TBS this custodian derived, journaled (one write)
   * before they leave. Refuses, for all of them, if any cannot be given.
   */
  approvals(
    decisions: { review: Review<ReviewSubject>; decision: "approve" | "reject" }[],
    opts: { reason?: string; validForMs?: number } = {},
  ): SignedEnvelope[] {
    const now = new Date();
    const statements: ApprovalStatement[] = [];
    // Where each request came from, for the journal's line (its `note`, a field every journal
    // reader accepts on any entry, so the format does not change: docs/journal.md).
    const notes = new Map<string, string>();
    for (const { review } of decisions) {
      const note = originNote(review.request.origin);
      if (note) notes.set(review.request.id, note);
    }
    for (const { review, decision } of decisions) {
      const serial = storedSerial(review.request.serial) ?? review.request.serial;
      if (decision === "approve" && this.journal.hasSignedSerial(serial)) {
        throw new CustodianError(
          "REFUSED",
          `will not approve request ${review.request.id}: I have already signed serial ${displaySerial(serial)}`,
        );
      }
      if (decision === "approve" && review.problem)
        throw new CustodianError(
          "REFUSED",
          `will not approve request ${review.request.id}: ${review.problem}`,
        );
      statements.push({
        domain: APPROVAL_DOMAIN,
        caKeyId: this.caKeyId,
        requestId: review.request.id,
        tbsSha256: review.request.tbsSha256,
        configDigest: this.config.digest,
        builderVersion: BUILDER_VERSION,
        decision,
        ...(opts.reason ? { reason: opts.reason } : {}),
        issuedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + (opts.validForMs ?? 24 * 3_600_000)).toISOString(),
      });
    }
    for (const { review, decision } of decisions) {
      const d = this.#derivedFor.get(review);
      if (d && decision === "approve") this.derived.put(d.params, d.tbs);
    }
    // Journal first: what this custodian approved is on its own record before anyone else sees it.
    this.journal.appendMany(
      this.signer.signingSecret,
      statements.map((st) => ({
        kind: "approval" as const,
        requestId: st.requestId,
        tbsSha256: st.tbsSha256,
        decision: st.decision,
        expiresAt: st.expiresAt,
        ...(notes.has(st.requestId) ? { note: notes.get(st.requestId)! } : {}),
      })),
    );
    return statements.map((st) =>
      sealEnvelope(this.signer, {
        type: "approval",
        recipient: "coordinator",
        scope: st.requestId,
        caKeyId: this.caKeyId,
        body: st,
      }),
    );
  }

  /** Posts one signed approval or rejection (a person at the CLI) and returns the request's view. */
  async decide(
    review: Review<ReviewSubject>,
    decision: "approve" | "reject",
    opts: { reason?: string; validForMs?: number } = {},
  ): Promise<RequestView> {
    const [env] = this.approvals([{ review, decision }], opts);
    return this.client.post(
      `/api/v1/requests/${encodeURIComponent(review.request.id)}/approvals`,
      env,
      RequestViewSchema,
    );
  }

  /** One exchange round's signing work: signs what it may, queues the answers for the next round. */
  async signTasks(
    tasks: readonly SigningTask[],
    decline?: (task: SigningTask) => string | undefined,
  ): Promise<TaskOutcome[]> {
    const batch = await this.participant.signTasks(tasks, decline);
    this.link.send(...batch.envelopes);
    for (const o of batch.outcomes) if (o.kind === "refused") this.#refused.set(o.task.subjectRef, o.reason);
    return batch.outcomes;
  }

  /**
   * Stays online for these requests: offers commitments and signs what names them until each is
   * issued, rejected or failed. `progress` gets a line whenever something changes.
   */
  async signUntilDone(
    ids: string[],
    progress: (line: string) => void,
    opts: { timeoutMs?: number } = {},
  ): Promise<RequestView[]> {
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    const last = new Map<string, string>();
    try {
      for (;;) {
        const views = await Promise.all(
          ids.map((id) => this.client.get(`/api/v1/requests/${encodeURIComponent(id)}`, RequestViewSchema)),
        );
        for (const v of views) {
          const approved = v.approvals.filter((a) => a.decision === "approve").length;
          const line =
            v.status === "pending"
              ? `${approved} of ${v.threshold} approvals…`
              : v.status === "signing"
                ? `${approved} of ${v.threshold} approvals; signing…`
                : v.status === "issued"
                  ? `issued: serial ${displaySerial(v.serial)}`
                  : v.status === "rejected"
                    ? `rejected by ${v.rejection?.by}: ${v.rejection?.reason}`
                    : `failed: ${v.failure}`;
          if (last.get(v.id) !== line) progress(`${v.id}: ${line}`);
          last.set(v.id, line);
        }
        for (const [id, reason] of this.#refused) {
          if (last.get(id) !== `refused: ${reason}`) progress(`${id}: I refused to sign: ${reason}`);
          last.set(id, `refused: ${reason}`);
        }
        // Done when every request has finished, or this custodian refused to take part in it.
        const open = views.filter(
          (v) => (v.status === "pending" || v.status === "signing") && !this.#refused.has(v.id),
        );
        if (open.length === 0) return views;
        if (Date.now() > deadline)
          throw new CustodianError("TIMEOUT", `gave up waiting for ${open.map((v) => v.id).join(", ")}`);
        const wait = Math.max(0, Math.min(5, (deadline - Date.now()) / 1000));
        const res = await this.link.round({ wait, review: false });
        await this.signTasks(res.tasks);
      }
    } finally {
      await this.link.close();
    }
  }

  /**
   * Intermediate mode (docs/intermediate.md): adopts the coordinator's CA certificate and chain when
   * they differ from this custodian's and pass its own checks (ca-install.ts); from then on leaves
   * and CRLs are derived under it.
   */
  async adoptCaCertificate(): Promise<Adoption> {
    const a = await adoptCoordinatorCa({
      client: this.client,
      home: this.home,
      config: this.config,
      caPublicKey: this.caPublicKey,
      current: this.#caCert,
    });
    if (a.kind === "adopted") {
      this.#caCert = a.certificate;
      this.#caChain = a.chain;
    }
    return a;
  }

  /** Holds the identity key and (through the participant) the key share: never print it. */
  toJSON(): string {
    return "<redacted>";
  }
  [inspect.custom](): string {
    return `CustodianSession(${this.signer.name}) <redacted>`;
  }

  refusals(): ReadonlyMap<string, string> {
    return this.#refused;
  }

  async listRequests(status?: string): Promise<RequestView[]> {
    const q = status ? `?status=${encodeURIComponent(status)}` : "";
    return (await this.client.get(`/api/v1/requests${q}`, z.object({ requests: z.array(RequestViewSchema) })))
      .requests;
  }

  close(): void {
    this.participant.close();
  }
}

/** The journal line for a signature share about to be released (docs/journal.md). */
function journalEntryFor(task: SigningTask): NewEntry {
  const tbsSha256 = sha256Hex(hexToBytes(task.tbs));
  if (task.kind === "crl") {
    const c = CrlParamsSchema.parse(task.params);
    return {
      kind: "crl",
      requestId: task.subjectRef,
      tbsSha256,
      crlNumber: c.crlNumber,
      serials: c.entries.map((e) => e.serial),
      jobId: task.id,
      attempt: task.attempt,
    };
  }
  if (task.kind === "ca-csr") {
    const c = CaCsrParamsSchema.parse(task.params);
    return {
      kind: "signature",
      requestId: task.subjectRef,
      tbsSha256,
      jobId: task.id,
      attempt: task.attempt,
      note: `the CA's certification request, subject "${c.subject}" (docs/intermediate.md)`,
    };
  }
  if (task.kind === "checkpoint") {
    const c = CheckpointParamsSchema.parse(task.params);
    return {
      kind: "checkpoint",
      requestId: task.subjectRef,
      tbsSha256,
      auditSeq: c.seq,
      auditHead: c.head,
      jobId: task.id,
      attempt: task.attempt,
    };
  }
  const p = task.params as { requestId?: string; serial?: string };
  return {
    kind: "signature",
    requestId: String(p.requestId ?? task.subjectRef),
    tbsSha256,
    serial: String(p.serial),
    jobId: task.id,
    attempt: task.attempt,
  };
}
