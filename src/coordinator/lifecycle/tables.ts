// The key lifecycle's tables (migration 0011_key_lifecycle) as Kysely sees them, reached through
// Store.queryBuilder: only the files of this folder know them (as audit/log.ts knows audit_log).
import type { MetaTable, MessageTable, CeremonyTable } from "../store/schema.ts";

export interface LifecycleCeremonyTable {
  id: string;
  kind: string;
  /** LifecyclePlanSchema, canonical JSON. */
  plan: string;
  status: string;
  /** LifecycleFailureSchema JSON, once failed. */
  failure: string | null;
  /** KeyStateSchema JSON, once complete. */
  result: string | null;
  created_at: string;
  updated_at: string;
}

export interface RosterChangeTable {
  /** rosterDigest of the proposed roster: one statement per target roster. */
  to_digest: string;
  /** RosterChangeStatementSchema, canonical JSON. */
  statement: string;
  created_at: string;
}

export interface RosterSignatureTable {
  to_digest: string;
  signer: string;
  /** base64url Ed25519 over rosterChangeBytes(statement). */
  signature: string;
  received_at: string;
}

export interface LifecycleDatabase {
  meta: MetaTable;
  ceremonies: CeremonyTable;
  messages: MessageTable;
  lifecycle_ceremonies: LifecycleCeremonyTable;
  roster_changes: RosterChangeTable;
  roster_signatures: RosterSignatureTable;
}
