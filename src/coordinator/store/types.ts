// The coordinator's storage, behind one small interface (smallstep's db/ habit), over SQLite (the
// embedded default) or PostgreSQL (several coordinators as one CA): see docs/storage.md. The
// coordinator stores only public or encrypted material.
//
// JSON-carrying columns are typed values here; rows.ts parses them (with their zod schemas, failing
// loudly on a corrupt row) and sql-store.ts serializes them, and nothing else knows they are text.
// Signed envelopes stay strings: they are kept verbatim as received, and their bytes matter.
import type { Announcement } from "../../protocol/announcement.ts";
import type { LeafParams } from "../../protocol/approval.ts";
import type { CrlParams } from "../../protocol/crl-params.ts";
import type { CheckpointParams } from "../../protocol/audit-checkpoint.ts";
import type { CaCsrParams, RootParams, SigningPackage } from "../../protocol/signing-messages.ts";
import type { RenewalProof } from "../../protocol/renewal.ts";
import type { RequestOrigin } from "../../protocol/origin.ts";
import type { Kysely, MigrationProvider } from "kysely";

export type { CeremonyStatus, RequestStatus } from "../../protocol/enums.ts";
import type { CeremonyStatus, RequestStatus } from "../../protocol/enums.ts";

/** Why a ceremony failed, and whom the checks blame (docs/architecture.md §3.5). */
export interface CeremonyFailure {
  reason: string;
  culprits: string[];
}

export interface CeremonyRecord {
  id: string;
  /** Stored as canonical JSON (the column's text is not hashed or signed: custodians compare fields). */
  announcement: Announcement;
  status: CeremonyStatus;
  failure: CeremonyFailure | null;
  createdAt: string;
  updatedAt: string;
}

export interface MessageRecord {
  id: string; // envelope id (replay protection: primary key)
  scope: string;
  type: string;
  sender: string;
  recipient: string;
  attempt: number;
  envelope: string; // JSON of the SignedEnvelope, exactly as received
  receivedAt: string;
}

export type SigningJobStatus = "signing" | "done" | "failed";

/** One line of a signing job's history (shown in request views). */
export interface JobEvent {
  at: string;
  /** "commitment" is only read: tca wrote it before commitments were offered ahead of time. */
  kind:
    | "commitment"
    | "package"
    | "share"
    | "bad-share"
    | "refusal"
    | "timeout"
    | "withdrawn"
    | "signed"
    | "failed";
  custodian?: string;
  detail?: string;
}

/**
 * What a custodian needs, with its own ca-config, to re-derive the TBS a job signs, by job kind: a
 * root certificate, a leaf certificate, a CRL (docs/architecture.md §3.2, §3.9), or a checkpoint of the
 * audit chain (docs/audit.md). The kind decides the shape.
 */
export type JobParams =
  | { kind: "root"; params: RootParams }
  | { kind: "leaf"; params: LeafParams }
  | { kind: "crl"; params: CrlParams }
  | { kind: "checkpoint"; params: CheckpointParams }
  | { kind: "ca-csr"; params: CaCsrParams };
export type JobKind = JobParams["kind"];

/** The fields of a signing job that do not depend on its kind. */
export interface SigningJobFields {
  id: string;
  subjectRef: string; // ceremony id, request id or "crl-N": what the job signs for
  tbs: Uint8Array;
  eligible: string[]; // roster names that may take part
  status: SigningJobStatus;
  attempt: number;
  /** The current attempt's package (RFC 9591 §5.2 commitment list and signers), once formed. */
  signingPackage: SigningPackage | null;
  excluded: string[]; // custodians excluded after a bad share or a refusal
  events: JobEvent[];
  signature: Uint8Array | null;
  createdAt: string;
  updatedAt: string;
}

export type SigningJobRecord = SigningJobFields & JobParams;

/** What an update may change: a job's kind and parameters are fixed when it is made. */
export type SigningJobPatch = Partial<Omit<SigningJobFields, "id" | "createdAt">>;

/**
 * A commitment a custodian handed out ahead of time (docs/architecture.md §3.6 pool). `offered` until a
 * signing package names it; then `in-package` for that job's attempt, `answered` once its share (or refusal)
 * arrived, or `void` when the attempt moved on, the instance withdrew, or it expired unused.
 */
export type OfferState = "offered" | "in-package" | "answered" | "void";

