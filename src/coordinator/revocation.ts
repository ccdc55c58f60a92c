// Revocation and CRLs. Revoking records the serial and asks the threshold for a new CRL; the CRL is
// a signing job like a certificate, and custodians check it before they sign (docs/architecture.md §3.9). One
// CRL job runs at a time; revocations that arrive meanwhile go into the next one.
import type { LoadedConfig } from "../config/load.ts";
import { OFFERED_REVOCATION_REASONS, type CrlParams } from "../protocol/crl-params.ts";
import { buildCrlTbs, type CrlEntry, type RevocationReason } from "../x509/crl.ts";
import { CoordinatorError } from "./errors.ts";
import type { CoordinatorHooks } from "./hooks.ts";
import type { CaMaterial } from "./ca-material.ts";
import type { SigningService } from "./signing.ts";
import type { RequestRecord, SigningJobRecord, Store } from "./store/types.ts";
import { verifySigned } from "./verify-signed.ts";
import { clock } from "./clock.ts";
import { appendAudit } from "./audit/log.ts";
import { displaySerial, storedSerial } from "../x509/serial.ts";

/**
 * Who revokes. An ACME account (RFC 8555 §7.6) acts under a requester grant; `name` is the account's
 * id, and it may revoke only certificates whose request came from an order of that account (the ACME
 * module checks this too; this service has the last word). `revokedBy` records `acme:<account>`.
 * A `holder` proved possession of the certificate's own private key (RFC 8555 §7.6, checked by the
 * ACME module): it may revoke that one certificate; `name` is the key's JWK thumbprint, recorded as
 * `holder:<thumbprint>`.
 */
export type RevocationActor =
  | { kind: "admin"; name: string }
  | { kind: "requester"; name: string }
  | { kind: "acme"; name: string; requester: string }
  | { kind: "holder"; name: string; serial: string };

/** Serial as stored: hex content octets. Accepts "0x", colons, upper case, with or without the sign octet. */
export function normaliseSerial(input: string): string {
  const stored = storedSerial(input);
  if (stored === undefined)
    throw new CoordinatorError("BAD_REQUEST", `"${input}" is not a hexadecimal serial number`);
  return stored;
}

/** Whether this actor may revoke the certificate of request `r` (docs/security-model.md). */
function mayRevoke(actor: RevocationActor, r: RequestRecord): boolean {
  switch (actor.kind) {
    case "admin":
      return true;
    case "requester":
      return actor.name === r.requester;
    case "acme":
      return r.origin?.kind === "acme" && r.origin.account === actor.name && r.requester === actor.requester;
    case "holder":
      return r.serial === actor.serial;
  }
}

