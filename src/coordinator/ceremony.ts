// The coordinator's side of the key ceremony: it relays signed DKG envelopes, moves the ceremony
// through its stages when every custodian has spoken, checks complaints, and when all n confirm
// the same public key package it starts the root signing job. It never sees a share in the clear.
import { randomUUID, createHash } from "node:crypto";
import { canonicalJson, type LoadedConfig } from "../config/load.ts";
import { buildAnnouncement } from "../protocol/announcement.ts";
import { openEnvelope, rosterKeys, type EnvelopeHeader, type SignedEnvelope } from "../protocol/envelope.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  AbortBodySchema,
  ComplaintBodySchema,
  ConfirmBodySchema,
  Round1AckBodySchema,
  Round1BodySchema,
  Round2BodySchema,
  openShare,
} from "../protocol/dkg-messages.ts";
import { hpkePublicFromPrivate } from "../protocol/hpke.ts";
import {
  round1FromWire,
  hexToBytes,
  bytesToHex,
  publicFromWire,
  PublicPackageWireSchema,
} from "../threshold/encoding.ts";
import { groupPublicKey, publicPackageHash, shareMatchesCommitment } from "../threshold/dkg.ts";
import { identifierForName } from "../threshold/suite.ts";
import type { CeremonyFailure, CeremonyRecord, CeremonyStatus, Store } from "./store/types.ts";
import { CoordinatorError } from "./errors.ts";
import type { SigningService } from "./signing.ts";
import type { CoordinatorHooks } from "./hooks.ts";
import { buildRootTbs } from "../x509/root.ts";
import { randomSerial } from "../x509/serial.ts";
import { ed25519Spki } from "../x509/tbs.ts";
import { clock } from "./clock.ts";
import type { KeyState } from "../protocol/lifecycle.ts";
import { rosterDigest, rosterOf } from "../protocol/roster.ts";
import { publicPackageDigest } from "../threshold/lifecycle.ts";
import { META_KEY_STATE } from "./lifecycle/key-state.ts";
import { appendAudit } from "./audit/log.ts";

export type { CeremonyFailure } from "./store/types.ts";

/** One stage's messages: what `GET /api/v1/ceremonies/:id/messages?type=` answers. */
/** What the ceremony routes answer: the wire schemas' types (src/protocol/ceremony-views.ts). */
export type { CeremonyView, CeremonyMessagesView as CeremonyMessages } from "../protocol/ceremony-views.ts";
import type { CeremonyView, CeremonyMessagesView as CeremonyMessages } from "../protocol/ceremony-views.ts";
import type { DkgMessageType } from "../protocol/enums.ts";

/** Which message type each stage accepts, and the stage that follows once all n have sent it. */
const STAGES: Partial<Record<CeremonyStatus, { type: string; next: CeremonyStatus }>> = {
  round1: { type: "dkg/round1", next: "round1-ack" },
  "round1-ack": { type: "dkg/round1-ack", next: "round2" },
  round2: { type: "dkg/round2", next: "confirm" },
  confirm: { type: "dkg/confirm", next: "root-signing" },
};

export const META_CA_KEY = "ca.publicKeyPackage";
export const META_CA_CERT = "ca.certificate";

