// A custodian at work: its unlocked identity and key share, its journal, and the operations a person
// (CLI) or an agent performs — review, approve, reject, and take part in signing.
import { readFileSync, existsSync } from "node:fs";
import { inspect } from "node:util";
import { join } from "node:path";
import { z } from "zod";
import type { LoadedConfig } from "../config/load.ts";
import { sealEnvelope, type Signer } from "../protocol/envelope.ts";
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
import { CoordinatorClient, sleep } from "./client.ts";
import { CustodianError } from "./errors.ts";
import type { CustodianHome } from "./home.ts";
import { Journal } from "./journal.ts";
import { deriveLeafTbs, leafTbsDeriver, sha256Hex } from "./leaf-check.ts";
import { SigningParticipant, type SigningEvents } from "./signer.ts";
import { crlTbsDeriver, fetchPublishedCrl } from "./crl-check.ts";
import { CrlParamsSchema } from "../protocol/crl-params.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import { ed25519 } from "@noble/curves/ed25519.js";

export interface Review {
  request: RequestView;
  tbs: TbsDescription;
  /** Every CN of the derived subject (name policy must see all of them). */
  commonNames: string[];
  /** Why this custodian would refuse, if it would. */
  problem?: string;
}

export function caCertificateOf(home: CustodianHome): Uint8Array {
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
  const params = leafParamsOf(request);
  let problem: string | undefined;
  let tbs: Uint8Array = hexToBytes(request.tbs);
  try {
    const mine = deriveLeafTbs(config, caCertificateOf(home), params, { checkNotBefore: true });
    if (sha256Hex(mine) !== request.tbsSha256 || Buffer.from(mine).toString("hex") !== request.tbs) {
      problem =
        "the coordinator's TBS differs from the one this custodian derived from the CSR and its own ca-config";
    }
    tbs = mine;
  } catch (e) {
    problem = (e as Error).message;
  }
  return {
    request,
    tbs: describeTbs(tbs),
    commonNames: commonNames(readTbs(tbs).subjectDer),
    ...(problem ? { problem } : {}),
  };
}

export function leafParamsOf(r: RequestView): LeafParams {
  return {
    requestId: r.id,
    requester: r.requester,
    profile: r.profile,
    csr: Buffer.from(fromPem(r.csr, ["CERTIFICATE REQUEST"])).toString("base64"),
    serial: r.serial,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
  };
}

export class CustodianSession {
  /** Requests whose signing this custodian refused, with its reason. */
  readonly #refused = new Map<string, string>();
  readonly journal: Journal;
  readonly participant: SigningParticipant;
  readonly signer: Signer;
  readonly caKeyId: string;

  private constructor(
    readonly client: CoordinatorClient,
    readonly home: CustodianHome,
    readonly config: LoadedConfig,
    signer: Signer,
    share: NonNullable<Awaited<ReturnType<CustodianHome["open"]>>["share"]>,
    events: SigningEvents,
  ) {
    this.signer = signer;
    this.caKeyId = share.caKeyId;
    this.journal = new Journal(join(home.dir, "journal.jsonl"), ed25519.getPublicKey(signer.signingSecret));
    const caCert = caCertificateOf(home);
    this.participant = new SigningParticipant(
      client,
      signer,
      {
        secret: { identifier: share.identifier, signingShare: hexToBytes(share.signingShare) },
        public: publicFromWire(share.publicPackage),
        caKeyId: share.caKeyId,
        threshold: config.config.threshold,
        roster: config.config.custodians.map((c) => c.name),
      },
      {
        leaf: leafTbsDeriver(config, caCert, this.journal),
        crl: crlTbsDeriver(config, caCert, this.journal, () =>
          fetchPublishedCrl(client.baseUrl, readCaCert(caCert).publicKeyRaw),
        ),
      },
      {
        ...events,
        onRefused: (job, reason) => {
          this.#refused.set(job.subjectRef, reason);
          events.onRefused?.(job, reason);
        },
        beforeShare: async (job) => {
          if (job.kind === "crl") {
            const c = CrlParamsSchema.parse(job.params);
            this.journal.append(signer.signingSecret, {
              kind: "crl",
              requestId: job.subjectRef,
              tbsSha256: sha256Hex(hexToBytes(job.tbs)),
              crlNumber: c.crlNumber,
              serials: c.entries.map((e) => e.serial),
              jobId: job.id,
              attempt: job.attempt,
            });
            return events.beforeShare?.(job);
          }
          const p = job.params as { requestId?: string; serial?: string };
          this.journal.append(signer.signingSecret, {
            kind: "signature",
            requestId: String(p.requestId),
            tbsSha256: sha256Hex(hexToBytes(job.tbs)),
            serial: String(p.serial),
            jobId: job.id,
            attempt: job.attempt,
          });
          await events.beforeShare?.(job);
        },
      },
    );
  }

  static async open(o: {
    home: CustodianHome;
    passphrase: string;
    coordinatorUrl: string;
    config: LoadedConfig;
    events?: SigningEvents;
  }): Promise<CustodianSession> {
    const secrets = await o.home.open(o.passphrase);
    if (!secrets.share)
      throw new CustodianError(
        "NO_KEY_SHARE",
        "this custodian holds no key share: run the key ceremony first",
      );
    const signer = {
      name: secrets.identity.name,
      signingSecret: new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url")),
    };
    return new CustodianSession(
      new CoordinatorClient(o.coordinatorUrl),
      o.home,
      o.config,
      signer,
      secrets.share,
      o.events ?? {},
    );
  }

  /** Posts a signed approval or rejection of the exact TBS this custodian derived. */
  async decide(
    review: Review,
    decision: "approve" | "reject",
    opts: { reason?: string; validForMs?: number } = {},
  ): Promise<RequestView> {
    if (decision === "approve" && this.journal.hasSignedSerial(review.request.serial)) {
      throw new CustodianError(
        "REFUSED",
        `will not approve request ${review.request.id}: I have already signed serial ${review.request.serial}`,
      );
    }
    if (decision === "approve" && review.problem)
      throw new CustodianError("REFUSED", `will not approve request ${review.request.id}: ${review.problem}`);
    const now = new Date();
    const statement: ApprovalStatement = {
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
    };
    // Journal first: what this custodian approved is on its own record before anyone else sees it.
    this.journal.append(this.signer.signingSecret, {
      kind: "approval",
      requestId: statement.requestId,
      tbsSha256: statement.tbsSha256,
      decision,
      expiresAt: statement.expiresAt,
    });
    const env = sealEnvelope(this.signer, {
      type: "approval",
      recipient: "coordinator",
      scope: review.request.id,
      caKeyId: this.caKeyId,
      body: statement,
    });
    return this.client.post(
      `/api/v1/requests/${encodeURIComponent(review.request.id)}/approvals`,
      env,
      RequestViewSchema,
    );
  }

  /**
   * Stays online for these requests: takes part in their signing sessions until each is issued,
   * rejected or failed. `progress` gets a line whenever something changes.
   */
  async signUntilDone(
    ids: string[],
    progress: (line: string) => void,
    opts: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<RequestView[]> {
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    const last = new Map<string, string>();
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
                ? `issued: serial ${v.serial}`
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
      const jobs = await this.participant.jobs();
      for (const job of jobs) if (ids.includes(job.subjectRef)) await this.participant.step(job);
      if (Date.now() > deadline)
        throw new CustodianError("TIMEOUT", `gave up waiting for ${open.map((v) => v.id).join(", ")}`);
      await sleep(opts.pollMs ?? 150);
    }
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
