// The store over Kysely: one implementation for SQLite and PostgreSQL (docs/storage.md).
//
// Writes are serialized, across every replica on the database, by transaction(): on PostgreSQL
// each write transaction first takes one transaction-scoped advisory lock, on SQLite the database
// has one writer anyway. That single-writer rule is what makes package forming, intake order and
// the CRL state machine exactly-once without any in-process state; unique constraints (envelope ids,
// one message per sender and stage, one approval per custodian, serials, TBS hashes, commitment
// keys) refuse what must never happen twice even if a bug skipped the lock. Reads run concurrently.
import { AsyncLocalStorage } from "node:async_hooks";
import { EventEmitter } from "node:events";
import { Kysely, Migrator, sql, type MigrationProvider, type Transaction } from "kysely";
import type { Database } from "./schema.ts";
import { toJob, toOffer, toRequest, toCeremony, toMessage, toApproval, toRevocation, toCrl } from "./rows.ts";
import { toCrlState } from "./rows.ts";
import { writeAnnouncement, writeEvents, writeFailure, writeJobParams, writeNames } from "./json.ts";
import { writeOrigin, writeOutcome, writePackage } from "./json.ts";
import { migrations, type Dialect } from "./migrations.ts";
import type {
  ApprovalRecord,
  CeremonyRecord,
  CrlRecord,
  CrlState,
  MessageRecord,
  OfferRecord,
  OfferState,
  RenewalRecord,
} from "./types.ts";
import type {
  RequestRecord,
  RequestStatus,
  RevocationRecord,
  SigningJobPatch,
  SigningJobRecord,
  SigningJobStatus,
  Store,
} from "./types.ts";
import { clock } from "../clock.ts";
import { RenewalProofSchema } from "../../protocol/renewal.ts";
import { inventoryColumns, readSans } from "./inventory.ts";
import type { CertificateQuery, CertificateRecord } from "./types.ts";

/** The advisory lock every write transaction takes on PostgreSQL ("tca" in ASCII, arbitrary). */
const WRITE_LOCK = 0x746361;
/** The LISTEN/NOTIFY channel replicas share. */
export const CHANNEL = "tca_changes";
/** Delivered when notifications may have been lost (a listener reconnected): every waiter looks again. */
export const WAKE_ALL = "**";
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more: topics go in chunks below that. */
const MAX_PAYLOAD = 7000;

interface TxContext {
  trx: Transaction<Database>;
  topics: Set<string>;
  committed: (() => void)[];
  savepoints: number;
}

/** How a dialect sends and receives change notifications between replicas. */
export interface NotificationChannel {
  /** Sends topics now (outside a transaction). */
  send(topics: string[]): Promise<void>;
  /** Closes the listening side. */
  close(): Promise<void>;
}

export interface SqlStoreOptions {
  dialect: Dialect;
  location: string;
  /**
   * For PostgreSQL: starts listening on CHANNEL and calls `deliver` with each payload's topics
   * (and with "*" after a reconnect, when some may have been missed).
   */
  listen?: (deliver: (topics: string[]) => void) => Promise<NotificationChannel>;
}