export interface OfferRecord {
  commitmentKey: string; // hiding‖binding, hex: unique for ever (a key is never offered twice)
  custodian: string;
  instance: string; // the custodian process that holds the nonces
  identifier: string;
  hiding: string;
  binding: string;
  expiresAt: string;
  offeredAt: string;
  state: OfferState;
  jobId: string | null;
  attempt: number | null;
}

export interface RequestOutcome {
  /** The custodian who rejected the request (absent for a failure). */
  by?: string;
  reason: string;
}

export interface RequestRecord {
  id: string;
  /** Intake order, given by the database when the request is stored (0 before that). */
  seq: number;
  requester: string;
  profile: string;
  csr: Uint8Array;
  tbs: Uint8Array;
  tbsSha256: string;
  serial: string; // hex content octets
  notBefore: string;
  notAfter: string;
  status: RequestStatus;
  signingJob: string | null;
  certificate: Uint8Array | null;
  /** Rejection ({by, reason}) or failure ({reason}); null while the request is open or issued. */
  outcome: RequestOutcome | null;
  /** Where the request came from when not a requester's own submission (an ACME order); null otherwise. */
  origin: RequestOrigin | null;
  createdAt: string;
  updatedAt: string;
}

export interface ApprovalRecord {
  requestId: string;
  custodian: string;
  decision: "approve" | "reject";
  reason: string | null;
  expiresAt: string;
  envelope: string;
  createdAt: string;
}

export interface RevocationRecord {
  serial: string; // hex content octets, as in requests.serial
  requestId: string;
  reason: string;
  revokedAt: string;
  revokedBy: string;
}

export interface CrlRecord {
  number: number;
  der: Uint8Array;
  thisUpdate: string;
  nextUpdate: string;
  createdAt: string;
}

/**
 * The CRL state machine, one row: the CRL job in flight, whether revocations arrived since it was
 * made (another CRL is due once it ends), and the last CRL number given to a job. Numbers only grow
 * (RFC 5280 §5.2.3), also past a job that failed: custodians that signed it would refuse it again.
 */
export interface CrlState {
  job: string | null;
  dirty: boolean;
  lastNumber: number;
}

/** An issued certificate's status (the inventory): revoked wins; else expired once notAfter ≤ now. */
export type CertificateStatus = "valid" | "expired" | "revoked";
/** The inventory's sort keys: the issue time or notAfter, ties broken by intake order. */
export type CertificateSort = "issued" | "notAfter";

/** A filtered, sorted page of the inventory (keyset pagination: rows strictly after `after`). */
export interface CertificateQuery {
  /** The time `status` is judged at (coordinator clock, ISO 8601). */
  now: string;
  /** Stored form (DER content octets, hex). */
  serial?: string;
  /** Lowercased substring of the subject CN or any SAN (no newline). */
  search?: string;
  status?: CertificateStatus;
  profile?: string;
  requester?: string;
  /** notAfter < expiresBefore; notAfter > expiresAfter (ISO 8601, as stored). */
  expiresBefore?: string;
  expiresAfter?: string;
  sort: CertificateSort;
  descending: boolean;
  /** The last row of the previous page: its sort key and sequence number. */
  after?: { key: string; seq: number };
  limit: number;
}

/** An issued certificate as the inventory lists it. */
export interface CertificateRecord {
  requestId: string;
  seq: number;
  serial: string; // stored form
  requester: string;
  profile: string;
  subject: string;
  subjectCn: string | null;
  sans: { type: "dns" | "ip" | "email" | "uri"; value: string }[];
  keyType: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  revocation: { revokedAt: string; reason: string } | null;
}

/** A request that renews a certificate (docs/revocation.md, "Renewal"). */
export interface RenewalRecord {
  requestId: string;
  /** The renewed certificate's serial, stored form. */
  renewalOf: string;
  challengeSha256: string;
  /** The holder's proof, as custodians check it again. */
  proof: RenewalProof;
  createdAt: string;
}

export interface Store {
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  insertCeremony(c: CeremonyRecord): Promise<void>;
  getCeremony(id: string): Promise<CeremonyRecord | undefined>;
  latestCeremony(): Promise<CeremonyRecord | undefined>;
  updateCeremony(id: string, patch: Partial<Pick<CeremonyRecord, "status" | "failure">>): Promise<void>;

