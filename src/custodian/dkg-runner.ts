// A custodian's side of the key ceremony (docs/architecture.md §3.3–§3.5, §5). All DKG state lives in this
// process's memory: a crash aborts the ceremony. Each stage waits until every custodian has spoken,
// checks what it received against the sender's signature and its own view, and on any fault posts
// a signed abort or complaint naming the culprit, then stops.
import { z } from "zod";
import type { LoadedConfig } from "../config/load.ts";
import { compareAnnouncement, type Announcement } from "../protocol/announcement.ts";
import {
  openEnvelope,
  rosterKeys,
  sealEnvelope,
  ReplayGuard,
  type EnvelopeHeader,
  type MessageType,
  type Signer,
} from "../protocol/envelope.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  ConfirmBodySchema,
  Round1AckBodySchema,
  Round1BodySchema,
  Round2BodySchema,
  openShare,
  sealShare,
  type SealedShare,
} from "../protocol/dkg-messages.ts";
import { generateHpkeKeyPair } from "../protocol/hpke.ts";
import {
  dkgPart1,
  dkgPart2,
  dkgPart3,
  type DkgSecretState,
  groupPublicKey,
  publicPackageHash,
  round1TranscriptHash,
  shareMatchesCommitment,
} from "../threshold/dkg.ts";
import {
  bytesToHex,
  hexToBytes,
  publicToWire,
  type PublicPackageWire,
  round1FromWire,
  round1ToWire,
} from "../threshold/encoding.ts";
import {
  identifierForName,
  type DKG_Round1,
  type FrostPublic,
  type FrostSecret,
} from "../threshold/suite.ts";
import { canonicalJson } from "../config/load.ts";
import type { CoordinatorClient } from "./client.ts";
import { CustodianError } from "./errors.ts";
import { CeremonyViewSchema, type CeremonyView } from "../protocol/ceremony-views.ts";

const MessagesSchema = z.object({
  status: z.string(),
  failure: z.object({ reason: z.string(), culprits: z.array(z.string()) }).nullable(),
  complete: z.boolean(),
  messages: z.array(z.unknown()),
});
const ChangesSchema = z.object({ seq: z.number().int().min(0) });
/**
 * How long one long-poll may wait at the coordinator (its limit is 30 s, the client's timeout 30 s).
 * A custodian wakes as soon as a stage completes; this only bounds an idle request.
 */
const LONG_POLL_SECONDS = 20;

export interface DkgResult {
  ceremonyId: string;
  secret: FrostSecret;
  public: FrostPublic;
  announcement: Announcement;
}

export interface DkgOptions {
  client: CoordinatorClient;
  signer: Signer;
  config: LoadedConfig;
  /** A ceremony id, or "current" for the latest one. */
  ceremony: string;
  progress?: (line: string) => void;
  timeoutMs?: number;
  /**
   * Test seam for fault injection: lets a test play a dishonest custodian by altering the round-2
   * shares it sends. The CLI never sets it.
   */
  tamperRound2?: (shares: Record<string, Uint8Array>) => Record<string, Uint8Array>;
  /** Test seam: a dishonest custodian confirming a package other than the one its hash names. */
  tamperConfirm?: (pkg: PublicPackageWire) => PublicPackageWire;
}

export class DkgRunner {
  readonly #o: Required<Pick<DkgOptions, "timeoutMs">> & DkgOptions;
  readonly #roster: Map<string, string>;
  readonly #replay = new ReplayGuard();
  readonly #me: string;
  #ceremonyId = "";

