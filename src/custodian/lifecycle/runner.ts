// A custodian's side of a key lifecycle ceremony: refresh, reshare or repair (docs/key-lifecycle.md).
// Like the DKG (src/custodian/dkg-runner.ts): everything secret lives in this process's memory, each
// stage waits until all of its senders have spoken, every envelope is checked against the sender's
// identity key, and any fault ends in a signed abort or a verifiable complaint naming the culprit.
// Before it sends anything, the custodian checks the coordinator's plan against what it knows
// itself: its ca-config, its key share and the roster change's signatures.
import { createHash } from "node:crypto";
import { z } from "zod";
import type { LoadedConfig } from "../../config/load.ts";
import { canonicalJson } from "../../common/canonical-json.ts";
import { bytesToHex, hexToBytes } from "../../common/hex.ts";
import {
  openEnvelope,
  ReplayGuard,
  sealEnvelope,
  type EnvelopeHeader,
  type Signer,
} from "../../protocol/envelope.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { generateHpkeKeyPair, type HpkeKeyPair } from "../../protocol/hpke.ts";
import {
  LcConfirmBodySchema,
  LcRound1AckBodySchema,
  LcRound1BodySchema,
  LcSharesBodySchema,
  LifecycleViewSchema,
  openLcValue,
  participants,
  planHash,
  planSigningKeys,
  sealLcValue,
  type LcRound1Body,
  type LifecycleMessageType,
  type LifecyclePlan,
  type LifecycleView,
} from "../../protocol/lifecycle.ts";
import { checkRosterChange, rosterDigest, rosterOf, type Roster } from "../../protocol/roster.ts";
import type { SealedShare } from "../../protocol/dkg-messages.ts";
import { publicFromWire, publicToWire, type PublicPackageWire } from "../../threshold/encoding.ts";
import {
  dealingCommitmentValid,
  dealtShareValid,
  publicPackageDigest,
  refreshCombine,
  refreshDeal,
  refreshedPublic,
  repairCombine,
  repairCommitmentsValid,
  repairDeal,
  repairPieceValid,
  repairSigma,
  repairSigmaValid,
  reshareCombine,
  reshareDeal,
  resharedPublic,
} from "../../threshold/lifecycle.ts";
import { identifierForName, suite, type FrostPublic, type FrostSecret } from "../../threshold/suite.ts";
import type { CoordinatorClient } from "../client.ts";
import { CustodianError } from "../errors.ts";
import type { KeyShare } from "../home.ts";
import { caKeyIdFor } from "../ceremony.ts";
import { groupPublicKey } from "../../threshold/dkg.ts";

const MessagesSchema = z.object({
  status: z.string(),
  failure: z.object({ reason: z.string(), culprits: z.array(z.string()) }).nullable(),
  complete: z.boolean(),
  messages: z.array(z.unknown()),
});
const ChangesSchema = z.object({ seq: z.number().int().min(0) });
/** One long-poll's wait at the coordinator (its limit is 30 s). */
const LONG_POLL_SECONDS = 20;

type Stage = "lc/round2" | "lc/round3";

/**
 * Test seams for fault injection: a test plays a cheating dealer, helper or confirmer with the real
 * ceremony code. The CLI never sets them.
 */
export interface LifecycleTamper {
  /** Replace a value this custodian seals to `recipient` in `stage`. */
  value?: (stage: Stage, recipient: string, value: Uint8Array) => Uint8Array;
  /** Replace the public package this custodian confirms. */
  confirm?: (pkg: PublicPackageWire) => PublicPackageWire;
  /** Complain about this participant's round-2 value even though it checks. */
  falseComplaintAbout?: string;
}

export interface LifecycleRunOptions {
  client: CoordinatorClient;
  signer: Signer;
  /** This custodian's base64url identity signing key (its public half). */
  signingKey: string;
  /** The ca-config this custodian runs with: the NEW one for a reshare or repair. */
  config: LoadedConfig;
  /** The share this custodian holds now, if any (new holders and a lost custodian have none). */
  share: KeyShare | undefined;
  /** A ceremony id, or "current". */
  ceremony: string;
  progress?: (line: string) => void;
  timeoutMs?: number;
  tamper?: LifecycleTamper;
  /** Called with the new share after this custodian's checks pass and before it confirms. */
  beforeConfirm?: (share: KeyShare, plan: LifecyclePlan) => Promise<void>;
}

