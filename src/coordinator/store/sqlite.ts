import { AsyncLocalStorage } from "node:async_hooks";
import Database from "better-sqlite3";
import { MIGRATIONS } from "./migrations.ts";
import type { ApprovalRecord, CrlRecord, RequestRecord, RequestStatus, RevocationRecord } from "./types.ts";
import type { CeremonyRecord, MessageRecord, SigningJobRecord, SigningJobStatus, Store } from "./types.ts";
import type { OfferRecord, OfferState } from "./types.ts";

interface JobRow {
  id: string;
  kind: string;
  subject_ref: string;
  tbs: Buffer;
  params: string;
  eligible: string;
  status: SigningJobStatus;
  attempt: number;
  signing_package: string | null;
  excluded: string;
  events: string;
  signature: Buffer | null;
  created_at: string;
  updated_at: string;
}

const now = () => new Date().toISOString();

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #inExclusive = new AsyncLocalStorage<boolean>();

  readonly #statements = new Map<string, Database.Statement>();

  /** Statements are compiled once per process (better-sqlite3 re-parses SQL on every prepare). */
  #prep(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("foreign_keys = ON");
    this.#db.pragma("busy_timeout = 5000");
    this.migrate();
  }

  private migrate(): void {
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    );
    const applied = new Set(
      this.#prep("SELECT version FROM schema_migrations")
        .all()
        .map((r) => (r as { version: number }).version),
    );
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.#db.transaction(() => {
        this.#db.exec(m.sql);
        this.#prep("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(m.version, now());
      })();
    }
  }

  async getMeta(key: string) {
    const row = this.#prep("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return row?.value;
  }
  async setMeta(key: string, value: string) {
    this.#prep(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ).run(key, value);
  }

  async insertCeremony(c: CeremonyRecord) {
    this.#prep(
      "INSERT INTO ceremonies (id, announcement, status, failure, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(c.id, c.announcement, c.status, c.failure, c.createdAt, c.updatedAt);
  }
  async getCeremony(id: string) {
    return this.toCeremony(this.#prep("SELECT * FROM ceremonies WHERE id = ?").get(id));
  }
  async latestCeremony() {
    return this.toCeremony(
      this.#prep("SELECT * FROM ceremonies ORDER BY created_at DESC, rowid DESC LIMIT 1").get(),
    );
  }
  async updateCeremony(id: string, patch: Partial<Pick<CeremonyRecord, "status" | "failure">>) {
    const cur = await this.getCeremony(id);
    if (!cur) return;
    this.#prep("UPDATE ceremonies SET status = ?, failure = ?, updated_at = ? WHERE id = ?").run(
      patch.status ?? cur.status,
      patch.failure === undefined ? cur.failure : patch.failure,
      now(),
      id,
    );
  }
  private toCeremony(row: unknown): CeremonyRecord | undefined {
    if (!row) return undefined;
    const r = row as Record<string, string | null>;
    return {
      id: r.id!,
      announcement: r.announcement!,
      status: r.status as CeremonyRecord["status"],
      failure: r.failure ?? null,
      createdAt: r.created_at!,
      updatedAt: r.updated_at!,
    };
  }

  async insertMessage(m: MessageRecord) {
    const res = this.#prep(
      `INSERT INTO messages (id, scope, type, sender, recipient, attempt, envelope, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ).run(m.id, m.scope, m.type, m.sender, m.recipient, m.attempt, m.envelope, m.receivedAt);
    return res.changes === 1;
  }
  async listMessages(scope: string, type: string, attempt?: number) {
    const rows = (
      attempt === undefined
        ? this.#prep("SELECT * FROM messages WHERE scope = ? AND type = ? ORDER BY rowid").all(scope, type)
        : this.#prep(
            "SELECT * FROM messages WHERE scope = ? AND type = ? AND attempt = ? ORDER BY rowid",
          ).all(scope, type, attempt)
    ) as Record<string, string | number>[];
    return rows.map((r) => ({
      id: r.id as string,
      scope: r.scope as string,
      type: r.type as string,
      sender: r.sender as string,
      recipient: r.recipient as string,
      attempt: r.attempt as number,
      envelope: r.envelope as string,
      receivedAt: r.received_at as string,
    }));
  }

  async insertSigningJob(j: SigningJobRecord) {
    this.#prep(
      `INSERT INTO signing_jobs (id, kind, subject_ref, tbs, params, eligible, status, attempt, signing_package,
           excluded, events, signature, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      j.id,
      j.kind,
      j.subjectRef,
      Buffer.from(j.tbs),
      j.params,
      JSON.stringify(j.eligible),
      j.status,
      j.attempt,
      j.signingPackage,
      JSON.stringify(j.excluded),
      j.events,
      j.signature ? Buffer.from(j.signature) : null,
      j.createdAt,
      j.updatedAt,
    );
  }
  async getSigningJob(id: string) {
    const row = this.#prep("SELECT * FROM signing_jobs WHERE id = ?").get(id) as JobRow | undefined;
    return row ? toJob(row) : undefined;
  }
  async listSigningJobs(status: SigningJobStatus) {
    return (
      this.#prep("SELECT * FROM signing_jobs WHERE status = ? ORDER BY created_at").all(status) as JobRow[]
    ).map(toJob);
  }
  async updateSigningJob(id: string, patch: Partial<Omit<SigningJobRecord, "id" | "createdAt">>) {
    const cur = await this.getSigningJob(id);
    if (!cur) return;
    const j = { ...cur, ...patch };
    this.#prep(
      `UPDATE signing_jobs SET status = ?, attempt = ?, signing_package = ?, eligible = ?, excluded = ?, events = ?,
           signature = ?, updated_at = ? WHERE id = ?`,
    ).run(
      j.status,
      j.attempt,
      j.signingPackage,
      JSON.stringify(j.eligible),
      JSON.stringify(j.excluded),
      j.events,
      j.signature ? Buffer.from(j.signature) : null,
      now(),
      id,
    );
  }

  async insertRequest(r: RequestRecord) {
    this.#prep(
      `INSERT INTO requests (id, requester, profile, csr, tbs, tbs_sha256, serial, not_before, not_after, status,
           signing_job, certificate, outcome, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      r.id,
      r.requester,
      r.profile,
      Buffer.from(r.csr),
      Buffer.from(r.tbs),
      r.tbsSha256,
      r.serial,
      r.notBefore,
      r.notAfter,
      r.status,
      r.signingJob,
      r.certificate ? Buffer.from(r.certificate) : null,
      r.outcome,
      r.createdAt,
      r.updatedAt,
    );
  }
  async getRequest(id: string) {
    const row = this.#prep("SELECT * FROM requests WHERE id = ?").get(id) as RequestRow | undefined;
    return row ? toRequest(row) : undefined;
  }
  async listRequests(filter: { status?: RequestStatus; limit?: number }) {
    const limit = filter.limit ?? 100;
    const rows = (
      filter.status
        ? this.#prep("SELECT * FROM requests WHERE status = ? ORDER BY created_at DESC LIMIT ?").all(
            filter.status,
            limit,
          )
        : this.#prep("SELECT * FROM requests ORDER BY created_at DESC LIMIT ?").all(limit)
    ) as RequestRow[];
    return rows.map(toRequest);
  }
  async updateRequest(
    id: string,
    patch: Partial<Pick<RequestRecord, "status" | "signingJob" | "certificate" | "outcome">>,
  ) {
    const cur = await this.getRequest(id);
    if (!cur) return;
    const r = { ...cur, ...patch };
    this.#prep(
      "UPDATE requests SET status = ?, signing_job = ?, certificate = ?, outcome = ?, updated_at = ? WHERE id = ?",
    ).run(r.status, r.signingJob, r.certificate ? Buffer.from(r.certificate) : null, r.outcome, now(), id);
  }
  async getRequestBySerial(serial: string) {
    const row = this.#prep("SELECT * FROM requests WHERE serial = ?").get(serial) as RequestRow | undefined;
    return row ? toRequest(row) : undefined;
  }
  async insertRevocation(r: RevocationRecord) {
    const res = this.#prep(
      "INSERT INTO revocations (serial, request_id, reason, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ).run(r.serial, r.requestId, r.reason, r.revokedAt, r.revokedBy);
    return res.changes === 1;
  }
  async listRevocations() {
    const rows = this.#prep("SELECT * FROM revocations ORDER BY revoked_at, serial").all() as Record<
      string,
      string
    >[];
    return rows.map((r) => ({
      serial: r.serial!,
      requestId: r.request_id!,
      reason: r.reason!,
      revokedAt: r.revoked_at!,
      revokedBy: r.revoked_by!,
    }));
  }
  async insertCrl(c: CrlRecord) {
    this.#prep(
      "INSERT INTO crls (number, der, this_update, next_update, created_at) VALUES (?, ?, ?, ?, ?)",
    ).run(c.number, Buffer.from(c.der), c.thisUpdate, c.nextUpdate, c.createdAt);
  }
  async latestCrl() {
    const r = this.#prep("SELECT * FROM crls ORDER BY number DESC LIMIT 1").get() as
      | { number: number; der: Buffer; this_update: string; next_update: string; created_at: string }
      | undefined;
    return r
      ? {
          number: r.number,
          der: new Uint8Array(r.der),
          thisUpdate: r.this_update,
          nextUpdate: r.next_update,
          createdAt: r.created_at,
        }
      : undefined;
  }
  async countRequestsByStatus() {
    const rows = this.#prep("SELECT status, COUNT(*) AS n FROM requests GROUP BY status").all() as {
      status: RequestStatus;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n])) as Partial<Record<RequestStatus, number>>;
  }
  async insertApproval(a: ApprovalRecord) {
    const res = this.#prep(
      `INSERT INTO approvals (request_id, custodian, decision, reason, expires_at, envelope, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ).run(a.requestId, a.custodian, a.decision, a.reason, a.expiresAt, a.envelope, a.createdAt);
    return res.changes === 1;
  }
  async listApprovals(requestId: string) {
    const rows = this.#prep("SELECT * FROM approvals WHERE request_id = ? ORDER BY created_at, rowid").all(
      requestId,
    ) as Record<string, string | null>[];
    return rows.map((r) => ({
      requestId: r.request_id!,
      custodian: r.custodian!,
      decision: r.decision as ApprovalRecord["decision"],
      reason: r.reason ?? null,
      expiresAt: r.expires_at!,
      envelope: r.envelope!,
      createdAt: r.created_at!,
    }));
  }

  async insertOffers(offers: OfferRecord[]) {
    const st = this.#prep(
      `INSERT INTO commitment_offers (commitment_key, custodian, instance, identifier, hiding, binding, expires_at,
         offered_at, state, job_id, attempt, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    let n = 0;
    for (const o of offers)
      n += st.run(
        o.commitmentKey,
        o.custodian,
        o.instance,
        o.identifier,
        o.hiding,
        o.binding,
        o.expiresAt,
        o.offeredAt,
        o.state,
        o.jobId,
        o.attempt,
        now(),
      ).changes;
    return n;
  }
  async listOpenOffers(validAfter: string) {
    return (
      this.#prep(
        "SELECT * FROM commitment_offers WHERE state = 'offered' AND expires_at > ? ORDER BY offered_at, commitment_key",
      ).all(validAfter) as OfferRow[]
    ).map(toOffer);
  }
  async listOffersOf(custodian: string, states: OfferState[], instance?: string) {
    const rows = this.#prep(
      "SELECT * FROM commitment_offers WHERE state = ? AND custodian = ? ORDER BY offered_at, commitment_key",
    );
    const out: OfferRecord[] = [];
    for (const state of states)
      for (const r of rows.all(state, custodian) as OfferRow[])
        if (instance === undefined || r.instance === instance) out.push(toOffer(r));
    return out;
  }
  async setOfferState(keys: string[], state: OfferState, job?: { jobId: string; attempt: number }) {
    const st = job
      ? this.#prep(
          "UPDATE commitment_offers SET state = ?, job_id = ?, attempt = ?, updated_at = ? WHERE commitment_key = ?",
        )
      : this.#prep("UPDATE commitment_offers SET state = ?, updated_at = ? WHERE commitment_key = ?");
    for (const k of keys) {
      if (job) st.run(state, job.jobId, job.attempt, now(), k);
      else st.run(state, now(), k);
    }
  }
  async listOffersInJob(jobId: string, attempt: number) {
    return (
      this.#prep(
        "SELECT * FROM commitment_offers WHERE job_id = ? AND attempt = ? ORDER BY commitment_key",
      ).all(jobId, attempt) as OfferRow[]
    ).map(toOffer);
  }
  async purgeOffers(before: string, at: string) {
    this.#prep(
      "DELETE FROM commitment_offers WHERE (state IN ('answered', 'void') AND updated_at < ?) OR (state = 'offered' AND expires_at < ?)",
    ).run(before, at);
  }
  async listJobsAwaitingPackage(limit: number) {
    return (
      this.#prep(
        "SELECT * FROM signing_jobs WHERE status = 'signing' AND signing_package IS NULL ORDER BY created_at, id LIMIT ?",
      ).all(limit) as JobRow[]
    ).map(toJob);
  }
  async listJobsWithPackage() {
    return (
      this.#prep(
        "SELECT * FROM signing_jobs WHERE status = 'signing' AND signing_package IS NOT NULL ORDER BY created_at, id",
      ).all() as JobRow[]
    ).map(toJob);
  }
  async listRequestsAfter(
    status: RequestStatus,
    after: { createdAt: string; id: string } | null,
    limit: number,
  ) {
    const rows = after
      ? this.#prep(
          `SELECT * FROM requests WHERE status = ? AND (created_at > ? OR (created_at = ? AND id > ?))
           ORDER BY created_at, id LIMIT ?`,
        ).all(status, after.createdAt, after.createdAt, after.id, limit)
      : this.#prep("SELECT * FROM requests WHERE status = ? ORDER BY created_at, id LIMIT ?").all(
          status,
          limit,
        );
    return (rows as RequestRow[]).map(toRequest);
  }

  #savepoints = 0;
  async item<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#inExclusive.getStore()) throw new Error("item() called outside exclusive()");
    const name = `item_${++this.#savepoints}`;
    this.#db.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn();
      this.#db.exec(`RELEASE ${name}`);
      return result;
    } catch (e) {
      this.#db.exec(`ROLLBACK TO ${name}`);
      this.#db.exec(`RELEASE ${name}`);
      throw e;
    }
  }

  /**
   * One writer at a time, and all or nothing: fn runs inside a transaction that is rolled back if it
   * throws, so a refused message leaves no trace (DESIGN §3.10). Every write goes through here.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    // A nested call would wait behind itself for ever: fail loudly instead.
    if (this.#inExclusive.getStore())
      return Promise.reject(new Error("exclusive() called inside exclusive()"));
    const inTransaction = async (): Promise<T> => {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const result = await this.#inExclusive.run(true, fn);
        this.#db.exec("COMMIT");
        return result;
      } catch (e) {
        if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
        throw e;
      }
    };
    const run = this.#queue.then(inTransaction, inTransaction);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close() {
    this.#db.close();
  }
}

interface OfferRow {
  commitment_key: string;
  custodian: string;
  instance: string;
  identifier: string;
  hiding: string;
  binding: string;
  expires_at: string;
  offered_at: string;
  state: OfferState;
  job_id: string | null;
  attempt: number | null;
}

function toOffer(r: OfferRow): OfferRecord {
  return {
    commitmentKey: r.commitment_key,
    custodian: r.custodian,
    instance: r.instance,
    identifier: r.identifier,
    hiding: r.hiding,
    binding: r.binding,
    expiresAt: r.expires_at,
    offeredAt: r.offered_at,
    state: r.state,
    jobId: r.job_id,
    attempt: r.attempt,
  };
}

function toJob(r: JobRow): SigningJobRecord {
  return {
    id: r.id,
    kind: r.kind,
    subjectRef: r.subject_ref,
    tbs: new Uint8Array(r.tbs),
    params: r.params,
    eligible: JSON.parse(r.eligible) as string[],
    status: r.status,
    attempt: r.attempt,
    signingPackage: r.signing_package,
    excluded: JSON.parse(r.excluded) as string[],
    events: r.events,
    signature: r.signature ? new Uint8Array(r.signature) : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

interface RequestRow {
  id: string;
  requester: string;
  profile: string;
  csr: Buffer;
  tbs: Buffer;
  tbs_sha256: string;
  serial: string;
  not_before: string;
  not_after: string;
  status: RequestStatus;
  signing_job: string | null;
  certificate: Buffer | null;
  outcome: string | null;
  created_at: string;
  updated_at: string;
}

function toRequest(r: RequestRow): RequestRecord {
  return {
    id: r.id,
    requester: r.requester,
    profile: r.profile,
    csr: new Uint8Array(r.csr),
    tbs: new Uint8Array(r.tbs),
    tbsSha256: r.tbs_sha256,
    serial: r.serial,
    notBefore: r.not_before,
    notAfter: r.not_after,
    status: r.status,
    signingJob: r.signing_job,
    certificate: r.certificate ? new Uint8Array(r.certificate) : null,
    outcome: r.outcome,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