  constructor(o: DkgOptions) {
    this.#o = { timeoutMs: 120_000, ...o };
    this.#roster = rosterKeys(o.config.config.custodians);
    this.#me = o.signer.name;
    if (!this.#roster.has(this.#me))
      throw new CustodianError("ANNOUNCEMENT_MISMATCH", `${this.#me} is not in this ca-config's roster`);
  }

  private say(line: string) {
    this.#o.progress?.(line);
  }

  async run(): Promise<DkgResult> {
    const view = await this.waitForCeremony();
    const a = view.announcement;
    this.#ceremonyId = a.ceremonyId;
    const mismatch = compareAnnouncement(a, this.#o.config);
    if (mismatch.length > 0) {
      const reason = `announcement does not match my ca-config: ${mismatch.join("; ")}`;
      await this.abort(reason, []);
      throw new CustodianError("ANNOUNCEMENT_MISMATCH", `refusing ceremony ${a.ceremonyId}: ${reason}`);
    }
    const n = a.custodians.length;
    const t = a.threshold;
    const myId = identifierForName(this.#me);
    this.say(`ceremony ${a.ceremonyId}: ${t}-of-${n}, subject "${a.caSubject}"`);

    // Part 1: commitment + proof of knowledge, and a fresh HPKE key for this ceremony only.
    const { round1, state } = dkgPart1(myId, t, n);
    const hpke = await generateHpkeKeyPair();
    const myRound1Body = {
      round1: round1ToWire(round1),
      hpkePublicKey: bytesToHex(hpke.publicKey),
      configDigest: this.#o.config.digest,
    };
    await this.send("dkg/round1", "*", myRound1Body);
    this.say("round 1 sent; waiting for the others");

    const r1 = await this.collect("dkg/round1", n, Round1BodySchema);
    const mine = r1.get(this.#me);
    if (!mine || canonicalJson(mine) !== canonicalJson(myRound1Body)) {
      await this.abort("my own round-1 package came back altered", []);
      throw new CustodianError("CEREMONY_ABORTED", "the coordinator altered my own round-1 package");
    }
    for (const [sender, body] of r1) {
      if (body.round1.identifier !== identifierForName(sender))
        throw await this.blame(`${sender}'s round-1 package carries a wrong identifier`, [sender]);
    }
    const packages = [...r1].map(([name, b]) => ({
      name,
      round1: round1FromWire(b.round1),
      hpkePublicKey: hexToBytes(b.hpkePublicKey),
    }));
    const transcriptHash = round1TranscriptHash({
      ceremonyId: a.ceremonyId,
      threshold: t,
      identifiers: a.custodians.map((c) => c.identifier),
      packages,
    });
    await this.send("dkg/round1-ack", "*", { transcriptHash });
    this.say(`round 1 transcript ${transcriptHash.slice(0, 16)}…; waiting for all ${n} to agree`);
    const acks = await this.collect("dkg/round1-ack", n, Round1AckBodySchema);
    const disagree = [...acks].filter(([, b]) => b.transcriptHash !== transcriptHash).map(([name]) => name);
    if (disagree.length > 0) {
      throw await this.blame(
        `round-1 transcript seen by ${disagree.join(", ")} differs from mine: the coordinator or a sender equivocated`,
        [],
      );
    }

    // Part 2: one share per other custodian, HPKE-sealed to its ceremony key, bound to ceremony/sender/recipient.
    const others = packages.filter((p) => p.name !== this.#me);
    let shares = dkgPart2(
      state,
      others.map((p) => p.round1),
    );
    if (this.#o.tamperRound2) shares = this.#o.tamperRound2(shares);
    const sealed: Record<string, SealedShare> = {};
    for (const p of others) {
      const share = shares[p.round1.identifier];
      if (!share) throw new CustodianError("CEREMONY_ABORTED", `no share computed for ${p.name}`);
      sealed[p.name] = await sealShare(p.hpkePublicKey, share, {
        ceremonyId: a.ceremonyId,
        sender: this.#me,
        recipient: p.name,
      });
    }
    await this.send("dkg/round2", "*", { shares: sealed });
    this.say("round 2 sent; checking the shares addressed to me");

    const r2 = await this.collect("dkg/round2", n, Round2BodySchema);
    const opened = await Promise.all(
      others.map(async (p) => {
        const s = r2.get(p.name)?.shares[this.#me];
        if (!s) return undefined;
        return openShare(hpke.privateKey, s, {
          ceremonyId: a.ceremonyId,
          sender: p.name,
          recipient: this.#me,
        }).catch(() => undefined);
      }),
    );
    const received: Record<string, Uint8Array> = {};
    for (const [i, p] of others.entries()) {
      const share = opened[i];
      if (!share) throw await this.complain(p.name, hpke.privateKey, state);
      received[p.round1.identifier] = share;
    }
    // noble's round 3 checks every received share against its sender's commitment on its own
    // (RFC 9591 Appendix C.2 vss_verify) before it combines anything, but names nobody when one
    // fails. So the per-sender check runs once, inside round 3, and is repeated sender by sender
    // only to name the culprit when round 3 refuses (docs/architecture.md §3.5): nothing is combined or
    // confirmed from a bad share either way.
    let key: ReturnType<typeof dkgPart3>;
    try {
      key = dkgPart3(
        state,
        others.map((p) => p.round1),
        received,
      );
    } catch (e) {
      const bad = others.find((p) => !shareMatchesCommitment(myId, p.round1, received[p.round1.identifier]!));
      if (bad) throw await this.complain(bad.name, hpke.privateKey, state);
      throw await this.blame(`DKG round 3 failed: ${(e as Error).message}`, []);
    }
    hpke.privateKey.fill(0);

    // Part 3 confirmation: every custodian signs the hash of the whole public key package.
    const pubHash = publicPackageHash(a.ceremonyId, key.public);
    const wire = publicToWire(key.public);
    await this.send("dkg/confirm", "*", {
      publicPackageHash: pubHash,
      publicPackage: this.#o.tamperConfirm ? this.#o.tamperConfirm(wire) : wire,
    });
    this.say(
      `group key ${bytesToHex(groupPublicKey(key.public)).slice(0, 16)}…; waiting for all ${n} to confirm it`,
    );
    const confirms = await this.collect("dkg/confirm", n, ConfirmBodySchema);
    const differ = [...confirms].filter(([, b]) => b.publicPackageHash !== pubHash).map(([name]) => name);
    if (differ.length > 0)
      throw await this.blame(`${differ.join(", ")} derived a different public key package`, []);
    // Each confirmation must carry the very package its hash names (not just the right hash).
    const myPackage = canonicalJson(wire);
    const lying = [...confirms]
      .filter(([, b]) => canonicalJson(b.publicPackage) !== myPackage)
      .map(([name]) => name);
    if (lying.length > 0)
      throw await this.blame(
        `${lying.join(", ")} confirmed a public key package that does not match its hash`,
        lying,
      );
    this.say("all custodians confirmed the group key");
    return { ceremonyId: a.ceremonyId, secret: key.secret, public: key.public, announcement: a };
  }

  /** The announced ceremony; waits on the coordinator's change feed while it does not exist yet. */
  private async waitForCeremony(): Promise<CeremonyView> {
    const deadline = Date.now() + this.#o.timeoutMs;
    const path = `/api/v1/ceremonies/${encodeURIComponent(this.#o.ceremony)}`;
    let seq = (await this.#o.client.get("/api/v1/changes?wait=0", ChangesSchema)).seq;
    for (;;) {
      try {
        return await this.#o.client.get(path, CeremonyViewSchema);
      } catch (e) {
        if ((e as { status?: number }).status !== 404 || Date.now() > deadline) throw e;
      }
      const wait = Math.min(LONG_POLL_SECONDS, Math.ceil((deadline - Date.now()) / 1000));
      seq = (await this.#o.client.get(`/api/v1/changes?after=${seq}&wait=${wait}`, ChangesSchema)).seq;
    }
  }

  /**
   * All n envelopes of `type`, each verified. One long-poll request per stage: the coordinator
   * answers as soon as the last custodian has spoken, or at once if the ceremony failed.
   */
  private async collect<T>(type: MessageType, n: number, body: z.ZodType<T>): Promise<Map<string, T>> {
    const deadline = Date.now() + this.#o.timeoutMs;
    let messages: unknown[];
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0)
        throw new CustodianError("TIMEOUT", `timed out waiting for ${type} from all ${n} custodians`);
      const res = await this.#o.client.get(
        `/api/v1/ceremonies/${this.#ceremonyId}/messages?type=${encodeURIComponent(type)}&wait=${Math.min(LONG_POLL_SECONDS, left)}`,
        MessagesSchema,
      );
      if (res.status === "failed") throw ceremonyFailed(res.failure);
      if (res.messages.length >= n) {
        messages = res.messages;
        break;
      }
    }
    const out = new Map<string, T>();
    for (const m of messages) {
      let h: EnvelopeHeader;
      try {
        h = openEnvelope(m, this.#roster, {
          type,
          scope: this.#ceremonyId,
          caKeyId: null,
          recipient: this.#me,
        });
        this.#replay.accept(h);
      } catch (e) {
        const culprit = e instanceof ProtocolError ? e.culprit : undefined;
        throw await this.blame(
          `a ${type} message does not verify (${(e as Error).message}); it was altered in transit or by the coordinator`,
          culprit ? [culprit] : [],
        );
      }
      const parsed = body.safeParse(h.body);
      if (!parsed.success) throw await this.blame(`${type} from ${h.sender} is malformed`, [h.sender]);
      if (out.has(h.sender)) throw await this.blame(`${h.sender} sent ${type} twice`, [h.sender]);
      out.set(h.sender, parsed.data);
    }
    if (out.size !== n) throw await this.blame(`expected ${type} from ${n} custodians, got ${out.size}`, []);
    return out;
  }

  private async send(type: MessageType, recipient: string, body: unknown): Promise<void> {
    const env = sealEnvelope(this.#o.signer, {
      type,
      recipient,
      scope: this.#ceremonyId,
      caKeyId: null,
      body,
    });
    const path = `/api/v1/ceremonies/${this.#ceremonyId}/messages`;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#o.client.post(path, env, z.unknown());
        return;
      } catch (e) {
        const err = e as CustodianError & { status?: number };
        // A connection reset loses the answer, not necessarily the message: send the same signed
        // envelope again (the coordinator stores each envelope once).
        if (err.code === "COORDINATOR_UNREACHABLE" && attempt < 3) continue;
        if (err.status === 409) {
          // Refused because the ceremony already failed: report why it failed, not the refusal.
          await this.failIfCeremonyFailed();
          // Refused as a repeat: fine if what the coordinator holds is this very envelope (sent
          // again here, or by the client itself: after a reset, or to another coordinator replica).
          if (await this.holds(type, env)) return;
        }
        throw e;
      }
    }
  }

  /** Whether the coordinator stores exactly this envelope (after a send whose answer was lost). */
  private async holds(type: MessageType, env: unknown): Promise<boolean> {
    const { messages } = await this.#o.client.get(
      `/api/v1/ceremonies/${this.#ceremonyId}/messages?type=${encodeURIComponent(type)}`,
      MessagesSchema,
    );
    const mine = canonicalJson(env);
    return messages.some((m) => canonicalJson(m) === mine);
  }

  private async failIfCeremonyFailed(): Promise<CeremonyView> {
    const view = await this.#o.client.get(`/api/v1/ceremonies/${this.#ceremonyId}`, CeremonyViewSchema);
    if (view.status === "failed") throw ceremonyFailed(view.failure);
    return view;
  }

  /**
   * Verifiable complaint (docs/architecture.md §3.5): reveals this ceremony's HPKE private key so that anyone
   * can decrypt the accused's share and re-check it against the accused's commitment.
   */
  private async complain(
    accused: string,
    hpkePrivateKey: Uint8Array,
    state: DkgSecretState,
  ): Promise<CustodianError> {
    state.wipe();
    await this.send("dkg/complaint", "*", {
      accused,
      reason: "round-2 share does not match the sender's commitment",
      hpkePrivateKey: bytesToHex(hpkePrivateKey),
    });
    return new CustodianError(
      "CEREMONY_FAILED",
      `${accused} sent me a bad round-2 share; complaint published, ceremony aborted`,
      [accused],
    );
  }

  private async abort(reason: string, culprits: string[]): Promise<void> {
    await this.send("dkg/abort", "*", { reason, culprits }).catch(() => undefined);
  }

  /** Posts a signed abort and returns the error to throw. */
  private async blame(reason: string, culprits: string[]): Promise<CustodianError> {
    await this.abort(reason, culprits);
    return new CustodianError("CEREMONY_ABORTED", reason, culprits);
  }
}

function ceremonyFailed(failure: { reason: string; culprits: string[] } | null): CustodianError {
  return new CustodianError(
    "CEREMONY_FAILED",
    `ceremony failed: ${failure?.reason ?? "unknown"}`,
    failure?.culprits ?? [],
  );
}

export type { DKG_Round1 };
