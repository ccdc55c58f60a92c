// The coordinator's side of the key lifecycle ceremonies (docs/key-lifecycle.md): refresh, reshare
// and repair. As in the DKG (src/coordinator/ceremony.ts) it plans, relays signed envelopes, moves
// the ceremony through its stages when every sender of a stage has spoken, judges complaints from
// the revealed ceremony key, and activates nothing until every receiver has confirmed the public
// package the coordinator computed itself from round 1. It never sees a share in the clear, except
// the one a complaint reveals on purpose.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { LoadedConfig } from "../../config/load.ts";
import { canonicalJson } from "../../common/canonical-json.ts";
import { bytesToHex, hexToBytes } from "../../common/hex.ts";
import { openEnvelope, type EnvelopeHeader, type SignedEnvelope } from "../../protocol/envelope.ts";
import { ProtocolError } from "../../protocol/errors.ts";
import { hpkePublicFromPrivate } from "../../protocol/hpke.ts";
import {
  LcAbortBodySchema,
  LcComplaintBodySchema,
  LcConfirmBodySchema,
  LcRound1AckBodySchema,
  LcRound1BodySchema,
  LcSharesBodySchema,
  LifecycleFailureSchema,
  LifecyclePlanSchema,
  LifecycleStartSchema,
  KeyStateSchema,
  LIFECYCLE_MESSAGE_TYPES,
  lifecycleStages,
  openLcValue,
  participants,
  planHash,
  planSigningKeys,
  type KeyState,
  type LcRound1Body,
  type LifecycleMessagesView,
  type LifecycleMessageType,
  type LifecyclePlan,
  type LifecycleStatus,
  type LifecycleView,
} from "../../protocol/lifecycle.ts";
import { checkRosterChange, rosterDigest, type Roster } from "../../protocol/roster.ts";
import {
  dealingCommitmentValid,
  dealtShareValid,
  publicPackageDigest,
  refreshedPublic,
  repairCommitmentsValid,
  repairPieceValid,
  repairSigmaValid,
  resharedPublic,
} from "../../threshold/lifecycle.ts";
import { publicToWire } from "../../threshold/encoding.ts";
import { identifierForName, type FrostPublic } from "../../threshold/suite.ts";
import { CoordinatorError } from "../errors.ts";
import type { CoordinatorHooks } from "../hooks.ts";
import type { Store } from "../store/types.ts";
import { appendAudit } from "../audit/log.ts";
import { clock } from "../clock.ts";
import {
  META_KEY_STATE,
  META_PUBLIC_PACKAGE,
  type KeyStateInForce,
  type KeyStateReader,
} from "./key-state.ts";
import type { RosterChanges } from "./roster-changes.ts";
import type { LifecycleDatabase } from "./tables.ts";

type Failure = { reason: string; culprits: string[] };

interface LcRecord {
  id: string;
  plan: LifecyclePlan;
  status: LifecycleStatus;
  failure: Failure | null;
  result: KeyState | null;
  /** The last stage change (clock.iso()). */
  updatedAt: string;
}

const ENDED: readonly LifecycleStatus[] = ["complete", "failed"];

/**
 * A lifecycle ceremony that has not moved for this long fails (docs/key-lifecycle.md): one silent
 * participant must not block every later ceremony. Counted from its last stage change.
 */
export const LIFECYCLE_TIMEOUT_MS = 15 * 60_000;

const CancelSchema = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();

/**
 * Who receives a sealed value in a values stage (docs/key-lifecycle.md): refresh and reshare round
 * 2 go to the receivers, repair round 2 (pieces) to the helpers, repair round 3 (sums) to the lost
 * custodian.
 */
function recipientsOf(plan: LifecyclePlan, stage: "lc/round2" | "lc/round3"): string[] {
  if (stage === "lc/round3") return plan.lost === null ? [] : [plan.lost];
  return plan.kind === "repair" ? plan.dealers : plan.receivers;
}
const id = identifierForName;

export class LifecycleService {
  constructor(
    private readonly store: Store,
    private readonly config: LoadedConfig,
    private readonly keyState: KeyStateReader,
    private readonly rosterChanges: RosterChanges,
    private readonly hooks: CoordinatorHooks,
    /** Runs in the completing transaction when the shares change (refresh, reshare). */
    private readonly onEpochChange: (epoch: number) => Promise<void> = async () => undefined,
  ) {}

  private db() {
    return this.store.queryBuilder<LifecycleDatabase>();
  }

