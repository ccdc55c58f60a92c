// Rows as the database returns them → the records the services use. The one place that knows both
// the column names and the domain's names; binary columns become plain Uint8Arrays here.
import type { Selectable } from "kysely";
import type { ApprovalTable, CeremonyTable, CrlTable, MessageTable, OfferTable } from "./schema.ts";
import type { RequestTable, RevocationTable, SigningJobTable } from "./schema.ts";
import type { ApprovalRecord, CeremonyRecord, CrlRecord, MessageRecord, OfferRecord } from "./types.ts";
import type { RequestRecord, RevocationRecord, SigningJobRecord } from "./types.ts";

const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);
/** COUNT and BIGINT arrive as strings from PostgreSQL and as numbers from SQLite. */
const int = (n: number | string | bigint): number => Number(n);

export const toCeremony = (r: Selectable<CeremonyTable>): CeremonyRecord => ({
  id: r.id,
  announcement: r.announcement,
  status: r.status,
  failure: r.failure,
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
  kind: r.kind,
  subjectRef: r.subject_ref,
  tbs: bytes(r.tbs),
  params: r.params,
  eligible: JSON.parse(r.eligible) as string[],
  status: r.status,
  attempt: int(r.attempt),
  signingPackage: r.signing_package,
  excluded: JSON.parse(r.excluded) as string[],
  events: r.events,
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
  outcome: r.outcome,
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