  /** Inserts a message; false if its id was seen before or its (scope,type,sender,recipient,attempt) slot is taken. */
  insertMessage(m: MessageRecord): Promise<boolean>;
  listMessages(scope: string, type: string, attempt?: number): Promise<MessageRecord[]>;
  /** The stored message with this envelope id, if any. */
  getMessage(id: string): Promise<MessageRecord | undefined>;

  insertSigningJob(j: SigningJobRecord): Promise<void>;
  getSigningJob(id: string): Promise<SigningJobRecord | undefined>;
  listSigningJobs(status: SigningJobStatus): Promise<SigningJobRecord[]>;
  updateSigningJob(id: string, patch: SigningJobPatch): Promise<void>;

  insertRequest(r: Omit<RequestRecord, "seq">): Promise<void>;
  getRequest(id: string): Promise<RequestRecord | undefined>;
  listRequests(filter: {
    status?: RequestStatus;
    requester?: string;
    limit?: number;
  }): Promise<RequestRecord[]>;
  updateRequest(
    id: string,
    patch: Partial<Pick<RequestRecord, "status" | "signingJob" | "certificate" | "outcome">>,
  ): Promise<void>;
  /** false if this custodian already decided on this request. */
  insertApproval(a: ApprovalRecord): Promise<boolean>;
  listApprovals(requestId: string): Promise<ApprovalRecord[]>;
  getRequestBySerial(serial: string): Promise<RequestRecord | undefined>;
  /** false if the serial is already revoked. */
  insertRevocation(r: RevocationRecord): Promise<boolean>;
  listRevocations(): Promise<RevocationRecord[]>;
  /** Issued certificates matching `q`, in its order, at most `q.limit` (the inventory). */
  listCertificates(q: CertificateQuery): Promise<CertificateRecord[]>;
  /** The issued certificate with this (stored-form) serial, with its DER. */
  getCertificate(serial: string): Promise<(CertificateRecord & { der: Uint8Array }) | undefined>;
  insertCrl(c: CrlRecord): Promise<void>;
  latestCrl(): Promise<CrlRecord | undefined>;
  /** The CRL state (its one row; the initial state if there is none). */
  getCrlState(): Promise<CrlState>;
  /** Writes only the fields given. Call inside transaction(), like every step of the CRL machine. */
  setCrlState(patch: Partial<CrlState>): Promise<void>;
  countRequestsByStatus(): Promise<Partial<Record<RequestStatus, number>>>;

  /** Adds offers; keys already known (offered or used before) are ignored. Returns how many were new. */
  insertOffers(offers: OfferRecord[]): Promise<number>;
  /** Offers still `offered` that expire after `validAfter`, oldest first. */
  listOpenOffers(validAfter: string): Promise<OfferRecord[]>;
  /** This custodian's offers in the given states (optionally of one instance). */
  listOffersOf(custodian: string, states: OfferState[], instance?: string): Promise<OfferRecord[]>;
  /** Moves offers to a state, optionally binding them to a job attempt. */
  setOfferState(keys: string[], state: OfferState, job?: { jobId: string; attempt: number }): Promise<void>;
  /** Every offer in a job attempt, by state (the attempt's package members). */
  listOffersInJob(jobId: string, attempt: number): Promise<OfferRecord[]>;
  /** Forgets finished offers older than `before` and open ones that expired. */
  purgeOffers(before: string, now: string): Promise<void>;
  /** Signing jobs in status `signing` that have no package yet, oldest first. */
  listJobsAwaitingPackage(limit: number): Promise<SigningJobRecord[]>;
  /** Signing jobs in status `signing` that have a package (in flight). */
  listJobsWithPackage(): Promise<SigningJobRecord[]>;
  /** Requests in a status, in intake order, after the one with sequence number `afterSeq`. */
  listRequestsAfter(status: RequestStatus, afterSeq: number, limit: number): Promise<RequestRecord[]>;