  // ---- planning ----

  /** `POST /api/v1/lifecycle` (admin): checks the request against the key state in force, plans it, starts it. */
  async start(raw: unknown): Promise<LifecycleView> {
    const parsed = LifecycleStartSchema.safeParse(raw);
    if (!parsed.success)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `invalid lifecycle request: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`,
      );
    const start = parsed.data;
    const view = await this.store.transaction(async () => {
      const ks = await this.keyState.current();
      if (!ks) throw new CoordinatorError("CONFLICT", "the CA has no key yet: run the key ceremony first");
      const dkg = await this.db()
        .selectFrom("ceremonies")
        .select(["id", "status"])
        .where("status", "not in", ["complete", "failed"])
        .executeTakeFirst();
      if (dkg)
        throw new CoordinatorError("CONFLICT", `the key ceremony ${dkg.id} is still ${dkg.status}`, {
          ceremony: dkg.id,
        });
      const open = await this.db()
        .selectFrom("lifecycle_ceremonies")
        .select("id")
        .where("status", "not in", ["complete", "failed"])
        .executeTakeFirst();
      if (open) await this.expireLocked(open.id);
      const busy = await this.db()
        .selectFrom("lifecycle_ceremonies")
        .select(["id", "kind", "status"])
        .where("status", "not in", ["complete", "failed"])
        .executeTakeFirst();
      if (busy)
        throw new CoordinatorError(
          "CONFLICT",
          `${busy.kind} ceremony ${busy.id} is still in ${busy.status}`,
          {
            ceremony: busy.id,
          },
        );
      if (ks.state.rosterDigest !== this.keyState.configRosterDigest)
        throw new CoordinatorError(
          "CONFLICT",
          `this coordinator's ca-config roster (digest ${this.keyState.configRosterDigest}) is not the roster in force (digest ${ks.state.rosterDigest}): restart it with the ca-config the custodians signed`,
        );
      const plan = await this.plan(start, ks);
      const now = plan.createdAt;
      await this.db()
        .insertInto("lifecycle_ceremonies")
        .values({
          id: plan.ceremonyId,
          kind: plan.kind,
          plan: canonicalJson(plan),
          status: "round1",
          failure: null,
          result: null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      await appendAudit(this.store, {
        kind: "lifecycle",
        subject: plan.ceremonyId,
        body: { event: "lifecycle-started", ceremonyId: plan.ceremonyId, plan },
      });
      this.hooks.changed();
      return this.read(plan.ceremonyId);
    });
    return view;
  }

  private async plan(
    start: ReturnType<typeof LifecycleStartSchema.parse>,
    ks: KeyStateInForce,
  ): Promise<LifecyclePlan> {
    const old = ks.state.roster;
    const oldNames = old.custodians.map((c) => c.name);
    const base = {
      ceremonyId: randomUUID(),
      caKeyId: ks.caKeyId,
      fromEpoch: ks.state.epoch,
      publicPackageDigest: ks.state.publicPackageDigest,
      publicPackage: publicToWire(ks.publicPackage),
      oldRoster: old,
      createdAt: clock.iso(),
    };
    if (start.kind === "refresh") {
      return LifecyclePlanSchema.parse({
        ...base,
        kind: "refresh",
        toEpoch: ks.state.epoch + 1,
        newRoster: old,
        rosterChange: null,
        dealers: oldNames,
        receivers: oldNames,
        lost: null,
      });
    }
    const change = await this.rosterChanges.get(start.rosterDigest);
    if (!change)
      throw new CoordinatorError(
        "CONFLICT",
        `no roster change to ${start.rosterDigest} is on file: ${old.threshold} custodians of the roster in force must sign it first (tca ceremony sign-roster)`,
      );
    const check = checkRosterChange(change, old, ks.caKeyId, ks.state.ceremonyId);
    if (!check.ok)
      throw new CoordinatorError(
        "CONFLICT",
        `the roster change to ${start.rosterDigest} is not approved: ${check.reason}${check.signers.length ? ` (signed by ${check.signers.join(", ")})` : ""}`,
      );
    const next = change.statement.roster;
    if (rosterDigest(next) === ks.state.rosterDigest)
      throw new CoordinatorError("BAD_REQUEST", "the new roster is the roster in force: nothing to change");
    const before = new Map(old.custodians.map((c) => [c.name, c]));
    const rekeyed = next.custodians.filter((c) => {
      const b = before.get(c.name);
      return b !== undefined && (b.signingKey !== c.signingKey || b.hpkeKey !== c.hpkeKey);
    });
    if (start.kind === "reshare") {
      if (rekeyed.length > 0)
        throw new CoordinatorError(
          "BAD_REQUEST",
          `${rekeyed.map((c) => c.name).join(", ")} ${rekeyed.length === 1 ? "is" : "are"} in both rosters with different identity keys: that is a repair (tca ceremony repair), not a reshare`,
        );
      const kept = new Set(next.custodians.map((c) => c.name));
      const dealers = start.dealers
        ? this.chosen(start.dealers, old, "dealers", [])
        : [...oldNames.filter((n) => kept.has(n)), ...oldNames.filter((n) => !kept.has(n))].slice(
            0,
            old.threshold,
          );
      return LifecyclePlanSchema.parse({
        ...base,
        kind: "reshare",
        toEpoch: ks.state.epoch + 1,
        newRoster: next,
        rosterChange: change,
        dealers,
        receivers: next.custodians.map((c) => c.name),
        lost: null,
      });
    }
    // repair
    const lost = start.lost;
    if (!before.has(lost))
      throw new CoordinatorError("BAD_REQUEST", `${lost} is not a custodian of the roster in force`);
    const sameNames =
      next.threshold === old.threshold &&
      next.custodians.length === old.custodians.length &&
      next.custodians.every((c) => before.has(c.name));
    if (!sameNames || rekeyed.length !== 1 || rekeyed[0]!.name !== lost)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `the roster change to ${start.rosterDigest} is not a repair of ${lost}: the new roster must differ from the roster in force only in ${lost}'s identity keys`,
      );
    const helpers = start.helpers
      ? this.chosen(start.helpers, old, "helpers", [lost])
      : oldNames.filter((n) => n !== lost).slice(0, old.threshold);
    return LifecyclePlanSchema.parse({
      ...base,
      kind: "repair",
      toEpoch: ks.state.epoch,
      newRoster: next,
      rosterChange: change,
      dealers: helpers,
      receivers: [lost],
      lost,
    });
  }