export interface LifecycleRunResult {
  plan: LifecyclePlan;
  /** The new share (receivers only), not yet active: the caller promotes it once the ceremony is complete. */
  share?: KeyShare;
}

/**
 * The change feed's next sequence number after `seq` (a long-poll), or undefined after a short
 * sleep for a reader the feed does not know: the lifecycle routes also answer a plan's participants
 * who are in no ca-config the coordinator runs with (a repaired custodian's new keys, a reshare's
 * new members; docs/key-lifecycle.md), the change feed does not.
 */
async function nextChange(
  client: CoordinatorClient,
  seq: number | undefined,
  waitSeconds: number,
): Promise<number | undefined> {
  try {
    return (
      await client.get(
        seq === undefined ? "/api/v1/changes?wait=0" : `/api/v1/changes?after=${seq}&wait=${waitSeconds}`,
        ChangesSchema,
      )
    ).seq;
  } catch (e) {
    const status = (e as { status?: number }).status;
    if (status !== 401 && status !== 403) throw e;
    await new Promise((r) => setTimeout(r, 1000));
    return undefined;
  }
}

/** The plan the coordinator announced, fetched once it exists (waiting on the change feed). */
export async function waitForLifecycle(
  client: CoordinatorClient,
  ceremony: string,
  timeoutMs: number,
): Promise<LifecycleView> {
  const deadline = Date.now() + timeoutMs;
  const path = `/api/v1/lifecycle/${encodeURIComponent(ceremony)}`;
  let seq = await nextChange(client, undefined, 0);
  for (;;) {
    try {
      return await client.get(path, LifecycleViewSchema);
    } catch (e) {
      // 404: not announced yet; 401/403: a new member is a participant only once the plan exists.
      const status = (e as { status?: number }).status;
      if (![404, 401, 403].includes(status ?? 0) || Date.now() > deadline) throw e;
    }
    const wait = Math.min(LONG_POLL_SECONDS, Math.ceil((deadline - Date.now()) / 1000));
    seq = await nextChange(client, seq, wait);
  }
}

/**
 * Follows a ceremony until it is complete or failed (after this custodian has done its part): a
 * long-poll on the confirmations, which the coordinator answers once every receiver confirmed or
 * the ceremony ended; readable by every participant of the plan.
 */
export async function waitForLifecycleEnd(
  client: CoordinatorClient,
  id: string,
  timeoutMs: number,
): Promise<LifecycleView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await client.get(`/api/v1/lifecycle/${id}`, LifecycleViewSchema);
    if (v.status === "complete" || v.status === "failed") return v;
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) throw new CustodianError("TIMEOUT", `timed out waiting for ceremony ${id} to complete`);
    const res = await client.get(
      `/api/v1/lifecycle/${id}/messages?type=lc%2Fconfirm&wait=${Math.min(LONG_POLL_SECONDS, left)}`,
      MessagesSchema,
    );
    // Every receiver confirmed, but the view did not say so yet: look again shortly, not in a spin.
    if (res.complete) await new Promise((r) => setTimeout(r, 200));
  }
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && new Set(a).size === a.length && a.every((x) => b.includes(x));

/**
 * Why this custodian must not take part in `plan`, or undefined. Everything here is checked from
 * the custodian's own knowledge: a coordinator that announces another roster, another key state or
 * an unsigned roster change is refused before any secret is dealt.
 */