export class RevocationService {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly signing: SigningService,
    private readonly ca: CaMaterial,
    private readonly hooks: CoordinatorHooks,
  ) {}

  async revoke(
    serialInput: string,
    reason: RevocationReason,
    actor: RevocationActor,
  ): Promise<{ serial: string; reason: string; revokedAt: string }> {
    const serial = normaliseSerial(serialInput);
    // certificateHold is not offered: nothing could release it (docs/revocation.md).
    if (!(OFFERED_REVOCATION_REASONS as readonly string[]).includes(reason))
      throw new CoordinatorError(
        "BAD_REQUEST",
        `reason must be one of: ${OFFERED_REVOCATION_REASONS.join(", ")}`,
      );
    return this.store.transaction(async () => {
      const r = await this.store.getRequestBySerial(serial);
      // Another requester's certificate is "not found", as for reads (docs/security-model.md): a
      // requester learns nothing about certificates that are not its own; an ACME account likewise
      // about certificates its own orders did not get.
      if (!r || r.status !== "issued" || !mayRevoke(actor, r))
        throw new CoordinatorError(
          "NOT_FOUND",
          `no certificate with serial ${serialInput} was issued by this CA` +
            (actor.kind === "requester"
              ? ` to requester ${actor.name}`
              : actor.kind === "acme"
                ? ` to ACME account ${actor.name}`
                : ""),
        );
      const revokedAt = new Date(Math.floor(clock.now() / 1000) * 1000).toISOString();
      const inserted = await this.store.insertRevocation({
        serial,
        requestId: r.id,
        reason,
        revokedAt,
        revokedBy: `${actor.kind}:${actor.name}`,
      });
      if (!inserted) throw new CoordinatorError("CONFLICT", `certificate ${serialInput} is already revoked`);
      await appendAudit(this.store, {
        kind: "revocation",
        subject: serial,
        body: { serial, requestId: r.id, reason, revokedAt, revokedBy: `${actor.kind}:${actor.name}` },
      });
      this.hooks.metrics.revocations.inc({ reason });
      await this.scheduleCrl();
      return { serial: displaySerial(serial), reason, revokedAt };
    });
  }

  /**
   * Starts a CRL job, or marks that one is needed after the one in flight. Call inside transaction():
   * the CRL state (store getCrlState/setCrlState) is read and written under the one-writer lock.
   */
  async scheduleCrl(): Promise<void> {
    const caDer = await this.ca.certificate();
    if (!caDer) return;
    const state = await this.store.getCrlState();
    if (state.job) {
      const job = await this.signing.record(state.job);
      if (job?.status === "signing") return this.store.setCrlState({ dirty: true });
    }
    // Never reuse a number a failed job used: custodians that signed it would refuse it again
    // (docs/architecture.md §3.9), and numbers only grow (RFC 5280 §5.2.3).
    const latest = await this.store.latestCrl();
    const attempted = BigInt(state.lastNumber);
    const published = BigInt(latest?.number ?? 0);
    const number = (attempted > published ? attempted : published) + 1n;
    await this.store.setCrlState({ lastNumber: Number(number) });
    const thisUpdate = new Date(Math.floor(clock.now() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.config.config.ca.crlValidityHours * 3_600_000);
    const entries: CrlEntry[] = (await this.store.listRevocations()).map((r) => ({
      serial: r.serial,
      revokedAt: new Date(r.revokedAt),
      reason: r.reason as RevocationReason,
    }));
    const tbs = buildCrlTbs({ caCertDer: caDer, crlNumber: number, thisUpdate, nextUpdate, entries });
    const params: CrlParams = {
      crlNumber: number.toString(),
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
      entries: entries.map((e) => ({
        serial: e.serial,
        revokedAt: e.revokedAt.toISOString(),
        reason: e.reason,
      })),
    };
    const job = await this.signing.createJob({
      kind: "crl",
      subjectRef: `crl-${number}`,
      tbs,
      params: { ...params },
      eligible: this.config.config.custodians.map((c) => c.name),
    });
    await this.store.setCrlState({ job, dirty: false });
  }

  /**
   * Signing job ended: assemble, parse again, verify against the CA key and only then publish
   * (docs/architecture.md §3.8, verify-signed.ts); start the next CRL if revocations queued up.
   */
  async onCrlSigned(job: SigningJobRecord, signature: Uint8Array | null): Promise<void> {
    if (job.kind !== "crl") throw new Error(`signing job ${job.id} is a ${job.kind} job, not a CRL job`);
    const checked = signature
      ? verifySigned({ kind: "crl", tbs: job.tbs, signature, caPublicKey: await this.ca.publicKey() })
      : undefined;
    if (checked?.ok) {
      const p = job.params;
      await this.store.insertCrl({
        number: Number(p.crlNumber),
        der: checked.der,
        thisUpdate: p.thisUpdate,
        nextUpdate: p.nextUpdate,
        createdAt: clock.iso(),
      });
      await appendAudit(this.store, {
        kind: "crl",
        subject: `crl-${p.crlNumber}`,
        body: {
          jobId: job.id,
          number: p.crlNumber,
          thisUpdate: p.thisUpdate,
          nextUpdate: p.nextUpdate,
          crl: Buffer.from(checked.der).toString("base64"),
        },
      });
      this.hooks.metrics.crls.inc();
    }
    // After a failed CRL job (or one whose CRL does not verify) the timer retries; going again at
    // once could loop on refusals.
    if (!checked?.ok) return this.store.setCrlState({ job: null, dirty: true });
    await this.store.setCrlState({ job: null });
    if ((await this.store.getCrlState()).dirty) await this.scheduleCrl();
  }

  async currentCrl(): Promise<Uint8Array> {
    const c = await this.store.latestCrl();
    if (!c) throw new CoordinatorError("NOT_FOUND", "no CRL has been signed yet");
    return c.der;
  }

  /** Re-issues the CRL when half its validity has passed (and retries after a failed CRL job). */
  startTimer(intervalMs = 60_000, lease?: { held(): Promise<boolean> }): void {
    this.#timer = setInterval(() => {
      void (lease ? lease.held() : Promise.resolve(true))
        .then((mine) => {
          if (!mine) return;
          return this.store.transaction(async () => {
            const latest = await this.store.latestCrl();
            const half = (this.config.config.ca.crlValidityHours * 3_600_000) / 2;
            const stale = !latest || Date.parse(latest.nextUpdate) - clock.now() < half;
            if (stale || (await this.store.getCrlState()).dirty) await this.scheduleCrl();
          });
        })
        .catch(() => undefined);
    }, intervalMs);
    this.#timer.unref();
  }
  stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
