// Intermediate mode (docs/intermediate.md): the threshold key becomes an issuing CA under an existing
// root. Two steps, each an admin's:
//
// 1. A certification request for the CA key. The coordinator proposes the CertificationRequestInfo
//    (src/x509/ca-csr.ts: ca-config's CA subject and the group key, nothing it chooses); each
//    custodian re-derives it, and approves it only after a person (or an agent whose policy allows
//    it) accepted the subject — a signed `approval` envelope in the ca-csr domain, scoped to the
//    proposal. Once t approved, a `ca-csr` signing job runs among the approvers, as for a leaf. The
//    CSR is assembled from the exact signed bytes and verified (its self-signature under the group
//    key) every time it is handed out (docs/architecture.md §3.8).
// 2. Installing the certificate the external root issued, with its chain: every check of
//    src/x509/ca-chain.ts, then the certificate replaces the self-signed root as META
//    "ca.certificate" (issuer and AKI of everything issued from then on) and the chain is kept as
//    META "ca.chain". Certificate downloads then give leaf → tca CA → chain up to the root.
//
// Proposal state is one meta row read and written inside transaction(), so replicas agree on it.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { openEnvelope, rosterKeys } from "../protocol/envelope.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { CaCsrParamsSchema } from "../protocol/signing-messages.ts";
import { CaCsrDecisionSchema, type CaCsrView } from "../protocol/ca-csr.ts";
import { assembleCaCsr, buildCaCsrInfo, CA_CSR_BUILDER } from "../x509/ca-csr.ts";
import { caCertFacts, checkCaInstall } from "../x509/ca-chain.ts";
import { parseCsr } from "../x509/csr.ts";
import { bytesEqual, toPem } from "../x509/der.ts";
import { isX509Error } from "../x509/errors.ts";
import { nameToDer } from "../x509/names.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import { readCaCert } from "../x509/ca-cert.ts";
import { splitCertificate } from "../x509/assemble.ts";
import { readAkiKeyId, readTbs } from "../x509/tbs-read.ts";
import { OID } from "../x509/oids.ts";
import { sha256Hex } from "../common/hash.ts";
import { appendAudit } from "./audit/log.ts";
import { META_CA_CERT } from "./ceremony.ts";
import { clock } from "./clock.ts";
import { CoordinatorError } from "./errors.ts";
import type { CoordinatorServices } from "./services.ts";
import type { Store } from "./store/types.ts";

/** The CSR proposal in flight or last made. */
export const META_CA_CSR = "ca.csr";
/** The chain above an installed CA certificate: JSON array of DER base64, issuer first, root last. */
export const META_CA_CHAIN = "ca.chain";
/**
 * The CA certificates in force before the current one, newest first, each with its chain: JSON
 * array of {certificate, chain} (DER base64). A certificate issued under one of them is handed out
 * with its own chain (its AKI names that certificate's SKI, RFC 5280 §4.2.1.1), not the current one.
 */
export const META_CA_PREVIOUS = "ca.previous";
/** How many earlier CA certificates are kept for downloads. */
const MAX_PREVIOUS = 16;

const PreviousSchema = z.array(z.object({ certificate: z.string(), chain: z.array(z.string()) }).strict());

/** A CA certificate and the chain above it (issuer first; empty for a self-signed root). */
export interface CaVersion {
  certificate: Uint8Array;
  chain: Uint8Array[];
}

const fromB64 = (b: string) => new Uint8Array(Buffer.from(b, "base64"));
const b64 = (d: Uint8Array) => Buffer.from(d).toString("base64");

/** The CA certificates in force before the current one, newest first. */
export async function previousCas(store: Pick<Store, "getMeta">): Promise<CaVersion[]> {
  const raw = await store.getMeta(META_CA_PREVIOUS);
  if (!raw) return [];
  const list = PreviousSchema.safeParse(JSON.parse(raw));
  if (!list.success) throw new Error(`corrupt row in the database: meta ${META_CA_PREVIOUS}`);
  return list.data.map((v) => ({ certificate: fromB64(v.certificate), chain: v.chain.map(fromB64) }));
}

