// Rows as the database returns them → the records the services use. The one place that knows both
// the column names and the domain's names; binary columns become plain Uint8Arrays here, JSON
// columns typed values (json.ts), integer flags booleans.
import type { Selectable } from "kysely";
import type { ApprovalTable, CeremonyTable, CrlTable, MessageTable, OfferTable } from "./schema.ts";
import type { CrlStateTable, RequestTable, RevocationTable, SigningJobTable } from "./schema.ts";
import type { ApprovalRecord, CeremonyRecord, CrlRecord, MessageRecord, OfferRecord } from "./types.ts";
import type { CrlState, RequestRecord, RevocationRecord, SigningJobRecord } from "./types.ts";
import { readAnnouncement, readEvents, readFailure, readJobParams, readNames } from "./json.ts";
import { readOrigin, readOutcome, readPackage } from "./json.ts";

const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);
/** COUNT and BIGINT arrive as strings from PostgreSQL and as numbers from SQLite. */
const int = (n: number | string | bigint): number => Number(n);

export const toCeremony = (r: Selectable<CeremonyTable>): CeremonyRecord => ({
  id: r.id,
  announcement: readAnnouncement(r.announcement, r.id),
  status: r.status,
  failure: readFailure(r.failure, r.id),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toMessage = (r: Selectable<MessageTable>): MessageRecord => ({
  id: r.id,
  scope: r.scope,
  type: r.type,
  sender: r.sender,
  recipient: r.recipient,
  attempt: int(r.attempt),
  envelope: r.envelope,
  receivedAt: r.received_at,
});

export const toJob = (r: Selectable<SigningJobTable>): SigningJobRecord => ({
  id: r.id,
  ...readJobParams(r.kind, r.params, r.id),
  subjectRef: r.subject_ref,
  tbs: bytes(r.tbs),
  eligible: readNames(r.eligible, "eligible", r.id),
  status: r.status,
  attempt: int(r.attempt),
  signingPackage: readPackage(r.signing_package, r.id),
  excluded: readNames(r.excluded, "excluded", r.id),
  events: readEvents(r.events, r.id),
  signature: r.signature ? bytes(r.signature) : null,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toRequest = (r: Selectable<RequestTable>): RequestRecord => ({
  id: r.id,
  seq: int(r.seq),
  requester: r.requester,
  profile: r.profile,
  csr: bytes(r.csr),
  tbs: bytes(r.tbs),
  tbsSha256: r.tbs_sha256,
  serial: r.serial,
  notBefore: r.not_before,
  notAfter: r.not_after,
  status: r.status,
  signingJob: r.signing_job,
  certificate: r.certificate ? bytes(r.certificate) : null,
  outcome: readOutcome(r.outcome, r.id),
  origin: readOrigin(r.origin, r.id),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toApproval = (r: Selectable<ApprovalTable>): ApprovalRecord => ({
  requestId: r.request_id,
  custodian: r.custodian,
  decision: r.decision,
  reason: r.reason,
  expiresAt: r.expires_at,
  envelope: r.envelope,
  createdAt: r.created_at,
});

export const toRevocation = (r: Selectable<RevocationTable>): RevocationRecord => ({
  serial: r.serial,
  requestId: r.request_id,
  reason: r.reason,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
});

export const toCrl = (r: Selectable<CrlTable>): CrlRecord => ({
  number: int(r.number),
  der: bytes(r.der),
  thisUpdate: r.this_update,
  nextUpdate: r.next_update,
  createdAt: r.created_at,
});

export const toOffer = (r: Selectable<OfferTable>): OfferRecord => ({
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
  attempt: r.attempt === null ? null : int(r.attempt),
});

/** SQLite has no boolean type: the flag is stored as 0 or 1 on both databases. */
export const toCrlState = (r: Selectable<CrlStateTable>): CrlState => ({
  job: r.job,
  dirty: int(r.dirty) !== 0,
  lastNumber: int(r.last_number),
});
