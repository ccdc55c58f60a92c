// The coordinator's side of the audit chain (docs/audit.md, src/protocol/audit.ts): entries appended
// in the write transaction of the event they record, and read back in pages. transaction()
// serializes every replica's writes (docs/storage.md), so the chain is one line across replicas, and
// an entry commits or rolls back with its event. Kept in its own table (migration 0010_audit_log),
// reached through Store.queryBuilder: this file is the only one that knows the table.
import { chainEntry, type AuditEntry, type AuditKind } from "../../protocol/audit.ts";
import { canonicalJson } from "../../common/canonical-json.ts";
import { clock } from "../clock.ts";
import type { Database } from "../store/schema.ts";
import type { Store } from "../store/types.ts";

const db = (store: Store) => store.queryBuilder<Database>();

/**
 * Appends one entry after the current head. Call it inside store.transaction(), in the transaction
 * that records the event, so the entry commits or rolls back with it. Called outside one (a test
 * driving a service directly), it takes a transaction of its own: the chain stays one line, as
 * only a transaction may read the head and append after it.
 */
export async function appendAudit(
  store: Store,
  e: { kind: AuditKind; subject?: string; body: unknown },
): Promise<AuditEntry> {
  if (!store.inTransaction()) return store.transaction(() => appendAudit(store, e));
  const head = await auditHead(store);
  const entry = chainEntry(head, { at: clock.iso(), ...e });
  await db(store)
    .insertInto("audit_log")
    .values({
      seq: entry.seq,
      at: entry.at,
      kind: entry.kind,
      subject: entry.subject ?? null,
      body: canonicalJson(entry.body),
      prev: entry.prev,
      hash: entry.hash,
    })
    .execute();
  return entry;
}

/** Entries with seq > afterSeq, in order, at most `limit`. */
export async function listAudit(store: Store, afterSeq: number, limit: number): Promise<AuditEntry[]> {
  const rows = await db(store)
    .selectFrom("audit_log")
    .selectAll()
    .where("seq", ">", afterSeq)
    .orderBy("seq")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    at: r.at,
    kind: r.kind as AuditKind,
    ...(r.subject !== null ? { subject: r.subject } : {}),
    body: JSON.parse(r.body) as unknown,
    prev: r.prev,
    hash: r.hash,
  }));
}

/** The last entry's seq and hash, or null for an empty chain. */
export async function auditHead(store: Store): Promise<{ seq: number; hash: string } | null> {
  const r = await db(store)
    .selectFrom("audit_log")
    .select(["seq", "hash"])
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
  return r ? { seq: Number(r.seq), hash: r.hash } : null;
}