const now = () => clock.iso();
const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export class SqlStore implements Store {
  readonly dialect: Dialect;
  readonly location: string;
  readonly #db: Kysely<Database>;
  readonly #tx = new AsyncLocalStorage<TxContext>();
  readonly #events = new EventEmitter();
  #queue: Promise<unknown> = Promise.resolve();
  #channel: NotificationChannel | undefined;

  private constructor(db: Kysely<Database>, o: SqlStoreOptions) {
    this.#db = db;
    this.dialect = o.dialect;
    this.location = o.location;
    this.#events.setMaxListeners(0);
  }

  /** Opens the store: runs pending migrations, then starts listening for other replicas' changes. */
  static async open(db: Kysely<Database>, o: SqlStoreOptions): Promise<SqlStore> {
    const store = new SqlStore(db, o);
    const { error, results } = await new Migrator({
      db,
      provider: migrations(o.dialect),
    }).migrateToLatest();
    if (error) {
      await db.destroy();
      const failed = results?.find((r) => r.status === "Error")?.migrationName;
      throw new Error(
        `cannot migrate the database at ${o.location}${failed ? ` (step ${failed})` : ""}: ${(error as Error).message}`,
      );
    }
    if (o.listen) store.#channel = await o.listen((topics) => store.#deliver(topics));
    return store;
  }

  /** The query builder of the transaction in progress, if any, else the database. */
  get #q(): Kysely<Database> {
    return this.#tx.getStore()?.trx ?? this.#db;
  }

  // ---- meta ----
  async getMeta(key: string) {
    const r = await this.#q.selectFrom("meta").select("value").where("key", "=", key).executeTakeFirst();
    return r?.value;
  }
  async setMeta(key: string, value: string) {
    await this.#q
      .insertInto("meta")
      .values({ key, value })
      .onConflict((oc) => oc.column("key").doUpdateSet({ value }))
      .execute();
  }

  // ---- ceremonies and messages ----
  async insertCeremony(c: CeremonyRecord) {
    await this.#q
      .insertInto("ceremonies")
      .values({
        id: c.id,
        announcement: writeAnnouncement(c.announcement),
        status: c.status,
        failure: writeFailure(c.failure),
        created_at: c.createdAt,
        updated_at: c.updatedAt,
      })
      .execute();
  }
  async getCeremony(id: string) {
    const r = await this.#q.selectFrom("ceremonies").selectAll().where("id", "=", id).executeTakeFirst();
    return r && toCeremony(r);
  }
  async latestCeremony() {
    const r = await this.#q
      .selectFrom("ceremonies")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(1)
      .executeTakeFirst();
    return r && toCeremony(r);
  }
  async updateCeremony(id: string, patch: Partial<Pick<CeremonyRecord, "status" | "failure">>) {
    await this.#q
      .updateTable("ceremonies")
      .set({
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.failure !== undefined ? { failure: writeFailure(patch.failure) } : {}),
        updated_at: now(),
      })
      .where("id", "=", id)
      .execute();
  }

  async insertMessage(m: MessageRecord) {
    const r = await this.#q
      .insertInto("messages")
      .values({
        id: m.id,
        scope: m.scope,
        type: m.type,
        sender: m.sender,
        recipient: m.recipient,
        attempt: m.attempt,
        envelope: m.envelope,
        received_at: m.receivedAt,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  async getMessage(id: string) {
    const r = await this.#q.selectFrom("messages").selectAll().where("id", "=", id).executeTakeFirst();
    return r && toMessage(r);
  }
  async listMessages(scope: string, type: string, attempt?: number) {
    let q = this.#q.selectFrom("messages").selectAll().where("scope", "=", scope).where("type", "=", type);
    if (attempt !== undefined) q = q.where("attempt", "=", attempt);
    const rows = await q.orderBy("received_at").orderBy("id").execute();
    return rows.map(toMessage);
  }

  // ---- signing jobs ----
  async insertSigningJob(j: SigningJobRecord) {
    await this.#q
      .insertInto("signing_jobs")
      .values({
        id: j.id,
        kind: j.kind,
        subject_ref: j.subjectRef,
        tbs: buf(j.tbs),
        params: writeJobParams(j),
        eligible: writeNames(j.eligible),
        status: j.status,
        attempt: j.attempt,
        signing_package: writePackage(j.signingPackage),
        excluded: writeNames(j.excluded),
        events: writeEvents(j.events),
        signature: j.signature ? buf(j.signature) : null,
        created_at: j.createdAt,
        updated_at: j.updatedAt,
      })
      .execute();
  }
  async getSigningJob(id: string) {
    const r = await this.#q.selectFrom("signing_jobs").selectAll().where("id", "=", id).executeTakeFirst();
    return r && toJob(r);
  }
  async listSigningJobs(status: SigningJobStatus) {
    const rows = await this.#q
      .selectFrom("signing_jobs")
      .selectAll()
      .where("status", "=", status)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toJob);
  }
  /** Writes only the fields given: two writers of different fields never undo each other. */
  async updateSigningJob(id: string, patch: SigningJobPatch) {
    await this.#q
      .updateTable("signing_jobs")
      .set({
        ...(patch.subjectRef !== undefined ? { subject_ref: patch.subjectRef } : {}),
        ...(patch.tbs !== undefined ? { tbs: buf(patch.tbs) } : {}),
        ...(patch.eligible !== undefined ? { eligible: writeNames(patch.eligible) } : {}),
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.attempt !== undefined ? { attempt: patch.attempt } : {}),
        ...(patch.signingPackage !== undefined
          ? { signing_package: writePackage(patch.signingPackage) }
          : {}),
        ...(patch.excluded !== undefined ? { excluded: writeNames(patch.excluded) } : {}),
        ...(patch.events !== undefined ? { events: writeEvents(patch.events) } : {}),
        ...(patch.signature !== undefined
          ? { signature: patch.signature ? buf(patch.signature) : null }
          : {}),
        updated_at: now(),
      })
      .where("id", "=", id)
      .execute();
  }
  async listJobsAwaitingPackage(limit: number) {
    const rows = await this.#q
      .selectFrom("signing_jobs")
      .selectAll()
      .where("status", "=", "signing")
      .where("signing_package", "is", null)
      .orderBy("created_at")
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map(toJob);
  }
  async listJobsWithPackage() {
    const rows = await this.#q
      .selectFrom("signing_jobs")
      .selectAll()
      .where("status", "=", "signing")
      .where("signing_package", "is not", null)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toJob);
  }

  // ---- requests, approvals, revocations, CRLs ----
  async insertRequest(r: Omit<RequestRecord, "seq">) {
    // Intake order: one more than the highest so far, inside the write transaction (one writer at a
    // time), so sequence numbers commit in order and a review cursor never skips a request.
    await this.#q
      .insertInto("requests")
      .values({
        id: r.id,
        seq: sql<number>`(SELECT COALESCE(MAX(seq), 0) + 1 FROM requests)`,
        requester: r.requester,
        profile: r.profile,
        csr: buf(r.csr),
        tbs: buf(r.tbs),
        tbs_sha256: r.tbsSha256,
        serial: r.serial,
        not_before: r.notBefore,
        not_after: r.notAfter,
        status: r.status,
        signing_job: r.signingJob,
        certificate: r.certificate ? buf(r.certificate) : null,
        outcome: writeOutcome(r.outcome),
        origin: writeOrigin(r.origin),
        created_at: r.createdAt,
        updated_at: r.updatedAt,
        ...issuedColumns(r.status, r.certificate, r.updatedAt),
      })
      .execute();
  }
  async getRequest(id: string) {
    const r = await this.#q.selectFrom("requests").selectAll().where("id", "=", id).executeTakeFirst();
    return r && toRequest(r);
  }
  async getRequestBySerial(serial: string) {
    const r = await this.#q
      .selectFrom("requests")
      .selectAll()
      .where("serial", "=", serial)
      .executeTakeFirst();
    return r && toRequest(r);
  }
  async listRequests(filter: { status?: RequestStatus; requester?: string; limit?: number }) {
    let q = this.#q.selectFrom("requests").selectAll();
    if (filter.status) q = q.where("status", "=", filter.status);
    if (filter.requester !== undefined) q = q.where("requester", "=", filter.requester);
    const rows = await q
      .orderBy("seq", "desc")
      .limit(filter.limit ?? 100)
      .execute();
    return rows.map(toRequest);
  }
  async listRequestsAfter(status: RequestStatus, afterSeq: number, limit: number) {
    const rows = await this.#q
      .selectFrom("requests")
      .selectAll()
      .where("status", "=", status)
      .where("seq", ">", afterSeq)
      .orderBy("seq")
      .limit(limit)
      .execute();
    return rows.map(toRequest);
  }
  async updateRequest(
    id: string,
    patch: Partial<Pick<RequestRecord, "status" | "signingJob" | "certificate" | "outcome">>,
  ) {
    await this.#q
      .updateTable("requests")
      .set({
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.signingJob !== undefined ? { signing_job: patch.signingJob } : {}),
        ...(patch.certificate !== undefined
          ? { certificate: patch.certificate ? buf(patch.certificate) : null }
          : {}),
        ...(patch.outcome !== undefined ? { outcome: writeOutcome(patch.outcome) } : {}),
        ...issuedColumns(patch.status, patch.certificate, now()),
        updated_at: now(),
      })
      .where("id", "=", id)
      .execute();
  }
  async countRequestsByStatus() {
    const rows = await this.#q
      .selectFrom("requests")
      .select(["status", (eb) => eb.fn.countAll().as("n")])
      .groupBy("status")
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Partial<
      Record<RequestStatus, number>
    >;
  }

  async insertApproval(a: ApprovalRecord) {
    const r = await this.#q
      .insertInto("approvals")
      .values({
        request_id: a.requestId,
        custodian: a.custodian,
        decision: a.decision,
        reason: a.reason,
        expires_at: a.expiresAt,
        envelope: a.envelope,
        created_at: a.createdAt,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  async listApprovals(requestId: string) {
    const rows = await this.#q
      .selectFrom("approvals")
      .selectAll()
      .where("request_id", "=", requestId)
      .orderBy("created_at")
      .orderBy("custodian")
      .execute();
    return rows.map(toApproval);
  }

  async insertRevocation(r: RevocationRecord) {
    const res = await this.#q
      .insertInto("revocations")
      .values({
        serial: r.serial,
        request_id: r.requestId,
        reason: r.reason,
        revoked_at: r.revokedAt,
        revoked_by: r.revokedBy,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  async listRevocations() {
    const rows = await this.#q
      .selectFrom("revocations")
      .selectAll()
      .orderBy("revoked_at")
      .orderBy("serial")
      .execute();
    return rows.map(toRevocation);
  }
  // ---- the certificate inventory (migration 0006) ----
  #certificates() {
    return this.#q
      .selectFrom("requests")
      .leftJoin("revocations", "revocations.request_id", "requests.id")
      .select([
        "requests.id",
        "requests.seq",
        "requests.serial",
        "requests.requester",
        "requests.profile",
        "requests.subject",
        "requests.subject_cn",
        "requests.sans",
        "requests.key_type",
        "requests.not_before",
        "requests.not_after",
        "requests.issued_at",
        "revocations.revoked_at",
        "revocations.reason",
      ])
      .where("requests.status", "=", "issued");
  }
  async listCertificates(q: CertificateQuery) {
    let query = this.#certificates();
    if (q.serial !== undefined) query = query.where("requests.serial", "=", q.serial);
    if (q.profile !== undefined) query = query.where("requests.profile", "=", q.profile);
    if (q.requester !== undefined) query = query.where("requests.requester", "=", q.requester);
    if (q.search !== undefined)
      query = query.where(
        sql<boolean>`requests.names LIKE ${`%${likeEscape(q.search.toLowerCase())}%`} ESCAPE '\\'`,
      );
    if (q.expiresBefore !== undefined) query = query.where("requests.not_after", "<", q.expiresBefore);
    if (q.expiresAfter !== undefined) query = query.where("requests.not_after", ">", q.expiresAfter);
    if (q.status === "revoked") query = query.where("revocations.serial", "is not", null);
    else if (q.status !== undefined) {
      query = query
        .where("revocations.serial", "is", null)
        .where("requests.not_after", q.status === "valid" ? ">" : "<=", q.now);
    }
    const column = q.sort === "issued" ? "requests.issued_at" : "requests.not_after";
    const dir = q.descending ? "desc" : "asc";
    if (q.after) {
      const { key, seq } = q.after;
      const beyond = q.descending ? "<" : ">";
      query = query.where((eb) =>
        eb.or([eb(column, beyond, key), eb.and([eb(column, "=", key), eb("requests.seq", beyond, seq)])]),
      );
    }
    const rows = await query.orderBy(column, dir).orderBy("requests.seq", dir).limit(q.limit).execute();
    return rows.map(toCertificate);
  }
  async getCertificate(serial: string) {
    const r = await this.#certificates()
      .select("requests.certificate")
      .where("requests.serial", "=", serial)
      .executeTakeFirst();
    if (!r?.certificate) return undefined;
    return { ...toCertificate(r), der: new Uint8Array(r.certificate) };
  }

  async insertCrl(c: CrlRecord) {
    await this.#q
      .insertInto("crls")
      .values({
        number: c.number,
        der: buf(c.der),
        this_update: c.thisUpdate,
        next_update: c.nextUpdate,
        created_at: c.createdAt,
      })
      .execute();
  }
  async latestCrl() {
    const r = await this.#q
      .selectFrom("crls")
      .selectAll()
      .orderBy("number", "desc")
      .limit(1)
      .executeTakeFirst();
    return r && toCrl(r);
  }

  // ---- the CRL state machine (one row, made by migration 0003) ----
  async getCrlState(): Promise<CrlState> {
    const r = await this.#q.selectFrom("crl_state").selectAll().where("id", "=", 1).executeTakeFirst();
    return r ? toCrlState(r) : { job: null, dirty: false, lastNumber: 0 };
  }
  async setCrlState(patch: Partial<CrlState>) {
    const set = {
      ...(patch.job !== undefined ? { job: patch.job } : {}),
      ...(patch.dirty !== undefined ? { dirty: patch.dirty ? 1 : 0 } : {}),
      ...(patch.lastNumber !== undefined ? { last_number: patch.lastNumber } : {}),
    };
    if (Object.keys(set).length === 0) return;
    // The row exists from migration 0003 on; the upsert only keeps a hand-emptied table working.
    await this.#q
      .insertInto("crl_state")
      .values({ id: 1, job: null, dirty: 0, last_number: 0, ...set })
      .onConflict((oc) => oc.column("id").doUpdateSet(set))
      .execute();
  }

  // ---- commitment offers ----
  async insertOffers(offers: OfferRecord[]) {
    if (offers.length === 0) return 0;
    const at = now();
    const r = await this.#q
      .insertInto("commitment_offers")
      .values(
        offers.map((o) => ({
          commitment_key: o.commitmentKey,
          custodian: o.custodian,
          instance: o.instance,
          identifier: o.identifier,
          hiding: o.hiding,
          binding: o.binding,
          expires_at: o.expiresAt,
          offered_at: o.offeredAt,
          state: o.state,
          job_id: o.jobId,
          attempt: o.attempt,
          updated_at: at,
        })),
      )
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0);
  }
  async listOpenOffers(validAfter: string) {
    const rows = await this.#q
      .selectFrom("commitment_offers")
      .selectAll()
      .where("state", "=", "offered")
      .where("expires_at", ">", validAfter)
      .orderBy("offered_at")
      .orderBy("commitment_key")
      .execute();
    return rows.map(toOffer);
  }
  async listOffersOf(custodian: string, states: OfferState[], instance?: string) {
    if (states.length === 0) return [];
    let q = this.#q
      .selectFrom("commitment_offers")
      .selectAll()
      .where("custodian", "=", custodian)
      .where("state", "in", states);
    if (instance !== undefined) q = q.where("instance", "=", instance);
    const rows = await q.orderBy("offered_at").orderBy("commitment_key").execute();
    // In the order of `states`, then by offer time (callers read the open ones first).
    const rank = new Map(states.map((s, i) => [s, i]));
    return rows.map(toOffer).sort((a, b) => rank.get(a.state)! - rank.get(b.state)!);
  }
  async setOfferState(keys: string[], state: OfferState, job?: { jobId: string; attempt: number }) {
    // Bounded IN lists: SQLite allows 32,766 parameters, PostgreSQL 65,535.
    for (let i = 0; i < keys.length; i += 500) {
      await this.#q
        .updateTable("commitment_offers")
        .set({ state, updated_at: now(), ...(job ? { job_id: job.jobId, attempt: job.attempt } : {}) })
        .where("commitment_key", "in", keys.slice(i, i + 500))
        .execute();
    }
  }
  async listOffersInJob(jobId: string, attempt: number) {
    const rows = await this.#q
      .selectFrom("commitment_offers")
      .selectAll()
      .where("job_id", "=", jobId)
      .where("attempt", "=", attempt)
      .orderBy("commitment_key")
      .execute();
    return rows.map(toOffer);
  }
  async purgeOffers(before: string, at: string) {
    await this.#q
      .deleteFrom("commitment_offers")
      .where((eb) =>
        eb.or([
          eb.and([eb("state", "in", ["answered", "void"]), eb("updated_at", "<", before)]),
          eb.and([eb("state", "=", "offered"), eb("expires_at", "<", at)]),
        ]),
      )
      .execute();
  }

  // ---- state the replicas share ----
  async touchProcess(custodian: string, instance: string, at: string) {
    await this.#q
      .insertInto("custodian_processes")
      .values({ instance, custodian, last_seen: at })
      // An instance id belongs to one custodian: another custodian's exchange cannot take it over.
      .onConflict((oc) =>
        oc
          .column("instance")
          .doUpdateSet({ last_seen: at })
          .where("custodian_processes.custodian", "=", custodian),
      )
      .execute();
  }
  async dropProcess(instance: string) {
    await this.#q.deleteFrom("custodian_processes").where("instance", "=", instance).execute();
  }
  async liveProcesses(since: string) {
    const rows = await this.#q
      .selectFrom("custodian_processes")
      .select(["custodian", "instance"])
      .where("last_seen", ">=", since)
      .execute();
    return new Set(rows.map((r) => `${r.custodian}/${r.instance}`));
  }
  async purgeProcesses(before: string) {
    await this.#q.deleteFrom("custodian_processes").where("last_seen", "<", before).execute();
  }
  async acceptHeartbeat(custodian: string, instance: string, seq: number, at: string) {
    // One statement: insert, or move the counter forward only if this one is greater. Zero rows
    // touched means a replay (or an older heartbeat), whichever replica saw the newer one.
    const r = await this.#q
      .insertInto("heartbeats")
      .values({ custodian, instance, seq, at })
      .onConflict((oc) =>
        oc.columns(["custodian", "instance"]).doUpdateSet({ seq, at }).where("heartbeats.seq", "<", seq),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }
  async purgeHeartbeats(before: string) {
    await this.#q.deleteFrom("heartbeats").where("at", "<", before).execute();
  }
  async acceptReadNonce(sender: string, nonce: string, expiresAt: string) {
    // Straight on the database, never in the transaction in progress nor behind the write lock:
    // the primary key makes the insert itself the check, on every replica at once.
    const r = await this.#db
      .insertInto("read_nonces")
      .values({ sender, nonce, expires_at: expiresAt })
      .onConflict((oc) => oc.columns(["sender", "nonce"]).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }
  async purgeReadNonces(before: string) {
    await this.#db.deleteFrom("read_nonces").where("expires_at", "<", before).execute();
  }
  async insertRenewalChallenge(c: { challengeSha256: string; serial: string; expiresAt: string }) {
    await this.#q
      .insertInto("renewal_challenges")
      .values({
        challenge_sha256: c.challengeSha256,
        serial: c.serial,
        expires_at: c.expiresAt,
        used_at: null,
      })
      .execute();
  }
  async useRenewalChallenge(challengeSha256: string, serial: string, now: string) {
    // The update is the check: of two renewals racing with one challenge, one changes the row.
    const r = await this.#q
      .updateTable("renewal_challenges")
      .set({ used_at: now })
      .where("challenge_sha256", "=", challengeSha256)
      .where("serial", "=", serial)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows ?? 0n) > 0;
  }
  async liveRenewalChallenges(serial: string, now: string) {
    const r = await this.#q
      .selectFrom("renewal_challenges")
      .select((eb) => [
        eb.fn.countAll<number | string | bigint>().as("n"),
        eb.fn.min("expires_at").as("first"),
      ])
      .where("serial", "=", serial)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .executeTakeFirst();
    const count = Number(r?.n ?? 0);
    return { count, ...(count > 0 && r?.first ? { firstExpiry: String(r.first) } : {}) };
  }
  async purgeRenewalChallenges(before: string) {
    // Used ones too: an expired challenge can no longer be used (useRenewalChallenge checks expiry),
    // and the renewer's credential is the hash kept in its renewals row, not this one.
    await this.#q.deleteFrom("renewal_challenges").where("expires_at", "<", before).execute();
  }
  async insertRenewal(r: RenewalRecord) {
    await this.#q
      .insertInto("renewals")
      .values({
        request_id: r.requestId,
        renewal_of: r.renewalOf,
        challenge_sha256: r.challengeSha256,
        proof: JSON.stringify(r.proof),
        created_at: r.createdAt,
      })
      .execute();
  }
  async getRenewal(requestId: string) {
    const r = await this.#q
      .selectFrom("renewals")
      .selectAll()
      .where("request_id", "=", requestId)
      .executeTakeFirst();
    return (
      r && {
        requestId: r.request_id,
        renewalOf: r.renewal_of,
        challengeSha256: r.challenge_sha256,
        proof: RenewalProofSchema.parse(JSON.parse(r.proof)),
        createdAt: r.created_at,
      }
    );
  }
  async listRenewalsOf(serial: string) {
    const rows = await this.#q
      .selectFrom("renewals")
      .innerJoin("requests", "requests.id", "renewals.request_id")
      .select(["renewals.request_id", "requests.status", "requests.serial", "renewals.created_at"])
      .where("renewals.renewal_of", "=", serial)
      .orderBy("renewals.created_at")
      .execute();
    return rows.map((r) => ({
      requestId: r.request_id,
      status: r.status,
      serial: r.serial,
      createdAt: r.created_at,
    }));
  }
  async recordContact(custodian: string, at: string, via: string) {
    await this.#q
      .insertInto("custodian_contacts")
      .values({ custodian, at, via })
      .onConflict((oc) =>
        oc.column("custodian").doUpdateSet({ at, via }).where("custodian_contacts.at", "<", at),
      )
      .execute();
  }
  async listContacts() {
    return this.#q.selectFrom("custodian_contacts").selectAll().orderBy("custodian").execute();
  }
  async claimLease(name: string, holder: string, at: string, expiresAt: string) {
    const r = await this.#q
      .insertInto("leases")
      .values({ name, holder, expires_at: expiresAt })
      .onConflict((oc) =>
        oc
          .column("name")
          .doUpdateSet({ holder, expires_at: expiresAt })
          .where((eb) => eb.or([eb("leases.holder", "=", holder), eb("leases.expires_at", "<", at)])),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  async reportReplica(r: { id: string; url: string; startedAt: string; lastSeen: string }) {
    await this.#q
      .insertInto("replicas")
      .values({ id: r.id, url: r.url, started_at: r.startedAt, last_seen: r.lastSeen })
      .onConflict((oc) => oc.column("id").doUpdateSet({ url: r.url, last_seen: r.lastSeen }))
      .execute();
  }
  async removeReplica(id: string) {
    await this.#q.deleteFrom("replicas").where("id", "=", id).execute();
  }
  async listReplicas(since = "") {
    const rows = await this.#q
      .selectFrom("replicas")
      .selectAll()
      .where("last_seen", ">=", since)
      .orderBy("started_at")
      .execute();
    return rows.map((r) => ({ id: r.id, url: r.url, startedAt: r.started_at, lastSeen: r.last_seen }));
  }

  // ---- change notifications ----
  async publish(topic: string) {
    const tx = this.#tx.getStore();
    if (tx) tx.topics.add(topic);
    else await this.#send([topic]);
  }
  subscribe(fn: (topic: string) => void): () => void {
    this.#events.on("topic", fn);
    return () => this.#events.off("topic", fn);
  }
  async #send(topics: string[]) {
    if (topics.length === 0) return;
    if (this.#channel) await this.#channel.send(topics);
    else this.#deliver(topics);
  }
  /** Waiters wake on the next turn of the event loop, never inside the writer's own call chain. */
  #deliver(topics: string[]) {
    setImmediate(() => {
      for (const t of topics) this.#events.emit("topic", t);
    });
  }

  // ---- a module's own tables ----
  queryBuilder<DB>(): Kysely<DB> {
    return this.#q as unknown as Kysely<DB>;
  }
  async migrateModule(module: string, provider: MigrationProvider): Promise<void> {
    if (!/^[a-z]+$/.test(module)) throw new Error(`bad module name ${module}`);
    const { error, results } = await new Migrator({
      db: this.#db,
      provider,
      migrationTableName: `${module}_migration`,
      migrationLockTableName: `${module}_migration_lock`,
    }).migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === "Error")?.migrationName;
      throw new Error(
        `cannot migrate ${module}'s tables in ${this.location}${failed ? ` (step ${failed})` : ""}: ${(error as Error).message}`,
      );
    }
  }

  // ---- transactions ----
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    // A nested call would wait behind itself for ever: fail loudly instead.
    if (this.#tx.getStore()) return Promise.reject(new Error("transaction() called inside a transaction"));
    const inTransaction = async (): Promise<T> => {
      const topics = new Set<string>();
      const committed: (() => void)[] = [];
      const result = await this.#db.transaction().execute(async (trx) => {
        if (this.dialect === "postgres") await sql`SELECT pg_advisory_xact_lock(${WRITE_LOCK})`.execute(trx);
        const value = await this.#tx.run({ trx, topics, committed, savepoints: 0 }, () => fn(this));
        // Sent with the commit, dropped with a rollback (PostgreSQL delivers NOTIFY at commit).
        if (this.#channel) for (const payload of chunks([...topics])) await notifyIn(trx, payload);
        return value;
      });
      if (!this.#channel && topics.size > 0) this.#deliver([...topics]);
      for (const f of committed) f();
      return result;
    };
    // One transaction at a time from this process: the others wait here rather than holding a
    // connection each while they wait for the lock.
    const run = this.#queue.then(inTransaction, inTransaction);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  inTransaction(): boolean {
    return this.#tx.getStore() !== undefined;
  }

  afterCommit(fn: () => void): void {
    const tx = this.#tx.getStore();
    if (tx) tx.committed.push(fn);
    else fn();
  }

  async item<T>(fn: () => Promise<T>): Promise<T> {
    const tx = this.#tx.getStore();
    if (!tx) throw new Error("item() called outside a transaction");
    const name = `item_${++tx.savepoints}`;
    // What the item announces or schedules for after the commit goes with it if it is undone.
    const topics = new Set(tx.topics);
    const callbacks = tx.committed.length;
    await sql`SAVEPOINT ${sql.raw(name)}`.execute(tx.trx);
    try {
      const result = await fn();
      await sql`RELEASE SAVEPOINT ${sql.raw(name)}`.execute(tx.trx);
      return result;
    } catch (e) {
      await sql`ROLLBACK TO SAVEPOINT ${sql.raw(name)}`.execute(tx.trx);
      await sql`RELEASE SAVEPOINT ${sql.raw(name)}`.execute(tx.trx);
      tx.committed.length = callbacks;
      tx.topics.clear();
      for (const t of topics) tx.topics.add(t);
      throw e;
    }
  }

  async databaseTime() {
    if (this.dialect !== "postgres") return null;
    const r = await sql<{
      t: number | string;
    }>`SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::float8 AS t`.execute(this.#db);
    return Number(r.rows[0]!.t);
  }

  async ping() {
    await sql`SELECT 1`.execute(this.#db);
  }

  async close() {
    await this.#channel?.close();
    await this.#db.destroy();
  }
}

/**
 * The inventory columns to write with a request's status and certificate: read from the certificate
 * when one is stored, and the issue time when the request becomes issued.
 */
function issuedColumns(
  status: RequestStatus | undefined,
  certificate: Uint8Array | null | undefined,
  at: string,
) {
  const read = certificate ? inventoryColumns(certificate) : null;
  return { ...(read ?? {}), ...(status === "issued" ? { issued_at: at } : {}) };
}

/** A LIKE pattern's own characters taken literally (escaped with a backslash). */
function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function toCertificate(r: {
  id: string;
  seq: number;
  serial: string;
  requester: string;
  profile: string;
  subject: string | null;
  subject_cn: string | null;
  sans: string | null;
  key_type: string | null;
  not_before: string;
  not_after: string;
  issued_at: string | null;
  revoked_at: string | null;
  reason: string | null;
}): CertificateRecord {
  return {
    requestId: r.id,
    seq: Number(r.seq),
    serial: r.serial,
    requester: r.requester,
    profile: r.profile,
    subject: r.subject ?? "",
    subjectCn: r.subject_cn,
    sans: readSans(r.sans),
    keyType: r.key_type ?? "",
    notBefore: r.not_before,
    notAfter: r.not_after,
    issuedAt: r.issued_at ?? "",
    revocation: r.revoked_at !== null ? { revokedAt: r.revoked_at, reason: r.reason ?? "unspecified" } : null,
  };
}

function chunks(topics: string[]): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let size = 2;
  for (const t of topics) {
    if (size + t.length + 3 > MAX_PAYLOAD && cur.length) {
      out.push(JSON.stringify(cur));
      cur = [];
      size = 2;
    }
    cur.push(t);
    size += t.length + 3;
  }
  if (cur.length) out.push(JSON.stringify(cur));
  return out;
}

async function notifyIn(db: Kysely<Database>, payload: string): Promise<void> {
  await sql`SELECT pg_notify(${CHANNEL}, ${payload})`.execute(db);
}

export { chunks as notificationChunks, notifyIn };
