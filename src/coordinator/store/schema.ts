// The coordinator's tables as Kysely sees them: one description for SQLite and PostgreSQL. Column
// names are snake_case as stored; the store maps rows to the camelCase records of types.ts at its
// edge, and only there. Binary columns are BLOB on SQLite and BYTEA on PostgreSQL; both drivers
// hand back a Buffer. JSON columns are TEXT on both (rows.ts and json.ts parse them). Times are ISO
// 8601 strings in UTC (they sort as text on both databases).
import type { Generated } from "kysely";
import type { OfferState, RequestStatus, SigningJobStatus, CeremonyStatus } from "./types.ts";

export interface MetaTable {
  key: string;
  value: string;
}

export interface CeremonyTable {
  id: string;
  announcement: string;
  status: CeremonyStatus;
  failure: string | null;
  created_at: string;
  updated_at: string;
}

export interface MessageTable {
  id: string;
  scope: string;
  type: string;
  sender: string;
  recipient: string;
  attempt: number;
  envelope: string;
  received_at: string;
}

export interface SigningJobTable {
  id: string;
  kind: string;
  subject_ref: string;
  tbs: Uint8Array;
  params: string;
  eligible: string;
  status: SigningJobStatus;
  attempt: number;
  signing_package: string | null;
  excluded: string;
  events: string;
  signature: Uint8Array | null;
  created_at: string;
  updated_at: string;
}

export interface RequestTable {
  id: string;
  /** Order of intake, given by the database inside the writing transaction (review cursors). */
  seq: Generated<number>;
  requester: string;
  profile: string;
  csr: Uint8Array;
  tbs: Uint8Array;
  tbs_sha256: string;
  serial: string;
  not_before: string;
  not_after: string;
  status: RequestStatus;
  signing_job: string | null;
  certificate: Uint8Array | null;
  outcome: string | null;
  created_at: string;
  updated_at: string;
  // The certificate inventory (migration 0006, store/inventory.ts): set when the certificate is
  // stored; null before that.
  /** The subject, RFC 4514 text. */
  subject: string | null;
  subject_cn: string | null;
  /** JSON [{type, value}]: the SANs in the certificate's order. */
  sans: string | null;
  /** The CN and SAN values, lowercased, each between newlines (substring search). */
  names: string | null;
  key_type: string | null;
  /** When the request became issued (ISO 8601). */
  issued_at: string | null;
  /** JSON RequestOrigin (migration 0009): where the request came from (ACME); null for a requester's own. */
  origin: string | null;
}

export interface ApprovalTable {
  request_id: string;
  custodian: string;
  decision: "approve" | "reject";
  reason: string | null;
  expires_at: string;
  envelope: string;
  created_at: string;
}

export interface RevocationTable {
  serial: string;
  request_id: string;
  reason: string;
  revoked_at: string;
  revoked_by: string;
}

export interface CrlTable {
  number: number;
  der: Uint8Array;
  this_update: string;
  next_update: string;
  created_at: string;
}

/**
 * The CRL state machine: exactly one row (id = 1). `dirty` is 0 or 1 (SQLite has no boolean);
 * `job` is null when no CRL job is in flight.
 */
export interface CrlStateTable {
  id: number;
  job: string | null;
  dirty: number;
  last_number: number;
}

export interface OfferTable {
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
  updated_at: string;
}

/** Custodian processes (agents) by the last time one of their signed messages reached any replica. */
export interface ProcessTable {
  instance: string;
  custodian: string;
  last_seen: string;
}

/** Custodians by their last signed contact, for /health. */
export interface ContactTable {
  custodian: string;
  at: string;
  via: string;
}

/** Periodic work held by one replica at a time until `expires_at`. */
export interface LeaseTable {
  name: string;
  holder: string;
  expires_at: string;
}

/** Coordinator replicas: each writes its row as it runs, so /health can report all of them. */
export interface ReplicaTable {
  id: string;
  url: string;
  started_at: string;
  last_seen: string;
}

/** The last heartbeat counter (envelope seq) accepted from each custodian process (replay guard). */
export interface HeartbeatTable {
  custodian: string;
  instance: string;
  /** BIGINT: envelope sequence numbers start from the clock in microseconds. */
  seq: number;
  at: string;
}

/** Nonces of custodians' signed reads already accepted, until they expire (replay guard). */
export interface ReadNonceTable {
  sender: string;
  nonce: string;
  expires_at: string;
}

/** One-time renewal challenges (migration 0007), by SHA-256 of the value. */
export interface RenewalChallengeTable {
  challenge_sha256: string;
  serial: string;
  expires_at: string;
  used_at: string | null;
}

/** Requests that renew a certificate, with the holder's proof (JSON of RenewalProof). */
export interface RenewalTable {
  request_id: string;
  renewal_of: string;
  challenge_sha256: string;
  proof: string;
  created_at: string;
}

/** The audit chain (migration 0010, docs/audit.md): body is canonical JSON; prev and hash are hex. */
export interface AuditLogTable {
  seq: number;
  at: string;
  kind: string;
  subject: string | null;
  body: string;
  prev: string;
  hash: string;
}

export interface Database {
  meta: MetaTable;
  ceremonies: CeremonyTable;
  messages: MessageTable;
  signing_jobs: SigningJobTable;
  requests: RequestTable;
  approvals: ApprovalTable;
  revocations: RevocationTable;
  crls: CrlTable;
  crl_state: CrlStateTable;
  commitment_offers: OfferTable;
  custodian_processes: ProcessTable;
  custodian_contacts: ContactTable;
  leases: LeaseTable;
  replicas: ReplicaTable;
  heartbeats: HeartbeatTable;
  read_nonces: ReadNonceTable;
  renewal_challenges: RenewalChallengeTable;
  renewals: RenewalTable;
  audit_log: AuditLogTable;
}