/** The keyIdentifier of a certificate's authorityKeyIdentifier, lowercase hex, if it has one. */
function akiHexOf(der: Uint8Array): string | undefined {
  try {
    const aki = readTbs(splitCertificate(der).tbs).extensions.find(
      (e) => e.oid === OID.authorityKeyIdentifier,
    );
    const id = aki && readAkiKeyId(aki.value);
    return id ? Buffer.from(id).toString("hex") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The PEM of the CA certificate that issued `leaf` and the chain above it: the certificate whose
 * SKI is the leaf's AKI (RFC 5280 §4.2.1.1), the current one or an earlier one (an install changes
 * the key identifier: docs/intermediate.md); the current one when none matches. Empty without a CA.
 */
export async function issuerChainPem(
  store: Pick<Store, "getMeta">,
  current: Uint8Array | null,
  leaf: Uint8Array,
): Promise<string> {
  if (!current) return "";
  const versions: CaVersion[] = [{ certificate: current, chain: await caChain(store) }];
  const aki = akiHexOf(leaf);
  const skiHex = (d: Uint8Array) => {
    try {
      return readCaCert(d).skiHex;
    } catch {
      return undefined;
    }
  };
  let pick = versions[0]!;
  if (aki !== undefined && skiHex(current) !== aki)
    pick = (await previousCas(store)).find((v) => skiHex(v.certificate) === aki) ?? pick;
  return [pick.certificate, ...pick.chain].map((d) => toPem(d, "CERTIFICATE")).join("");
}

const ProposalSchema = z
  .object({
    id: z.string().uuid(),
    tbs: z.string().regex(/^[0-9a-f]*$/),
    subject: z.string(),
    caKeyId: z.string(),
    builder: z.string(),
    createdAt: z.string(),
    /** custodian → its approval envelope (JSON, as received). */
    approvals: z.record(z.string(), z.string()),
    /** custodian → when its approval expires; an approval counts towards t only until then. */
    approvalExpiry: z.record(z.string(), z.string()).optional(),
    rejection: z.object({ by: z.string(), reason: z.string() }).strict().nullable(),
    jobId: z.string().nullable(),
  })
  .strict();
type Proposal = z.infer<typeof ProposalSchema>;

/** The chain above the CA certificate (issuer first), empty for a self-signed root. */
export async function caChain(store: Pick<Store, "getMeta">): Promise<Uint8Array[]> {
  const raw = await store.getMeta(META_CA_CHAIN);
  if (!raw) return [];
  const list = z.array(z.string()).safeParse(JSON.parse(raw));
  if (!list.success) throw new Error(`corrupt row in the database: meta ${META_CA_CHAIN}`);
  return list.data.map(fromB64);
}

/** PEM of the certificates above the CA certificate (empty for a self-signed root). */
export async function caChainPem(store: Pick<Store, "getMeta">): Promise<string> {
  return (await caChain(store)).map((d) => toPem(d, "CERTIFICATE")).join("");
}

export class IntermediateService {
  constructor(private readonly s: CoordinatorServices) {}

  private async proposal(): Promise<Proposal | undefined> {
    const raw = await this.s.store.getMeta(META_CA_CSR);
    if (!raw) return undefined;
    const p = ProposalSchema.safeParse(JSON.parse(raw));
    if (!p.success) throw new Error(`corrupt row in the database: meta ${META_CA_CSR}`);
    return p.data;
  }
  private save(p: Proposal): Promise<void> {
    return this.s.store.setMeta(META_CA_CSR, JSON.stringify(p));
  }

  private async key(): Promise<{ publicKey: Uint8Array; caKeyId: string }> {
    const publicKey = await this.s.caPublicKey();
    const caKeyId = await this.s.signing.caKeyId;
    if (!publicKey || !caKeyId || !(await this.s.caCertificate()))
      throw new CoordinatorError(
        "CONFLICT",
        "the CA has no key and root certificate yet: run the key ceremony first",
      );
    return { publicKey, caKeyId };
  }

  /**
   * POST /api/v1/ca/csr: proposes a certification request for the CA key, or answers the one in
   * flight (pending approvals or signing). A signed, failed or rejected one is followed by a new one.
   */
  create(): Promise<{ created: boolean; view: CaCsrView }> {
    return this.s.store.transaction(async () => {
      const current = await this.proposal();
      if (current) {
        const v = await this.render(current);
        if (v.status === "pending" || v.status === "signing") return { created: false, view: v };
      }
      const { publicKey, caKeyId } = await this.key();
      const subject = this.s.config.config.ca.subject;
      const tbs = buildCaCsrInfo({ subject, caPublicKey: publicKey });
      const p: Proposal = {
        id: randomUUID(),
        tbs: Buffer.from(tbs).toString("hex"),
        subject,
        caKeyId,
        builder: CA_CSR_BUILDER,
        createdAt: clock.iso(),
        approvals: {},
        rejection: null,
        jobId: null,
      };
      await this.save(p);
      this.s.hooks.changed();
      return { created: true, view: await this.render(p) };
    });
  }

  /** GET /api/v1/ca/csr[/{id}]: the current proposal, or the one named. */
  async view(id?: string): Promise<CaCsrView> {
    const p = await this.proposal();
    if (!p || (id !== undefined && id !== "current" && p.id !== id))
      throw new CoordinatorError(
        "NOT_FOUND",
        id && id !== "current"
          ? `no CSR proposal ${id}`
          : "no CSR proposal: an admin makes one with tca ceremony csr",
      );
    return this.render(p);
  }

  private async render(p: Proposal): Promise<CaCsrView> {
    const job = p.jobId ? await this.s.signing.record(p.jobId) : undefined;
    let csr: string | null = null;
    let failure: string | null = null;
    if (job?.status === "done" && job.signature) {
      const checked = await this.verified(p, job.tbs, job.signature);
      if (checked.ok) csr = toPem(checked.der, "CERTIFICATE REQUEST");
      else failure = checked.reason;
    } else if (job?.status === "failed") {
      failure = [...job.events].reverse().find((e) => e.kind === "failed")?.detail ?? "signing failed";
    }
    const status: CaCsrView["status"] = p.rejection
      ? "rejected"
      : csr
        ? "signed"
        : failure !== null
          ? "failed"
          : job
            ? "signing"
            : "pending";
    return {
      id: p.id,
      status,
      subject: p.subject,
      caKeyId: p.caKeyId,
      builder: p.builder,
      tbs: p.tbs,
      tbsSha256: sha256Hex(Buffer.from(p.tbs, "hex")),
      threshold: this.s.config.config.threshold,
      approvals: Object.keys(p.approvals).sort(),
      rejection: p.rejection,
      jobId: p.jobId,
      failure,
      csr,
      createdAt: p.createdAt,
    };
  }

  /**
   * docs/architecture.md §3.8: the CSR is assembled from the exact bytes the job signed, parsed again
   * (its self-signature checked) and its key compared with the group key before it leaves.
   */
  private async verified(
    p: Proposal,
    tbs: Uint8Array,
    signature: Uint8Array,
  ): Promise<{ ok: true; der: Uint8Array } | { ok: false; reason: string }> {
    const publicKey = await this.s.caPublicKey();
    if (!publicKey) return { ok: false, reason: "the CA has no key" };
    if (Buffer.from(tbs).toString("hex") !== p.tbs)
      return { ok: false, reason: "the job signed other bytes than the proposal's" };
    try {
      const der = assembleCaCsr(tbs, signature);
      const parsed = parseCsr(der);
      if (!bytesEqual(parsed.spkiDer, ed25519Spki(publicKey)))
        return { ok: false, reason: "the signed CSR carries another key than the CA's" };
      return { ok: true, der };
    } catch (e) {
      return { ok: false, reason: `the signed CSR does not verify: ${(e as Error).message}` };
    }
  }

  /**
   * POST /api/v1/ca/csr/{id}/approvals: a custodian's signed decision on the proposal. One rejection
   * ends it; t approvals start the signing job among the approvers; later approvers join it.
   */
  decide(id: string, envelope: unknown): Promise<CaCsrView> {
    return this.s.store.transaction(async () => {
      const p = await this.proposal();
      if (!p || p.id !== id) throw new CoordinatorError("NOT_FOUND", `no CSR proposal ${id}`);
      let h;
      try {
        h = openEnvelope(envelope, rosterKeys(this.s.config.config.custodians), {
          type: "approval",
          scope: id,
          recipient: "coordinator",
          caKeyId: p.caKeyId,
        });
      } catch (e) {
        if (e instanceof ProtocolError) throw new CoordinatorError("BAD_REQUEST", e.message);
        throw e;
      }
      const st = CaCsrDecisionSchema.safeParse(h.body);
      if (!st.success)
        throw new CoordinatorError("BAD_REQUEST", `${h.sender}'s decision on the CA's CSR is malformed`);
      const d = st.data;
      if (d.proposalId !== id || d.caKeyId !== p.caKeyId)
        throw new CoordinatorError(
          "BAD_REQUEST",
          `${h.sender}'s decision is about another proposal or CA key`,
        );
      if (d.tbsSha256 !== sha256Hex(Buffer.from(p.tbs, "hex")))
        throw new CoordinatorError(
          "CONFLICT",
          `${h.sender} derived another certification request than the coordinator's: are both on the same ca-config?`,
        );
      if (d.configDigest !== this.s.config.digest)
        throw new CoordinatorError(
          "CONFLICT",
          `${h.sender}'s ca-config differs from the coordinator's (digest ${d.configDigest.slice(0, 12)}…)`,
        );
      if (Date.parse(d.expiresAt) <= clock.now())
        throw new CoordinatorError("BAD_REQUEST", `${h.sender}'s decision has already expired`);
      const v = await this.render(p);
      if (v.status !== "pending" && v.status !== "signing")
        throw new CoordinatorError("CONFLICT", `CSR proposal ${id} is already ${v.status}`);
      // An approval counts only while it is unexpired (not only when received); an expired one may
      // be replaced by a fresh one. (Rows from before expiry was kept count as expired.)
      const live = (name: string) => Date.parse(p.approvalExpiry?.[name] ?? "") > clock.now();
      if (p.approvals[h.sender] && live(h.sender))
        throw new CoordinatorError("CONFLICT", `${h.sender} has already approved CSR proposal ${id}`);
      this.s.hooks.heard(h.sender, "approval");
      if (d.decision === "reject") {
        if (p.jobId) await this.s.signing.cancel(p.jobId, `rejected by ${h.sender}`);
        p.rejection = { by: h.sender, reason: d.reason ?? "no reason given" };
        await this.save(p);
        this.s.hooks.changed();
        return this.render(p);
      }
      p.approvals[h.sender] = JSON.stringify(envelope);
      p.approvalExpiry = { ...p.approvalExpiry, [h.sender]: d.expiresAt };
      const approvers = Object.keys(p.approvals).filter(live).sort();
      if (p.jobId) await this.s.signing.addEligible(p.jobId, h.sender);
      else if (approvers.length >= this.s.config.config.threshold) {
        p.jobId = await this.s.signing.createJob({
          kind: "ca-csr",
          subjectRef: p.id,
          tbs: new Uint8Array(Buffer.from(p.tbs, "hex")),
          params: CaCsrParamsSchema.parse({ subject: p.subject, caKeyId: p.caKeyId, builder: p.builder }),
          eligible: approvers,
        });
      }
      await this.save(p);
      this.s.hooks.changed();
      return this.render(p);
    });
  }

  /**
   * POST /api/v1/ca/certificate: installs the certificate an external root issued for the CA key,
   * with its chain (issuer first, up to the root), after every check of src/x509/ca-chain.ts. Bad
   * input is a 422 naming the problem, and nothing changes.
   */
  install(
    certificatePem: string,
    chainPem: string,
    actor: string,
  ): Promise<{ subject: string; issuer: string; root: string; rootSha256: string; notAfter: string }> {
    return this.s.store.transaction(async () => {
      const { publicKey, caKeyId } = await this.key();
      const cfg = this.s.config.config.ca;
      let checked;
      try {
        checked = checkCaInstall({
          certificate: certificatePem,
          chain: chainPem,
          caPublicKey: publicKey,
          caSubjectDer: nameToDer(cfg.subject),
          ...(cfg.externalRoot ? { pinnedRootSha256: cfg.externalRoot.sha256 } : {}),
          now: new Date(clock.now()),
        });
      } catch (e) {
        if (isX509Error(e)) throw new CoordinatorError("UNPROCESSABLE", `refused: ${e.message}`);
        throw e;
      }
      const old = await this.s.caCertificate();
      const oldChain = await caChain(this.s.store);
      // No going back (docs/intermediate.md): a certificate from an external root older than the
      // installed one (perhaps less constrained) is refused; custodians refuse to adopt it too.
      if (old && oldChain.length > 0) {
        const was = caCertFacts(old, "the installed CA certificate").tbs.notBefore.date;
        if (checked.facts.tbs.notBefore.date < was)
          throw new CoordinatorError(
            "UNPROCESSABLE",
            `refused: the certificate (notBefore ${checked.facts.tbs.notBefore.date.toISOString()}) is older than the installed one (notBefore ${was.toISOString()}): no going back to an earlier CA certificate`,
          );
      }
      await this.s.store.setMeta(META_CA_CERT, b64(checked.certificate));
      await this.s.store.setMeta(META_CA_CHAIN, JSON.stringify(checked.chain.map(b64)));
      if (old && !bytesEqual(old, checked.certificate)) {
        const kept = (await previousCas(this.s.store)).filter((v) => !bytesEqual(v.certificate, old));
        const previous = [{ certificate: old, chain: oldChain }, ...kept].slice(0, MAX_PREVIOUS);
        await this.s.store.setMeta(
          META_CA_PREVIOUS,
          JSON.stringify(previous.map((v) => ({ certificate: b64(v.certificate), chain: v.chain.map(b64) }))),
        );
      }
      // Leaves and CRLs name the CA certificate's SKI as their AKI (RFC 5280 §4.2.1.1, §5.2.1); when
      // it changes, what was built under the old one is refused by custodians that adopted the new.
      const keyIdChanged = !old || readCaCert(old).skiHex !== readCaCert(checked.certificate).skiHex;
      const voided = keyIdChanged ? await this.voidOpenRequests() : [];
      if (keyIdChanged) await this.renewCrl();
      await appendAudit(this.s.store, {
        kind: "ceremony",
        subject: `ca-certificate-${checked.facts.sha256.slice(0, 16)}`,
        body: {
          event: "ca-certificate",
          publicKey: Buffer.from(publicKey).toString("hex"),
          caKeyId,
          certificate: b64(checked.certificate),
          chain: checked.chain.map(b64),
          installedBy: actor,
        },
      });
      for (const id of voided) this.s.hooks.finished(id);
      this.s.hooks.changed();
      return {
        subject: checked.facts.subject,
        issuer: caCertFacts(checked.chain[0]!, "the issuer").subject,
        root: checked.root.subject,
        rootSha256: checked.root.sha256,
        notAfter: checked.facts.tbs.notAfter.date.toISOString(),
      };
    });
  }

  /**
   * Open requests (pending approval, or signing) were built under the previous CA certificate: their
   * TBS names its key identifier, which custodians that adopted the new one refuse to approve or
   * sign, and approvals are of those bytes. They fail with the reason; ACME orders, the coordinator's
   * own certificate loops (self-cert.ts) and requesters submit again. Returns the ids.
   */
  private async voidOpenRequests(): Promise<string[]> {
    const reason =
      "the CA certificate changed (a certificate from an external root was installed, docs/intermediate.md) while this request was open: it was built under the previous one; submit it again";
    const ids: string[] = [];
    for (const status of ["pending", "signing"] as const) {
      for (let after = 0; ;) {
        const page = await this.s.store.listRequestsAfter(status, after, 500);
        if (page.length === 0) break;
        for (const r of page) {
          if (r.signingJob) await this.s.signing.cancel(r.signingJob, reason);
          await this.s.store.updateRequest(r.id, { status: "failed", outcome: { reason } });
          ids.push(r.id);
        }
        after = page.at(-1)!.seq;
      }
    }
    return ids;
  }

  /**
   * A CRL under the new CA certificate at once (RFC 5280 §5.2.1: its AKI is the issuer's SKI), not
   * when the timer next renews it; a CRL job in flight under the old one is cancelled first.
   */
  private async renewCrl(): Promise<void> {
    const state = await this.s.store.getCrlState();
    if (state.job) await this.s.signing.cancel(state.job, "the CA certificate changed");
    await this.s.revocations.scheduleCrl();
  }
}