  // ---- state the replicas share ----
  /** A custodian process spoke (any replica): it counts as live for package forming. */
  touchProcess(custodian: string, instance: string, at: string): Promise<void>;
  /** Forgets a process (it was replaced, or went silent). */
  dropProcess(instance: string): Promise<void>;
  /** Processes heard from since `since`, as "custodian/instance". */
  liveProcesses(since: string): Promise<Set<string>>;
  purgeProcesses(before: string): Promise<void>;
  /**
   * Records a heartbeat's counter for one custodian process if it is greater than the last one
   * recorded (atomically, for every replica); false for a replay or an older counter.
   */
  acceptHeartbeat(custodian: string, instance: string, seq: number, at: string): Promise<boolean>;
  /** Forgets counters last moved before `before` (older heartbeats fail the freshness check). */
  purgeHeartbeats(before: string): Promise<void>;
  /**
   * Records a signed read's nonce, one atomic insert outside transaction() (no write lock): true the
   * first time, false if (sender, nonce) is already recorded, by any replica.
   */
  acceptReadNonce(sender: string, nonce: string, expiresAt: string): Promise<boolean>;
  /** Forgets nonces that expired before `before` (their reads fail the freshness check). */
  purgeReadNonces(before: string): Promise<void>;
  /** Stores a fresh renewal challenge for a serial (stored form). */
  insertRenewalChallenge(c: { challengeSha256: string; serial: string; expiresAt: string }): Promise<void>;
  /**
   * Uses a renewal challenge, one atomic update: true only the first time, and only if it was made
   * for this serial and has not expired at `now`.
   */
  useRenewalChallenge(challengeSha256: string, serial: string, now: string): Promise<boolean>;
  /** How many challenges for this serial are unused and unexpired at `now`, and the first to expire. */
  liveRenewalChallenges(serial: string, now: string): Promise<{ count: number; firstExpiry?: string }>;
  /** Forgets challenges that expired before `before`, used or not (an expired one is never usable). */
  purgeRenewalChallenges(before: string): Promise<void>;
  /** Records that a request renews a certificate (inside the transaction that stores the request). */
  insertRenewal(r: RenewalRecord): Promise<void>;
  getRenewal(requestId: string): Promise<RenewalRecord | undefined>;
  /** The renewals of a certificate (stored-form serial), oldest first, with their requests' status and serial. */
  listRenewalsOf(
    serial: string,
  ): Promise<{ requestId: string; status: RequestStatus; serial: string; createdAt: string }[]>;
  recordContact(custodian: string, at: string, via: string): Promise<void>;
  listContacts(): Promise<{ custodian: string; at: string; via: string }[]>;
  /**
   * Takes or renews the lease on a piece of periodic work: true if `holder` holds it until
   * `expiresAt`, false if another holder's lease is still running at `now`.
   */
  claimLease(name: string, holder: string, now: string, expiresAt: string): Promise<boolean>;
  reportReplica(r: { id: string; url: string; startedAt: string; lastSeen: string }): Promise<void>;
  removeReplica(id: string): Promise<void>;
  /** Replicas that reported since `since`, oldest first. */
  listReplicas(since?: string): Promise<{ id: string; url: string; startedAt: string; lastSeen: string }[]>;

  // ---- change notifications (every replica's waiters wake) ----
  /**
   * Announces a change to every replica's subscribers. Inside a transaction it is sent when (and
   * only if) the transaction commits.
   */
  publish(topic: string): Promise<void>;
  /** Calls fn with each topic published by any replica (this one included); returns an unsubscribe. */
  subscribe(fn: (topic: string) => void): () => void;

  // ---- transactions ----
  /**
   * Runs fn atomically and alone: one write transaction at a time across every replica on this
   * database, rolled back if fn throws. fn gets the store bound to the transaction; calls made on
   * the store from inside fn (even through other objects) run in it too.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** Whether this call runs inside transaction() (the audit chain appends only there: docs/audit.md). */
  inTransaction(): boolean;
  /** Runs fn once the transaction in progress has committed (at once outside a transaction). */
  afterCommit(fn: () => void): void;
  /**
   * Inside transaction(): runs fn as one item of a batch. If fn throws, only its writes are undone
   * (a savepoint), and the error is rethrown for the caller to report.
   */
  item<T>(fn: () => Promise<T>): Promise<T>;

  // ---- a module's own tables (ACME, docs/acme.md) ----
  /**
   * The query builder for a module's own tables: the transaction in progress if any (so a module's
   * writes inside transaction() commit or roll back with it), else the database.
   */
  queryBuilder<DB>(): Kysely<DB>;
  /** Runs a module's own migrations, recorded in their own history table `<module>_migration`. */
  migrateModule(module: string, provider: MigrationProvider): Promise<void>;

  readonly dialect: "sqlite" | "postgres";
  /** Where the data lives, without credentials (for logs and /health). */
  readonly location: string;
  /** Answers once the database does (health). */
  ping(): Promise<void>;
  /** The database server's own clock (ms since the epoch), or null where it is this machine's (SQLite). */
  databaseTime(): Promise<number | null>;
  close(): Promise<void>;
}