export function planProblem(
  plan: LifecyclePlan,
  me: { name: string; signingKey: string; config: LoadedConfig; share: KeyShare | undefined },
): string | undefined {
  const mine = rosterOf(me.config.config);
  const newDigest = rosterDigest(plan.newRoster);
  const oldDigest = rosterDigest(plan.oldRoster);
  const all = participants(plan);
  const oldNames = plan.oldRoster.custodians.map((c) => c.name);
  const newNames = plan.newRoster.custodians.map((c) => c.name);
  if (!all.includes(me.name)) return `${me.name} does not take part in this ceremony`;
  if (rosterDigest(mine) !== newDigest)
    return "the ceremony's new roster is not the one in my ca-config (run with the ca-config the custodians signed)";
  const myEntry =
    plan.newRoster.custodians.find((c) => c.name === me.name) ??
    plan.oldRoster.custodians.find((c) => c.name === me.name);
  if (myEntry?.signingKey !== me.signingKey) return "the plan gives me other identity keys than mine";
  const pub = publicFromWire(plan.publicPackage);
  if (publicPackageDigest(pub) !== plan.publicPackageDigest)
    return "the plan's public key package does not match its digest";
  if (oldDigest === newDigest) {
    if (plan.rosterChange !== null) return "the plan carries a roster change but keeps the roster";
  } else {
    if (!plan.rosterChange) return "the plan changes the roster without a signed roster change";
    const s = plan.rosterChange.statement;
    if (s.from !== oldDigest || s.to !== newDigest)
      return "the roster change does not lead from the old roster to the new one";
    const check = checkRosterChange(plan.rosterChange, plan.oldRoster, plan.caKeyId);
    if (!check.ok) return `the roster change is not approved: ${check.reason}`;
  }
  if (me.share) {
    const s = me.share;
    if (s.caKeyId !== plan.caKeyId) return "the plan is for another CA key than my share's";
    if ((s.epoch ?? 0) !== plan.fromEpoch)
      return `the plan starts from key epoch ${plan.fromEpoch}; my share is of epoch ${s.epoch ?? 0}`;
    if (publicPackageDigest(publicFromWire(s.publicPackage)) !== plan.publicPackageDigest)
      return "the plan's public key package is not the one my share belongs to";
    if (s.roster) {
      if (rosterDigest(s.roster) !== oldDigest)
        return "the plan's old roster is not the one my share belongs to";
    } else if (rosterDigest(mine) !== oldDigest) {
      // A share from before the key lifecycle records no roster: the only roster this custodian
      // knows is its own ca-config's, so it takes part only in a plan that starts from that one.
      return "my share records no roster and the plan's old roster is not my ca-config's: open the custodian once (an agent or `tca custodian requests`) with the ca-config in force, then run the ceremony";
    }
  } else if (plan.dealers.includes(me.name)) {
    return "the plan has me deal, but I hold no share";
  } else if (caKeyIdFor(groupPublicKey(pub)) !== plan.caKeyId) {
    return "the plan's CA key id is not the key of its public key package";
  }
  const t = plan.oldRoster.threshold;
  switch (plan.kind) {
    case "refresh":
      if (oldDigest !== newDigest) return "a refresh must keep the roster";
      if (plan.toEpoch !== plan.fromEpoch + 1) return "a refresh must move to the next epoch";
      if (!sameSet(plan.dealers, oldNames) || !sameSet(plan.receivers, oldNames))
        return "in a refresh every custodian deals and receives";
      if (!me.share) return "a refresh needs my share, and I hold none";
      return undefined;
    case "reshare": {
      if (plan.toEpoch !== plan.fromEpoch + 1) return "a reshare must move to the next epoch";
      if (
        plan.dealers.length !== t ||
        new Set(plan.dealers).size !== t ||
        !plan.dealers.every((d) => oldNames.includes(d))
      )
        return `a reshare needs exactly ${t} distinct dealers from the old roster`;
      if (!sameSet(plan.receivers, newNames)) return "in a reshare every member of the new roster receives";
      const changed = plan.newRoster.custodians.find((c) => {
        const o = plan.oldRoster.custodians.find((x) => x.name === c.name);
        return o && (o.signingKey !== c.signingKey || o.hpkeKey !== c.hpkeKey);
      });
      if (changed) return `the reshare changes ${changed.name}'s identity keys (that is a repair)`;
      if (me.share === undefined && oldNames.includes(me.name))
        return "I am in the old roster but hold no share: repair me first";
      return undefined;
    }
    case "repair": {
      const lost = plan.lost;
      if (!lost) return "a repair must name the lost custodian";
      if (plan.toEpoch !== plan.fromEpoch) return "a repair keeps the epoch";
      if (!sameSet(plan.receivers, [lost])) return "in a repair only the lost custodian receives";
      const before = plan.oldRoster.custodians.find((c) => c.name === lost);
      const after = plan.newRoster.custodians.find((c) => c.name === lost);
      if (oldDigest === newDigest || !before || !after || before.signingKey === after.signingKey)
        return `a repair gives ${lost} new identity keys, signed by t custodians`;
      if (
        plan.dealers.length !== t ||
        new Set(plan.dealers).size !== t ||
        plan.dealers.includes(lost) ||
        !plan.dealers.every((d) => oldNames.includes(d))
      )
        return `a repair needs exactly ${t} distinct helpers other than ${lost}`;
      if (plan.newRoster.threshold !== t || !sameSet(newNames, oldNames))
        return "a repair must keep the threshold and the names";
      for (const c of plan.newRoster.custodians) {
        const o = plan.oldRoster.custodians.find((x) => x.name === c.name)!;
        if (c.name !== lost && (o.signingKey !== c.signingKey || o.hpkeKey !== c.hpkeKey))
          return `a repair of ${lost} must not change ${c.name}'s keys`;
      }
      if (me.name === lost && me.share) return "I am the custodian to repair, but I hold a share";
      return undefined;
    }
  }
}