  /** Dealers or helpers named by the admin: exactly t distinct members of the roster in force. */
  private chosen(names: string[], old: Roster, what: string, excluded: string[]): string[] {
    const members = new Set(old.custodians.map((c) => c.name));
    if (new Set(names).size !== names.length)
      throw new CoordinatorError("BAD_REQUEST", `${what} must be distinct: ${names.join(", ")}`);
    const strangers = names.filter((n) => !members.has(n));
    if (strangers.length)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `${what} must be custodians of the roster in force; ${strangers.join(", ")} ${strangers.length === 1 ? "is" : "are"} not`,
      );
    const bad = names.filter((n) => excluded.includes(n));
    if (bad.length)
      throw new CoordinatorError("BAD_REQUEST", `${bad.join(", ")} cannot be one of the ${what}`);
    if (names.length !== old.threshold)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `exactly ${old.threshold} ${what} are needed (the threshold in force), ${names.length} given`,
      );
    return [...names].sort();
  }

  // ---- reading ----

  private async record(ref: string): Promise<LcRecord | undefined> {
    let q = this.db().selectFrom("lifecycle_ceremonies").selectAll();
    q =
      ref === "current"
        ? q.orderBy("created_at", "desc").orderBy("id", "desc").limit(1)
        : q.where("id", "=", ref);
    const r = await q.executeTakeFirst();
    if (!r) return undefined;
    return {
      id: r.id,
      plan: LifecyclePlanSchema.parse(JSON.parse(r.plan)),
      status: r.status as LifecycleStatus,
      failure: r.failure ? LifecycleFailureSchema.parse(JSON.parse(r.failure)) : null,
      result: r.result ? KeyStateSchema.parse(JSON.parse(r.result)) : null,
      updatedAt: r.updated_at,
    };
  }

  private async mustRecord(ref: string): Promise<LcRecord> {
    const c = await this.record(ref);
    if (!c)
      throw new CoordinatorError(
        "NOT_FOUND",
        ref === "current" ? "no lifecycle ceremony has been started" : `no lifecycle ceremony ${ref}`,
      );
    return c;
  }

  /** The plan of a ceremony (or "current"), for read permissions; undefined if there is none. */
  async planOf(ref: string): Promise<LifecyclePlan | undefined> {
    return (await this.record(ref))?.plan;
  }

  async view(ref: string): Promise<LifecycleView> {
    await this.expire(ref);
    return this.read(ref);
  }

  /** The view, without the deadline check (inside a write transaction, which did it). */
  private async read(ref: string): Promise<LifecycleView> {
    const c = await this.mustRecord(ref);
    const rows = await this.db()
      .selectFrom("messages")
      .select(["type", "sender"])
      .where("scope", "=", c.id)
      .orderBy("received_at")
      .execute();
    const received: LifecycleView["received"] = {};
    for (const r of rows) {
      const t = r.type as LifecycleMessageType;
      if (!(LIFECYCLE_MESSAGE_TYPES as readonly string[]).includes(t)) continue;
      (received[t] ??= []).push(r.sender);
    }
    return {
      id: c.id,
      status: c.status,
      plan: c.plan,
      failure: c.failure,
      received,
      result: c.result,
    };
  }

  /**
   * One stage's envelopes, verbatim. With `waitMs` a long-poll, as the DKG's: it answers once every
   * sender of that stage has sent it or the ceremony has ended, else when the wait is over.
   */
  async messages(
    ref: string,
    type: LifecycleMessageType,
    o: { waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<LifecycleMessagesView> {
    await this.expire(ref);
    const deadline = clock.now() + (o.waitMs ?? 0);
    for (;;) {
      const seq = this.hooks.feed.seq; // before the reads: a later change wakes the wait at once
      const c = await this.mustRecord(ref);
      const rows = await this.store.listMessages(c.id, type);
      const stage = lifecycleStages(c.plan).find((s) => s.type === type);
      const senders = new Set(rows.map((m) => m.sender));
      const complete = stage !== undefined && stage.senders.every((s) => senders.has(s));
      const left = deadline - clock.now();
      if (complete || ENDED.includes(c.status) || left <= 0 || o.signal?.aborted)
        return {
          id: c.id,
          type,
          status: c.status,
          failure: c.failure,
          complete,
          messages: rows.map((m) => JSON.parse(m.envelope) as SignedEnvelope),
        };
      await this.hooks.feed.wait(seq, left, o.signal);
    }
  }

  // ---- ending a stuck ceremony ----

  /**
   * `POST /api/v1/lifecycle/{id}/cancel` (admin): fails a ceremony in progress, blaming no one. As
   * with any failure nothing it made is used and every share in force keeps working.
   */
  async cancel(ref: string, admin: string, raw: unknown): Promise<LifecycleView> {
    const parsed = CancelSchema.safeParse(raw ?? {});
    if (!parsed.success)
      throw new CoordinatorError(
        "BAD_REQUEST",
        `invalid cancel request: ${parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`,
      );
    const reason = parsed.data.reason ?? "no reason given";
    return this.store.transaction(async () => {
      const c = await this.mustRecord(ref);
      if (ENDED.includes(c.status))
        throw new CoordinatorError("CONFLICT", `${c.plan.kind} ${c.id} is already ${c.status}`, {
          ceremony: c.id,
        });
      await this.fail(c, { reason: `cancelled by an admin: ${reason} (admin ${admin})`, culprits: [] });
      return this.read(c.id);
    });
  }

  /** Fails `ref` if it is past its deadline (a write transaction only when it is). */
  private async expire(ref: string): Promise<void> {
    const c = await this.record(ref);
    if (!c || !this.overdue(c)) return;
    await this.store.transaction(() => this.expireLocked(c.id));
  }

  /**
   * Inside a write transaction: fails `ref` if it has not moved for LIFECYCLE_TIMEOUT_MS. Checked
   * again under the write lock, so two replicas never both fail it, nor one a ceremony that just moved.
   */
  private async expireLocked(ref: string): Promise<void> {
    const c = await this.record(ref);
    if (!c || !this.overdue(c)) return;
    const stage = lifecycleStages(c.plan).find((s) => s.status === c.status);
    const sent = new Set(stage ? (await this.store.listMessages(c.id, stage.type)).map((m) => m.sender) : []);
    const waiting = (stage?.senders ?? []).filter((s) => !sent.has(s));
    await this.fail(c, {
      reason: `timed out in stage ${c.status} waiting for ${waiting.length ? waiting.join(", ") : "nobody"} (no progress for ${LIFECYCLE_TIMEOUT_MS / 60_000} minutes)`,
      culprits: [],
    });
  }

  private overdue(c: LcRecord): boolean {
    return !ENDED.includes(c.status) && clock.now() - Date.parse(c.updatedAt) >= LIFECYCLE_TIMEOUT_MS;
  }

  // ---- relaying ----

  /** `POST /api/v1/lifecycle/{id}/messages`: one signed envelope from a participant. */
  async receive(ref: string, envelope: unknown): Promise<LifecycleView> {
    try {
      return await this.store.transaction(() => this.receiveLocked(ref, envelope));
    } finally {
      this.hooks.changed(); // after the commit: waiters must never read the state before it
    }
  }

  private async receiveLocked(ref: string, envelope: unknown): Promise<LifecycleView> {
    await this.expireLocked(ref);
    const c = await this.mustRecord(ref);
    const plan = c.plan;
    let h: EnvelopeHeader;
    try {
      h = openEnvelope(envelope, planSigningKeys(plan), {
        scope: c.id,
        caKeyId: plan.caKeyId,
        recipient: "*",
        type: [...LIFECYCLE_MESSAGE_TYPES],
      });
    } catch (e) {
      if (e instanceof ProtocolError)
        throw new CoordinatorError("BAD_REQUEST", e.message, { culprit: e.culprit });
      throw e;
    }
    if (!participants(plan).includes(h.sender))
      throw new CoordinatorError("FORBIDDEN", `${h.sender} takes no part in ${plan.kind} ${c.id}`);
    if (this.config.config.custodians.some((x) => x.name === h.sender)) this.hooks.heard(h.sender, h.type);
    const json = JSON.stringify(envelope);
    if (ENDED.includes(c.status)) {
      if (await this.holds(h, json)) return this.read(c.id);
      throw new CoordinatorError("CONFLICT", `${plan.kind} ${c.id} is ${c.status}`);
    }
    const type = h.type as LifecycleMessageType;
    if (type === "lc/abort" || type === "lc/complaint") {
      await this.store.insertMessage(this.row(h, json));
      await this.fail(c, type === "lc/abort" ? this.abortOf(h) : await this.judge(c, h));
      return this.read(c.id);
    }
    const stage = lifecycleStages(plan).find((s) => s.status === c.status);
    if (!stage || stage.type !== type) {
      if (await this.holds(h, json)) return this.read(c.id);
      throw new CoordinatorError(
        "CONFLICT",
        `${plan.kind} ${c.id} is in ${c.status} and does not take ${type} now`,
      );
    }
    if (!stage.senders.includes(h.sender))
      throw new CoordinatorError("FORBIDDEN", `${h.sender} does not send ${type} in ${plan.kind} ${c.id}`);
    this.checkBody(plan, h);
    if (!(await this.store.insertMessage(this.row(h, json)))) {
      if (await this.holds(h, json)) return this.read(c.id); // the same envelope again: a lost answer
      throw new CoordinatorError(
        "CONFLICT",
        `${h.sender} already sent ${type} (or this message is a replay)`,
      );
    }
    const rows = await this.store.listMessages(c.id, type);
    const sent = new Set(rows.map((r) => r.sender));
    if (stage.senders.every((s) => sent.has(s)))
      await this.advance(
        c,
        rows.map((r) => r.envelope),
      );
    return this.read(c.id);
  }

  private row(h: EnvelopeHeader, json: string) {
    return {
      id: h.id,
      scope: h.scope,
      type: h.type,
      sender: h.sender,
      recipient: h.recipient,
      attempt: 0,
      envelope: json,
      receivedAt: clock.iso(),
    };
  }

  /** Whether the coordinator stores exactly this envelope already (sent again after a lost answer). */
  private async holds(h: EnvelopeHeader, json: string): Promise<boolean> {
    return (await this.store.getMessage(h.id))?.envelope === json;
  }

  /** The body's shape and what it can be checked against without secrets: a malformed one is refused. */
  private checkBody(plan: LifecyclePlan, h: EnvelopeHeader): void {
    const malformed = (why: string) =>
      new CoordinatorError("BAD_REQUEST", `${h.type} from ${h.sender} ${why}`, { culprit: h.sender });
    const parse = <T>(schema: { safeParse(x: unknown): { success: true; data: T } | { success: false } }) => {
      const r = schema.safeParse(h.body);
      if (!r.success) throw malformed("has a malformed body");
      return r.data;
    };
    switch (h.type) {
      case "lc/round1": {
        const b = parse(LcRound1BodySchema);
        if (b.planHash !== planHash(plan)) throw malformed("is for another plan (its plan hash differs)");
        return;
      }
      case "lc/round1-ack":
        parse(LcRound1AckBodySchema);
        return;
      case "lc/round2":
      case "lc/round3": {
        const b = parse(LcSharesBodySchema);
        const to = Object.keys(b.shares);
        const expected = recipientsOf(plan, h.type);
        // Every recipient but the sender itself (whose value may stay with it) must get one.
        const missing = expected.filter((r) => r !== h.sender && !to.includes(r));
        const strangers = to.filter((r) => !expected.includes(r));
        if (strangers.length) throw malformed(`seals values to ${strangers.join(", ")}, who receive none`);
        if (missing.length) throw malformed(`seals no value to ${missing.join(", ")}`);
        return;
      }
      case "lc/confirm":
        parse(LcConfirmBodySchema);
        return;
    }
  }

  private abortOf(h: EnvelopeHeader): Failure {
    const b = LcAbortBodySchema.safeParse(h.body);
    if (!b.success)
      throw new CoordinatorError("BAD_REQUEST", `lc/abort from ${h.sender} has a malformed body`);
    return { reason: `${h.sender} aborted: ${b.data.reason}`, culprits: b.data.culprits };
  }

  /** Round-1 bodies of this ceremony, by sender. */
  private async round1(c: LcRecord): Promise<Map<string, LcRound1Body>> {
    const keys = planSigningKeys(c.plan);
    const rows = await this.store.listMessages(c.id, "lc/round1");
    return new Map(
      rows.map((r) => {
        const h = openEnvelope(JSON.parse(r.envelope), keys);
        return [h.sender, LcRound1BodySchema.parse(h.body)];
      }),
    );
  }

  /** The public package in force, which must be the one the plan names. */
  private async oldPublic(c: LcRecord): Promise<FrostPublic> {
    const ks = await this.keyState.current();
    if (!ks || ks.state.publicPackageDigest !== c.plan.publicPackageDigest)
      throw new CoordinatorError("CONFLICT", "the public key package in force is not the one the plan names");
    return ks.publicPackage;
  }

  /** Moves to the next stage once every sender of the current one has spoken, with its public checks. */
  private async advance(c: LcRecord, envelopes: string[]): Promise<void> {
    const plan = c.plan;
    const stages = lifecycleStages(plan);
    const i = stages.findIndex((s) => s.status === c.status);
    const keys = planSigningKeys(plan);
    const opened = envelopes.map((e) => openEnvelope(JSON.parse(e), keys));
    if (c.status === "round1") {
      const bad = await this.round1Culprit(
        c,
        new Map(opened.map((h) => [h.sender, LcRound1BodySchema.parse(h.body)])),
      );
      if (bad) return this.fail(c, bad);
    }
    if (c.status === "round1-ack") {
      const hashes = new Set(opened.map((h) => LcRound1AckBodySchema.parse(h.body).transcriptHash));
      if (hashes.size !== 1)
        return this.fail(c, {
          reason:
            "participants saw different round-1 transcripts: a round-1 message was altered or equivocated",
          culprits: [],
        });
    }
    if (c.status === "confirm") return this.complete(c, opened, envelopes);
    await this.setStatus(c.id, stages[i + 1]!.status);
  }

  /** What anyone can check of round 1 (docs/key-lifecycle.md): each dealing's shape and, for repair, its sum. */
  private async round1Culprit(c: LcRecord, r1: Map<string, LcRound1Body>): Promise<Failure | null> {
    const plan = c.plan;
    const dealers = new Set(plan.dealers);
    for (const sender of participants(plan)) {
      const b = r1.get(sender)!;
      const isDealer = dealers.has(sender);
      if (plan.kind === "repair") {
        if (b.commitment !== null)
          return { reason: `${sender} sent refresh/reshare commitments in a repair`, culprits: [sender] };
        if (!isDealer) {
          if (b.pieceCommitments !== null)
            return { reason: `${sender} is no helper but sent piece commitments`, culprits: [sender] };
          continue;
        }
        const pc = b.pieceCommitments;
        const byId: Record<string, Uint8Array> = {};
        for (const [name, hex] of Object.entries(pc ?? {})) byId[id(name)] = hexToBytes(hex);
        const ok =
          pc !== null &&
          Object.keys(pc).length === plan.dealers.length &&
          plan.dealers.every((d) => Object.hasOwn(pc, d)) &&
          repairCommitmentsValid(
            id(sender),
            plan.dealers.map(id),
            id(plan.lost!),
            await this.oldPublic(c),
            byId,
          );
        if (!ok)
          return {
            reason: `${sender}'s repair piece commitments do not add up to its weighted verifying share`,
            culprits: [sender],
          };
        continue;
      }
      if (b.pieceCommitments !== null)
        return { reason: `${sender} sent repair piece commitments in a ${plan.kind}`, culprits: [sender] };
      if (!isDealer) {
        if (b.commitment !== null)
          return {
            reason: `${sender} deals nothing in this ${plan.kind} but sent commitments`,
            culprits: [sender],
          };
        continue;
      }
      const t = plan.newRoster.threshold;
      if (b.commitment === null || !dealingCommitmentValid(b.commitment.map(hexToBytes), t - 1))
        return {
          reason: `${sender}'s dealing is not ${t - 1} valid commitment${t - 1 === 1 ? "" : "s"} (a polynomial of degree ${t - 1})`,
          culprits: [sender],
        };
    }
    return null;
  }

  /**
   * A complaint reveals the complainer's ceremony HPKE private key: the coordinator opens the
   * accused's sealed value with it and checks it against the accused's round-1 commitments.
   * Whoever the check blames is the culprit: the accused for a bad value, the complainer for a
   * false complaint (docs/key-lifecycle.md).
   */
  private async judge(c: LcRecord, h: EnvelopeHeader): Promise<Failure> {
    const complainer = h.sender;
    const parsed = LcComplaintBodySchema.safeParse(h.body);
    if (!parsed.success)
      throw new CoordinatorError("BAD_REQUEST", `lc/complaint from ${complainer} has a malformed body`);
    const { accused, stage, hpkePrivateKey } = parsed.data;
    const plan = c.plan;
    const falseComplaint = (why: string): Failure => ({
      reason: `${complainer} complained about ${accused}, but ${why}: false complaint`,
      culprits: [complainer],
    });
    const senders = lifecycleStages(plan).find((s) => s.type === stage)?.senders ?? [];
    if (!senders.includes(accused)) return falseComplaint(`${accused} sends no ${stage}`);
    // Only an expected recipient of the accused's value can be wronged by it: anyone else (a lost
    // custodian about a helper's round-2 pieces, a leaving dealer in a reshare) must not get an
    // honest sender named for "sealing no value" to someone who receives none.
    if (complainer === accused || !recipientsOf(plan, stage).includes(complainer))
      return falseComplaint(`${complainer} receives no ${stage} value from ${accused}`);
    const r1 = await this.round1(c);
    const mine = r1.get(complainer);
    const theirs = r1.get(accused);
    const sent = (await this.store.listMessages(c.id, stage)).find((m) => m.sender === accused);
    if (!mine || !theirs || !sent) return falseComplaint("the messages it is about do not exist yet");
    const sk = hexToBytes(hpkePrivateKey);
    let pk: string;
    try {
      pk = bytesToHex(hpkePublicFromPrivate(sk));
    } catch {
      pk = "";
    }
    if (pk !== mine.hpkePublicKey)
      return {
        reason: `${complainer} complained about ${accused} with a key that is not its ceremony HPKE key`,
        culprits: [complainer],
      };
    const body = LcSharesBodySchema.parse(
      openEnvelope(JSON.parse(sent.envelope), planSigningKeys(plan)).body,
    );
    const sealed = body.shares[complainer];
    if (!sealed)
      return { reason: `${accused} sealed no ${stage} value to ${complainer}`, culprits: [accused] };
    let value: Uint8Array;
    try {
      value = await openLcValue(sk, sealed, {
        ceremonyId: c.id,
        stage,
        sender: accused,
        recipient: complainer,
      });
    } catch {
      return {
        reason: `${accused}'s ${stage} value for ${complainer} does not decrypt`,
        culprits: [accused],
      };
    }
    try {
      let valid: boolean;
      if (plan.kind === "repair" && stage === "lc/round2") {
        const c1 = theirs.pieceCommitments?.[complainer];
        valid = c1 !== undefined && repairPieceValid(value, hexToBytes(c1));
      } else if (plan.kind === "repair") {
        const toAccused = plan.dealers.map((d) => r1.get(d)?.pieceCommitments?.[accused]);
        valid =
          toAccused.every((x) => x !== undefined) &&
          repairSigmaValid(value, (toAccused as string[]).map(hexToBytes));
      } else {
        const commitment = (theirs.commitment ?? []).map(hexToBytes);
        valid =
          plan.kind === "refresh"
            ? dealtShareValid({
                kind: "refresh",
                dealer: id(accused),
                recipient: id(complainer),
                commitment,
                share: value,
              })
            : dealtShareValid({
                kind: "reshare",
                dealer: id(accused),
                dealers: plan.dealers.map(id),
                oldPublic: await this.oldPublic(c),
                recipient: id(complainer),
                commitment,
                share: value,
              });
      }
      if (!valid)
        return {
          reason: `${accused} sealed ${complainer} a ${stage} value that does not match ${accused}'s round-1 commitments (checked with the revealed key)`,
          culprits: [accused],
        };
      return falseComplaint(`the revealed ${stage} value matches ${accused}'s commitments`);
    } finally {
      value.fill(0);
    }
  }

  /**
   * Every receiver confirmed: each must carry exactly the package the coordinator computes from the
   * round-1 commitments. Then, in this transaction, the new package and key state are in force.
   */
  private async complete(c: LcRecord, opened: EnvelopeHeader[], envelopes: string[]): Promise<void> {
    const plan = c.plan;
    const old = await this.oldPublic(c);
    let expected: FrostPublic;
    try {
      if (plan.kind === "repair") expected = old;
      else {
        const r1 = await this.round1(c);
        const dealings = plan.dealers.map((d) => (r1.get(d)!.commitment ?? []).map(hexToBytes));
        expected =
          plan.kind === "refresh"
            ? refreshedPublic(old, dealings)
            : resharedPublic(
                old,
                plan.dealers.map(id),
                Object.fromEntries(plan.dealers.map((d, i) => [id(d), dealings[i]!])),
                plan.newRoster.threshold,
                plan.receivers.map(id),
              );
      }
    } catch (e) {
      return this.fail(c, {
        reason: `the new public package cannot be computed: ${(e as Error).message}`,
        culprits: [],
      });
    }
    const digest = publicPackageDigest(expected);
    const wire = canonicalJson(publicToWire(expected));
    for (const h of opened) {
      const b = LcConfirmBodySchema.parse(h.body);
      if (b.publicPackageDigest !== digest || canonicalJson(b.publicPackage) !== wire)
        return this.fail(c, {
          reason: `${h.sender} confirmed a public key package other than the one round 1 determines (${digest})`,
          culprits: [h.sender],
        });
    }
    const state: KeyState = {
      epoch: plan.toEpoch,
      roster: plan.newRoster,
      rosterDigest: rosterDigest(plan.newRoster),
      publicPackageDigest: digest,
      ceremonyId: c.id,
      since: clock.iso(),
    };
    if (plan.kind !== "repair") await this.store.setMeta(META_PUBLIC_PACKAGE, wire);
    await this.store.setMeta(META_KEY_STATE, canonicalJson(state));
    await this.db()
      .updateTable("lifecycle_ceremonies")
      .set({ status: "complete", result: canonicalJson(state), updated_at: clock.iso() })
      .where("id", "=", c.id)
      .execute();
    // The receivers' signed confirmations prove the new package to anyone holding the plan's rosters.
    await appendAudit(this.store, {
      kind: "lifecycle",
      subject: c.id,
      body: {
        event: "lifecycle-complete",
        ceremonyId: c.id,
        keyState: state,
        publicPackage: JSON.parse(wire) as unknown,
        confirmations: envelopes.map((e) => JSON.parse(e) as unknown),
      },
    });
    if (plan.toEpoch !== plan.fromEpoch) await this.onEpochChange(plan.toEpoch);
    this.hooks.changed();
  }

  private async setStatus(ceremonyId: string, status: LifecycleStatus): Promise<void> {
    await this.db()
      .updateTable("lifecycle_ceremonies")
      .set({ status, updated_at: clock.iso() })
      .where("id", "=", ceremonyId)
      .execute();
  }

  /** Ends the ceremony: nothing it made is used, every old share keeps working. */
  private async fail(c: LcRecord, failure: Failure): Promise<void> {
    await this.db()
      .updateTable("lifecycle_ceremonies")
      .set({ status: "failed", failure: JSON.stringify(failure), updated_at: clock.iso() })
      .where("id", "=", c.id)
      .execute();
    await appendAudit(this.store, {
      kind: "lifecycle",
      subject: c.id,
      body: {
        event: "lifecycle-failed",
        ceremonyId: c.id,
        reason: failure.reason,
        culprits: failure.culprits,
      },
    });
    this.hooks.changed();
  }
}