export class CeremonyService {
  readonly #roster: Map<string, string>;
  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly signing: SigningService,
    private readonly hooks: CoordinatorHooks,
  ) {
    this.#roster = rosterKeys(config.config.custodians);
  }

  async start(): Promise<CeremonyView> {
    return this.store.transaction(async () => {
      if (await this.store.getMeta(META_CA_KEY))
        throw new CoordinatorError("CONFLICT", "this CA already has a key; a new ceremony would replace it");
      const latest = await this.store.latestCeremony();
      if (latest && latest.status !== "failed") {
        throw new CoordinatorError("CONFLICT", `ceremony ${latest.id} is already ${latest.status}`, {
          ceremony: latest.id,
        });
      }
      const id = randomUUID(); // never reused: a failed ceremony gets a new id (docs/architecture.md §3.5)
      const now = clock.iso();
      const announcement = buildAnnouncement(id, this.config);
      await this.store.insertCeremony({
        id,
        announcement,
        status: "round1",
        failure: null,
        createdAt: now,
        updatedAt: now,
      });
      await appendAudit(this.store, {
        kind: "ceremony",
        subject: id,
        body: { event: "started", ceremonyId: id, announcement },
      });
      this.hooks.changed();
      return this.view(id);
    });
  }

  async view(id: string): Promise<CeremonyView> {
    const c = id === "current" ? await this.store.latestCeremony() : await this.store.getCeremony(id);
    if (!c)
      throw new CoordinatorError(
        "NOT_FOUND",
        id === "current" ? "no ceremony has been started" : `no ceremony ${id}`,
      );
    const received: Record<string, string[]> = {};
    for (const type of ["dkg/round1", "dkg/round1-ack", "dkg/round2", "dkg/confirm"]) {
      received[type] = (await this.store.listMessages(c.id, type)).map((m) => m.sender);
    }
    return {
      id: c.id,
      status: c.status,
      announcement: c.announcement,
      failure: c.failure,
      received,
    };
  }

  /**
   * The signed envelopes of one type, exactly as their senders posted them. With `waitMs` this is a
   * long-poll: it answers as soon as every custodian has sent that type or the ceremony has ended
   * (failed or complete), else when the wait is over, so a custodian learns that a stage is
   * complete within milliseconds and with one request.
   */
  async messages(
    id: string,
    type: DkgMessageType,
    o: { waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<CeremonyMessages> {
    const deadline = clock.now() + (o.waitMs ?? 0);
    for (;;) {
      // Read the change counter before the state: a change committed after these reads bumps it,
      // so the wait below returns at once instead of missing that change.
      const seq = this.hooks.feed.seq;
      const c = await this.store.getCeremony(id);
      if (!c) throw new CoordinatorError("NOT_FOUND", `no ceremony ${id}`);
      const rows = await this.store.listMessages(id, type);
      const complete = rows.length >= this.#roster.size;
      const left = deadline - clock.now();
      if (complete || c.status === "failed" || c.status === "complete" || left <= 0 || o.signal?.aborted) {
        return {
          id: c.id,
          type,
          status: c.status,
          failure: c.failure,
          complete,
          // Stored verbatim once their signatures checked (receive below).
          messages: rows.map((m) => JSON.parse(m.envelope) as SignedEnvelope),
        };
      }
      await this.hooks.feed.wait(seq, left, o.signal);
    }
  }

  /** Accepts one signed envelope from a custodian. */
  async receive(id: string, envelope: unknown): Promise<CeremonyView> {
    try {
      return await this.receiveLocked(id, envelope);
    } finally {
      // Wake long-polling custodians once the transaction has committed (docs/architecture.md §3.5 stages are
      // read from the store, so a waiter must never see the state before this message).
      this.hooks.changed();
    }
  }

  private async receiveLocked(id: string, envelope: unknown): Promise<CeremonyView> {
    return this.store.transaction(async () => {
      const c = await this.store.getCeremony(id);
      if (!c) throw new CoordinatorError("NOT_FOUND", `no ceremony ${id}`);
      let h: EnvelopeHeader;
      try {
        h = openEnvelope(envelope, this.#roster, { scope: id, caKeyId: null, recipient: "*" });
        if (h.recipient !== "*")
          throw new ProtocolError(
            "ENVELOPE_WRONG_CONTEXT",
            `${h.type} from ${h.sender} must be addressed to every custodian ("*")`,
            h.sender,
          );
      } catch (e) {
        if (e instanceof ProtocolError)
          throw new CoordinatorError("BAD_REQUEST", e.message, { culprit: e.culprit });
        throw e;
      }
      this.hooks.heard(h.sender, h.type);
      this.hooks.changed();
      if (c.status === "failed" || c.status === "complete") {
        throw new CoordinatorError("CONFLICT", `ceremony ${id} is ${c.status}`);
      }
      if (h.type === "dkg/abort" || h.type === "dkg/complaint") {
        // Once all n confirmed the key it is active on every node: too late to abort the ceremony.
        if (!STAGES[c.status])
          throw new CoordinatorError("CONFLICT", `ceremony ${id} is past its DKG stages (${c.status})`);
        return h.type === "dkg/abort" ? this.onAbort(c, h) : this.onComplaint(c, h);
      }
      const stage = STAGES[c.status];
      if (!stage || stage.type !== h.type) {
        throw new CoordinatorError(
          "CONFLICT",
          `ceremony ${id} is in stage ${c.status} and does not take ${h.type} now`,
        );
      }
      this.checkBody(h);
      const inserted = await this.store.insertMessage({
        id: h.id,
        scope: id,
        type: h.type,
        sender: h.sender,
        recipient: h.recipient,
        attempt: 0,
        envelope: JSON.stringify(envelope),
        receivedAt: clock.iso(),
      });
      if (!inserted)
        throw new CoordinatorError(
          "CONFLICT",
          `${h.sender} already sent ${h.type} (or this message is a replay)`,
        );
      const all = await this.store.listMessages(id, h.type);
      if (all.length === this.#roster.size)
        await this.advance(
          c,
          stage.next,
          all.map((m) => m.envelope),
        );
      return this.view(id);
    });
  }

  private checkBody(h: EnvelopeHeader): void {
    const schema = {
      "dkg/round1": Round1BodySchema,
      "dkg/round1-ack": Round1AckBodySchema,
      "dkg/round2": Round2BodySchema,
      "dkg/confirm": ConfirmBodySchema,
    }[h.type as "dkg/round1"];
    const parsed = schema?.safeParse(h.body);
    if (!parsed?.success)
      throw new CoordinatorError("BAD_REQUEST", `${h.type} from ${h.sender} has a malformed body`);
    if (h.type === "dkg/round1") {
      const body = Round1BodySchema.parse(h.body);
      if (body.round1.identifier !== identifierForName(h.sender)) {
        throw new CoordinatorError(
          "BAD_REQUEST",
          `round-1 package from ${h.sender} carries another custodian's identifier`,
        );
      }
    }
  }

  private async advance(c: CeremonyRecord, next: CeremonyStatus, envelopes: string[]): Promise<void> {
    const bodies = envelopes.map((e) => openEnvelope(JSON.parse(e), this.#roster));
    if (c.status === "round1-ack") {
      const hashes = new Set(bodies.map((h) => Round1AckBodySchema.parse(h.body).transcriptHash));
      if (hashes.size !== 1) {
        return this.fail(c.id, {
          reason:
            "custodians saw different round-1 transcripts: a round-1 package was altered or equivocated",
          culprits: [],
        });
      }
    }
    if (c.status === "confirm") {
      const confirms = bodies.map((h) => ConfirmBodySchema.parse(h.body));
      // Each confirmation must be a hash of the very package it carries, and that package must fit the
      // roster; otherwise one custodian could get altered verifying shares activated (docs/architecture.md
      // §3.5).
      const ids = [...this.#roster.keys()].map(identifierForName).sort();
      for (const [i, b] of confirms.entries()) {
        const sender = bodies[i]!.sender;
        let pub;
        try {
          pub = publicFromWire(b.publicPackage);
        } catch {
          return this.fail(c.id, {
            reason: `${sender}'s public key package is malformed`,
            culprits: [sender],
          });
        }
        const fits =
          publicPackageHash(c.id, pub) === b.publicPackageHash &&
          b.publicPackage.min === this.config.config.threshold &&
          b.publicPackage.max === ids.length &&
          b.publicPackage.commitments.length === this.config.config.threshold &&
          canonicalJson(Object.keys(b.publicPackage.verifyingShares).sort()) === canonicalJson(ids);
        if (!fits) {
          return this.fail(c.id, {
            reason: `${sender} confirmed a public key package that does not match its own hash or the roster`,
            culprits: [sender],
          });
        }
      }
      if (new Set(confirms.map((b) => b.publicPackageHash)).size !== 1) {
        return this.fail(c.id, {
          reason: "custodians derived different group public key packages",
          culprits: [],
        });
      }
      const pkg = confirms[0]!.publicPackage;
      await this.store.setMeta(META_CA_KEY, canonicalJson(pkg));
      // The key state this ceremony puts in force (docs/key-lifecycle.md, "Epochs"): epoch 0 under
      // the roster it ran with. Stored, so that a later edit of ca-config's roster is reported as a
      // roster mismatch instead of silently becoming the roster in force.
      const roster = rosterOf(this.config.config);
      const keyState: KeyState = {
        epoch: 0,
        roster,
        rosterDigest: rosterDigest(roster),
        publicPackageDigest: publicPackageDigest(publicFromWire(pkg)),
        ceremonyId: c.id,
        since: clock.iso(),
      };
      await this.store.setMeta(META_KEY_STATE, canonicalJson(keyState));
      const caPublicKey = groupPublicKey(publicFromWire(pkg));
      // The n signed confirmations prove the CA key to anyone holding the roster (docs/audit.md).
      await appendAudit(this.store, {
        kind: "ceremony",
        subject: c.id,
        body: {
          event: "key",
          ceremonyId: c.id,
          publicKey: bytesToHex(caPublicKey),
          caKeyId: caKeyIdOf(caPublicKey),
          confirmations: envelopes.map((e) => JSON.parse(e) as unknown),
        },
      });
      await this.startRootSigning(c.id, caPublicKey);
    }
    await this.store.updateCeremony(c.id, { status: next });
  }

  private async startRootSigning(ceremonyId: string, caPublicKey: Uint8Array): Promise<void> {
    const cfg = this.config.config.ca;
    // A minute in the past absorbs small clock differences between relying parties.
    const notBefore = new Date(Math.floor(clock.now() / 1000) * 1000 - 60_000);
    const notAfter = new Date(notBefore.getTime() + cfg.rootValidityDays * 86_400_000);
    const serial = randomSerial();
    const tbs = buildRootTbs({ subject: cfg.subject, caPublicKey, serial, notBefore, notAfter });
    await this.signing.createJob({
      kind: "root",
      subjectRef: ceremonyId,
      tbs,
      params: {
        ceremonyId,
        serial: bytesToHex(serial),
        notBefore: notBefore.toISOString(),
        notAfter: notAfter.toISOString(),
      },
      eligible: [...this.#roster.keys()],
    });
  }

  /** Called by the signing service when the root job ends. */
  async onRootSigned(ceremonyId: string, certificateDer: Uint8Array | null, failure?: string): Promise<void> {
    if (!certificateDer)
      return this.fail(ceremonyId, { reason: `root signing failed: ${failure ?? "unknown"}`, culprits: [] });
    await this.store.setMeta(META_CA_CERT, Buffer.from(certificateDer).toString("base64"));
    await this.store.updateCeremony(ceremonyId, { status: "complete" });
    const raw = await this.store.getMeta(META_CA_KEY);
    const caPublicKey = raw
      ? groupPublicKey(publicFromWire(PublicPackageWireSchema.parse(JSON.parse(raw))))
      : null;
    if (caPublicKey)
      await appendAudit(this.store, {
        kind: "ceremony",
        subject: ceremonyId,
        body: {
          event: "complete",
          ceremonyId,
          publicKey: bytesToHex(caPublicKey),
          caKeyId: caKeyIdOf(caPublicKey),
          certificate: Buffer.from(certificateDer).toString("base64"),
        },
      });
    this.hooks.changed();
  }

  private async onAbort(c: CeremonyRecord, h: EnvelopeHeader): Promise<CeremonyView> {
    const body = AbortBodySchema.safeParse(h.body);
    if (!body.success)
      throw new CoordinatorError("BAD_REQUEST", `abort from ${h.sender} has a malformed body`);
    await this.fail(c.id, {
      reason: `${h.sender} aborted: ${body.data.reason}`,
      culprits: body.data.culprits,
    });
    return this.view(c.id);
  }

  /**
   * A complaint reveals the complainer's ceremony HPKE private key, so anyone can decrypt the
   * accused's share and check it against the accused's commitment (docs/architecture.md §3.5). Whoever the
   * check blames — the accused for a bad share, the complainer for a false complaint — is the culprit.
   */
  private async onComplaint(c: CeremonyRecord, h: EnvelopeHeader): Promise<CeremonyView> {
    const body = ComplaintBodySchema.safeParse(h.body);
    if (!body.success)
      throw new CoordinatorError("BAD_REQUEST", `complaint from ${h.sender} has a malformed body`);
    const { accused, hpkePrivateKey } = body.data;
    const verdict = await this.judgeComplaint(c.id, h.sender, accused, hexToBytes(hpkePrivateKey));
    await this.fail(c.id, verdict);
    return this.view(c.id);
  }

  private async judgeComplaint(
    ceremonyId: string,
    complainer: string,
    accused: string,
    sk: Uint8Array,
  ): Promise<CeremonyFailure> {
    const find = async (type: string, sender: string) => {
      const m = (await this.store.listMessages(ceremonyId, type)).find((x) => x.sender === sender);
      return m ? openEnvelope(JSON.parse(m.envelope), this.#roster) : undefined;
    };
    const complainerR1 = await find("dkg/round1", complainer);
    const accusedR1 = await find("dkg/round1", accused);
    const accusedR2 = await find("dkg/round2", accused);
    if (!complainerR1 || !accusedR1 || !accusedR2) {
      return {
        reason: `${complainer} complained about ${accused} before their messages existed`,
        culprits: [complainer],
      };
    }
    const published = Round1BodySchema.parse(complainerR1.body).hpkePublicKey;
    if (bytesToHex(hpkePublicFromPrivate(sk)) !== published) {
      return {
        reason: `${complainer} complained about ${accused} with a key that is not its ceremony HPKE key`,
        culprits: [complainer],
      };
    }
    const sealed = Round2BodySchema.parse(accusedR2.body).shares[complainer];
    if (!sealed) return { reason: `${accused} sent no round-2 share to ${complainer}`, culprits: [accused] };
    let share: Uint8Array;
    try {
      share = await openShare(sk, sealed, { ceremonyId, sender: accused, recipient: complainer });
    } catch {
      return { reason: `${accused}'s round-2 share for ${complainer} does not decrypt`, culprits: [accused] };
    }
    const commitment = round1FromWire(Round1BodySchema.parse(accusedR1.body).round1);
    if (!shareMatchesCommitment(identifierForName(complainer), commitment, share)) {
      return {
        reason: `${accused} sent ${complainer} a round-2 share that does not match ${accused}'s commitment (verified from the revealed key)`,
        culprits: [accused],
      };
    }
    return {
      reason: `${complainer} complained about ${accused}, but the revealed share is valid: false complaint`,
      culprits: [complainer],
    };
  }

  private async fail(id: string, failure: CeremonyFailure): Promise<void> {
    await this.store.updateCeremony(id, { status: "failed", failure });
    await appendAudit(this.store, {
      kind: "ceremony",
      subject: id,
      body: { event: "failed", ceremonyId: id, reason: failure.reason },
    });
    this.hooks.changed();
  }
}

/** CA key id: SHA-256 of the CA's SubjectPublicKeyInfo DER (docs/architecture.md §3.3). */
export function caKeyIdOf(caPublicKey: Uint8Array): string {
  return createHash("sha256").update(ed25519Spki(caPublicKey)).digest("hex");
}