/** H(plan ‖ every round-1 body, sorted by sender): what every participant acks (consistent broadcast). */
export function lifecycleTranscriptHash(
  plan: LifecyclePlan,
  bodies: ReadonlyMap<string, LcRound1Body>,
): string {
  const sorted = [...bodies].sort(([a], [b]) => (a < b ? -1 : 1)).map(([sender, body]) => ({ sender, body }));
  return createHash("sha256")
    .update("tca/lifecycle/round1-transcript/v1\n")
    .update(`${planHash(plan)}\n`)
    .update(canonicalJson(sorted))
    .digest("hex");
}

export class LifecycleRunner {
  readonly #o: LifecycleRunOptions & { timeoutMs: number };
  readonly #replay = new ReplayGuard();
  readonly #me: string;
  #plan!: LifecyclePlan;
  #keys = new Map<string, string>();
  #hpke: HpkeKeyPair | undefined;

  constructor(o: LifecycleRunOptions) {
    this.#o = { timeoutMs: 120_000, ...o };
    this.#me = o.signer.name;
  }

  private say(line: string) {
    this.#o.progress?.(line);
  }

  async run(): Promise<LifecycleRunResult> {
    const view = await waitForLifecycle(this.#o.client, this.#o.ceremony, this.#o.timeoutMs);
    if (view.status === "complete" || view.status === "failed")
      throw new CustodianError(
        "CEREMONY_FAILED",
        `lifecycle ceremony ${view.id} is already ${view.status}${view.failure ? `: ${view.failure.reason}` : ""}`,
      );
    const plan = view.plan;
    this.#plan = plan;
    this.#keys = planSigningKeys(plan);
    const problem = planProblem(plan, {
      name: this.#me,
      signingKey: this.#o.signingKey,
      config: this.#o.config,
      share: this.#o.share,
    });
    if (problem) {
      await this.abort(`refusing the ${plan.kind} plan: ${problem}`, []);
      throw new CustodianError(
        "ANNOUNCEMENT_MISMATCH",
        `refusing ${plan.kind} ${plan.ceremonyId}: ${problem}`,
      );
    }
    try {
      return await this.stages();
    } finally {
      this.#hpke?.privateKey.fill(0);
    }
  }

  private async stages(): Promise<LifecycleRunResult> {
    const plan = this.#plan;
    const me = this.#me;
    const id = identifierForName;
    const tNew = plan.newRoster.threshold;
    const all = participants(plan);
    const isDealer = plan.dealers.includes(me);
    const isReceiver = plan.receivers.includes(me);
    const oldPublic = publicFromWire(plan.publicPackage);
    const secret: FrostSecret | undefined = this.#o.share
      ? { identifier: this.#o.share.identifier, signingShare: hexToBytes(this.#o.share.signingShare) }
      : undefined;
    this.say(
      `${plan.kind} ${plan.ceremonyId}: ${plan.oldRoster.threshold}-of-${plan.oldRoster.custodians.length} → ` +
        `${tNew}-of-${plan.newRoster.custodians.length}, epoch ${plan.fromEpoch} → ${plan.toEpoch}; ` +
        `I ${[isDealer && (plan.kind === "repair" ? "help" : "deal"), isReceiver && "receive"].filter(Boolean).join(" and ")}`,
    );

    // Round 1: a fresh HPKE key for this ceremony only, and my dealing's commitments.
    this.#hpke = await generateHpkeKeyPair();
    let dealt: Record<string, Uint8Array> = {}; // recipient identifier → my value for it
    let commitment: string[] | null = null;
    let pieceCommitments: Record<string, string> | null = null;
    const byId = new Map(all.map((n) => [id(n), n]));
    if (isDealer && secret) {
      if (plan.kind === "refresh") {
        const d = refreshDeal(tNew, plan.receivers.map(id));
        dealt = d.shares;
        commitment = d.commitment.map(bytesToHex);
      } else if (plan.kind === "reshare") {
        const d = reshareDeal(secret, plan.dealers.map(id), tNew, plan.receivers.map(id));
        dealt = d.shares;
        commitment = d.commitment.map(bytesToHex);
      } else {
        const d = repairDeal(secret, plan.dealers.map(id), id(plan.lost!));
        dealt = d.pieces;
        pieceCommitments = Object.fromEntries(
          Object.entries(d.commitments).map(([k, v]) => [byId.get(k)!, bytesToHex(v)]),
        );
      }
    }
    const myRound1: LcRound1Body = {
      planHash: planHash(plan),
      hpkePublicKey: bytesToHex(this.#hpke.publicKey),
      commitment,
      pieceCommitments,
    };
    await this.send("lc/round1", myRound1);
    this.say("round 1 sent; waiting for the others");
    const r1 = await this.collect("lc/round1", all, LcRound1BodySchema);
    if (canonicalJson(r1.get(me)) !== canonicalJson(myRound1))
      throw await this.blame("my own round-1 message came back altered", []);
    const expectedHash = planHash(plan);
    for (const [sender, body] of r1) {
      if (body.planHash !== expectedHash)
        throw await this.blame(`${sender} took part in another plan`, [sender]);
      const dealer = plan.dealers.includes(sender);
      if (plan.kind === "repair") {
        if (
          body.commitment !== null ||
          (dealer ? body.pieceCommitments === null : body.pieceCommitments !== null)
        )
          throw await this.blame(`${sender}'s round-1 message has the wrong shape for its role`, [sender]);
        if (dealer) {
          const pc = body.pieceCommitments!;
          if (!sameSet(Object.keys(pc), plan.dealers))
            throw await this.blame(`${sender} committed to pieces for other helpers than the plan's`, [
              sender,
            ]);
          const points = Object.fromEntries(Object.entries(pc).map(([n, h]) => [id(n), hexToBytes(h)]));
          if (!repairCommitmentsValid(id(sender), plan.dealers.map(id), id(plan.lost!), oldPublic, points))
            throw await this.blame(
              `${sender}'s repair commitments do not add up to its weighted verifying share`,
              [sender],
            );
        }
      } else {
        if (body.pieceCommitments !== null || (dealer ? body.commitment === null : body.commitment !== null))
          throw await this.blame(`${sender}'s round-1 message has the wrong shape for its role`, [sender]);
        if (dealer && !dealingCommitmentValid(body.commitment!.map(hexToBytes), tNew - 1))
          throw await this.blame(
            `${sender}'s dealing does not commit to a polynomial of degree ${tNew - 1}`,
            [sender],
          );
      }
    }
    const transcriptHash = lifecycleTranscriptHash(plan, r1);
    await this.send("lc/round1-ack", { transcriptHash });
    this.say(`round 1 transcript ${transcriptHash.slice(0, 16)}…; waiting for all ${all.length} to agree`);
    const acks = await this.collect("lc/round1-ack", all, LcRound1AckBodySchema);
    const disagree = [...acks].filter(([, b]) => b.transcriptHash !== transcriptHash).map(([n]) => n);
    if (disagree.length > 0)
      throw await this.blame(
        `round-1 transcript seen by ${disagree.join(", ")} differs from mine: the coordinator or a sender equivocated`,
        [],
      );
    const hpkeOf = (n: string) => hexToBytes(r1.get(n)!.hpkePublicKey);

    // Round 2: my values, each sealed to its recipient's ceremony key (repair: pieces to helpers).
    const round2To = plan.kind === "repair" ? plan.dealers : plan.receivers;
    if (isDealer) {
      const shares: Record<string, SealedShare> = {};
      for (const r of round2To) {
        if (r === me) continue;
        let value = dealt[id(r)]!;
        if (this.#o.tamper?.value) value = this.#o.tamper.value("lc/round2", r, value);
        shares[r] = await sealLcValue(hpkeOf(r), value, {
          ceremonyId: plan.ceremonyId,
          stage: "lc/round2",
          sender: me,
          recipient: r,
        });
      }
      await this.send("lc/round2", { shares });
      this.say("round 2 sent");
    }
    const r2 = await this.collect("lc/round2", plan.dealers, LcSharesBodySchema);
    // The values addressed to me, each checked on its own so that a bad one names its sender.
    const received = new Map<string, Uint8Array>(); // dealer name → value for me
    if (round2To.includes(me)) {
      for (const dealer of plan.dealers) {
        if (dealer === me) {
          received.set(me, dealt[id(me)]!);
          continue;
        }
        const value = await this.open(r2.get(dealer)?.shares[me], "lc/round2", dealer);
        const ok =
          value !== undefined &&
          this.#o.tamper?.falseComplaintAbout !== dealer &&
          (plan.kind === "refresh"
            ? dealtShareValid({
                kind: "refresh",
                dealer: id(dealer),
                recipient: id(me),
                commitment: r1.get(dealer)!.commitment!.map(hexToBytes),
                share: value,
              })
            : plan.kind === "reshare"
              ? dealtShareValid({
                  kind: "reshare",
                  dealer: id(dealer),
                  dealers: plan.dealers.map(id),
                  oldPublic,
                  recipient: id(me),
                  commitment: r1.get(dealer)!.commitment!.map(hexToBytes),
                  share: value,
                })
              : repairPieceValid(value, hexToBytes(r1.get(dealer)!.pieceCommitments![me]!)));
        if (!ok) throw await this.complain(dealer, "lc/round2");
        received.set(dealer, value);
      }
    }

    let newSecret: FrostSecret | undefined;
    let newPublic: FrostPublic = oldPublic;
    if (plan.kind === "repair") {
      // Round 3: each helper's σ, sealed to the lost custodian's ceremony key.
      const lost = plan.lost!;
      if (isDealer) {
        let sigma = repairSigma([...received.values()]);
        if (this.#o.tamper?.value) sigma = this.#o.tamper.value("lc/round3", lost, sigma);
        const sealed = await sealLcValue(hpkeOf(lost), sigma, {
          ceremonyId: plan.ceremonyId,
          stage: "lc/round3",
          sender: me,
          recipient: lost,
        });
        sigma.fill(0);
        await this.send("lc/round3", { shares: { [lost]: sealed } });
        this.say(`round 3 sent: my sum, sealed to ${lost}`);
      }
      for (const v of received.values()) v.fill(0);
      if (me === lost) {
        const r3 = await this.collect("lc/round3", plan.dealers, LcSharesBodySchema);
        const sigmas: Uint8Array[] = [];
        for (const helper of plan.dealers) {
          const sigma = await this.open(r3.get(helper)?.shares[me], "lc/round3", helper);
          const toHelper = plan.dealers.map((i) => hexToBytes(r1.get(i)!.pieceCommitments![helper]!));
          if (!sigma || this.#o.tamper?.falseComplaintAbout === helper || !repairSigmaValid(sigma, toHelper))
            throw await this.complain(helper, "lc/round3");
          sigmas.push(sigma);
        }
        try {
          newSecret = repairCombine(id(lost), sigmas, oldPublic);
        } catch (e) {
          throw await this.blame(
            `the restored share does not match my verifying share: ${(e as Error).message}`,
            [],
          );
        } finally {
          for (const s of sigmas) s.fill(0);
        }
      }
    } else {
      if (isReceiver) {
        const values = plan.dealers.map((d) => received.get(d)!);
        newSecret =
          plan.kind === "refresh" ? refreshCombine(secret!, values) : reshareCombine(id(me), values);
        for (const v of values) v.fill(0);
      }
      // Every participant computes the new package from round 1, so that it can check the
      // receivers' confirmations itself rather than take the coordinator's word for the outcome.
      const commitments = plan.dealers.map((d) => r1.get(d)!.commitment!.map(hexToBytes));
      newPublic =
        plan.kind === "refresh"
          ? refreshedPublic(oldPublic, commitments)
          : resharedPublic(
              oldPublic,
              plan.dealers.map(id),
              Object.fromEntries(plan.dealers.map((d, i) => [id(d), commitments[i]!])),
              tNew,
              plan.receivers.map(id),
            );
    }
    for (const v of Object.values(dealt)) v.fill(0);
    if (secret) secret.signingShare.fill(0);

    const wire = publicToWire(newPublic);
    const digest = publicPackageDigest(newPublic);
    if (!isReceiver) {
      this.say(
        `my part is done; waiting for the ${plan.receivers.length === 1 ? "receiver" : `${plan.receivers.length} receivers`} to confirm`,
      );
      await this.confirmations(wire, digest);
      return { plan };
    }
    // My new share must fit the package everyone can compute from round 1.
    try {
      suite.validateSecret(newSecret!, newPublic);
    } catch (e) {
      throw await this.blame(
        `my new share does not match the new public key package: ${(e as Error).message}`,
        [],
      );
    }
    const share: KeyShare = {
      ceremonyId: plan.ceremonyId,
      identifier: newSecret!.identifier,
      signingShare: bytesToHex(newSecret!.signingShare),
      publicPackage: wire,
      caKeyId: plan.caKeyId,
      activatedAt: new Date().toISOString(),
      epoch: plan.toEpoch,
      roster: plan.newRoster,
    };
    newSecret!.signingShare.fill(0);
    // Stored as pending before I confirm: once every receiver confirmed, the coordinator activates it.
    await this.#o.beforeConfirm?.(share, plan);
    await this.send("lc/confirm", {
      publicPackageDigest: digest,
      publicPackage: this.#o.tamper?.confirm ? this.#o.tamper.confirm(wire) : wire,
    });
    this.say(`new share stored as pending; waiting for all ${plan.receivers.length} receivers to confirm`);
    await this.confirmations(wire, digest);
    return { plan, share };
  }

  /**
   * Every receiver's signed confirmation of exactly the package this custodian computed: the
   * ceremony's outcome, established by signatures rather than by the coordinator's status (a
   * coordinator that told some custodians "failed" and others "complete" could otherwise split the
   * holders between two epochs).
   */
  private async confirmations(wire: PublicPackageWire, digest: string): Promise<void> {
    const confirms = await this.collect("lc/confirm", this.#plan.receivers, LcConfirmBodySchema);
    const mine = canonicalJson(wire);
    const differ = [...confirms]
      .filter(([, b]) => b.publicPackageDigest !== digest || canonicalJson(b.publicPackage) !== mine)
      .map(([n]) => n);
    if (differ.length > 0)
      throw await this.blame(`${differ.join(", ")} confirmed another public key package`, differ);
  }

  /** Opens a value sealed to me in `stage` by `sender`; undefined if it is missing or does not open. */
  private async open(
    sealed: SealedShare | undefined,
    stage: Stage,
    sender: string,
  ): Promise<Uint8Array | undefined> {
    if (!sealed) return undefined;
    return openLcValue(this.#hpke!.privateKey, sealed, {
      ceremonyId: this.#plan.ceremonyId,
      stage,
      sender,
      recipient: this.#me,
    }).catch(() => undefined);
  }

  /**
   * Every envelope of `type` from `senders`, each verified. One long-poll request per stage: the
   * coordinator answers as soon as the last sender has spoken, or at once if the ceremony failed.
   */
  private async collect<T>(
    type: LifecycleMessageType,
    senders: readonly string[],
    body: z.ZodType<T>,
  ): Promise<Map<string, T>> {
    const id = this.#plan.ceremonyId;
    const deadline = Date.now() + this.#o.timeoutMs;
    let messages: unknown[];
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        // Abort at the coordinator too, so the stuck ceremony ends now rather than at its deadline.
        const reason = `timed out waiting for ${type} from ${senders.join(", ")}`;
        await this.abort(reason, []);
        throw new CustodianError("TIMEOUT", reason);
      }
      const res = await this.#o.client.get(
        `/api/v1/lifecycle/${id}/messages?type=${encodeURIComponent(type)}&wait=${Math.min(LONG_POLL_SECONDS, left)}`,
        MessagesSchema,
      );
      if (res.status === "failed") throw ceremonyFailed(res.failure);
      if (res.messages.length >= senders.length) {
        messages = res.messages;
        break;
      }
    }
    const out = new Map<string, T>();
    for (const m of messages) {
      let h: EnvelopeHeader;
      try {
        h = openEnvelope(m, this.#keys, {
          type,
          scope: id,
          caKeyId: this.#plan.caKeyId,
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
      if (!senders.includes(h.sender))
        throw await this.blame(`${h.sender} sent ${type} but is not to`, [h.sender]);
      const parsed = body.safeParse(h.body);
      if (!parsed.success) throw await this.blame(`${type} from ${h.sender} is malformed`, [h.sender]);
      if (out.has(h.sender)) throw await this.blame(`${h.sender} sent ${type} twice`, [h.sender]);
      out.set(h.sender, parsed.data);
    }
    if (out.size !== senders.length)
      throw await this.blame(`expected ${type} from ${senders.length} participants, got ${out.size}`, []);
    return out;
  }

  private async send(type: LifecycleMessageType, body: unknown): Promise<void> {
    const id = this.#plan.ceremonyId;
    const env = sealEnvelope(this.#o.signer, {
      type,
      recipient: "*",
      scope: id,
      caKeyId: this.#plan.caKeyId,
      body,
    });
    const path = `/api/v1/lifecycle/${id}/messages`;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#o.client.post(path, env, z.unknown());
        return;
      } catch (e) {
        const err = e as CustodianError & { status?: number };
        // A connection reset loses the answer, not necessarily the message: the same signed envelope
        // again is stored once.
        if (err.code === "COORDINATOR_UNREACHABLE" && attempt < 3) continue;
        if (err.status === 409) {
          const v = await this.#o.client.get(`/api/v1/lifecycle/${id}`, LifecycleViewSchema);
          if (v.status === "failed") throw ceremonyFailed(v.failure);
        }
        throw e;
      }
    }
  }

  /**
   * Verifiable complaint (docs/key-lifecycle.md): reveals this ceremony's HPKE private key so that
   * anyone can open the accused's value and check it against the accused's commitments.
   */
  private async complain(accused: string, stage: Stage): Promise<CustodianError> {
    await this.send("lc/complaint", {
      accused,
      stage,
      reason: "the value does not match the sender's commitments",
      hpkePrivateKey: bytesToHex(this.#hpke!.privateKey),
    });
    return new CustodianError(
      "CEREMONY_FAILED",
      `${accused} sent me a bad ${stage === "lc/round2" ? "round-2 value" : "repair sum"}; complaint published, ceremony aborted`,
      [accused],
    );
  }

  private async abort(reason: string, culprits: string[]): Promise<void> {
    const id = this.#plan?.ceremonyId;
    if (!id) return;
    await this.send("lc/abort", { reason: reason.slice(0, 1000), culprits }).catch(() => undefined);
  }

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

export type { Roster };
