// Versioned schema migrations, run from code by Kysely's Migrator when a store opens (it takes a
// lock first, so replicas starting together on one PostgreSQL migrate once). Written with the schema
// builder; the only dialect difference is the binary type. Never edit a migration that shipped: add
// one.
import { sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import { inventoryColumns } from "./inventory.ts";

export type Dialect = "sqlite" | "postgres";

export function migrations(dialect: Dialect): MigrationProvider {
  const blob = dialect === "postgres" ? "bytea" : "blob";
  const list: Record<string, Migration> = {
    // The schema tca had before it moved to Kysely (its five hand-run steps in one), created only
    // where missing, so a database written by an earlier tca opens unchanged.
    "0001_initial": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("meta")
          .ifNotExists()
          .addColumn("key", "text", (c) => c.primaryKey())
          .addColumn("value", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("ceremonies")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("announcement", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("failure", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        // Replay protection: an envelope id is stored once, and a sender has one message per stage
        // and attempt whatever its recipient field says (docs/architecture.md §3).
        await db.schema
          .createTable("messages")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("scope", "text", (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("sender", "text", (c) => c.notNull())
          .addColumn("recipient", "text", (c) => c.notNull())
          .addColumn("attempt", "integer", (c) => c.notNull())
          .addColumn("envelope", "text", (c) => c.notNull())
          .addColumn("received_at", "text", (c) => c.notNull())
          .addUniqueConstraint("messages_scope_type_sender_recipient_attempt_key", [
            "scope",
            "type",
            "sender",
            "recipient",
            "attempt",
          ])
          .execute();
        await db.schema
          .createIndex("messages_one_per_sender")
          .ifNotExists()
          .unique()
          .on("messages")
          .columns(["scope", "type", "sender", "attempt"])
          .execute();
        await db.schema
          .createTable("signing_jobs")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("subject_ref", "text", (c) => c.notNull())
          .addColumn("tbs", blob, (c) => c.notNull())
          .addColumn("params", "text", (c) => c.notNull())
          .addColumn("eligible", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("attempt", "integer", (c) => c.notNull())
          .addColumn("signing_package", "text")
          .addColumn("excluded", "text", (c) => c.notNull())
          .addColumn("events", "text", (c) => c.notNull())
          .addColumn("signature", blob)
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("signing_jobs_status_created")
          .ifNotExists()
          .on("signing_jobs")
          .columns(["status", "created_at"])
          .execute();
        await db.schema
          .createTable("requests")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("requester", "text", (c) => c.notNull())
          .addColumn("profile", "text", (c) => c.notNull())
          .addColumn("csr", blob, (c) => c.notNull())
          .addColumn("tbs", blob, (c) => c.notNull())
          .addColumn("tbs_sha256", "text", (c) => c.notNull().unique())
          .addColumn("serial", "text", (c) => c.notNull().unique())
          .addColumn("not_before", "text", (c) => c.notNull())
          .addColumn("not_after", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("signing_job", "text")
          .addColumn("certificate", blob)
          .addColumn("outcome", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("requests_status_created")
          .ifNotExists()
          .on("requests")
          .columns(["status", "created_at", "id"])
          .execute();
        await db.schema
          .createTable("approvals")
          .ifNotExists()
          .addColumn("request_id", "text", (c) => c.notNull().references("requests.id"))
          .addColumn("custodian", "text", (c) => c.notNull())
          .addColumn("decision", "text", (c) => c.notNull())
          .addColumn("reason", "text")
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("envelope", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("approvals_pkey", ["request_id", "custodian"])
          .execute();
        await db.schema
          .createIndex("approvals_request")
          .ifNotExists()
          .on("approvals")
          .columns(["request_id", "created_at"])
          .execute();
        await db.schema
          .createTable("revocations")
          .ifNotExists()
          .addColumn("serial", "text", (c) => c.primaryKey())
          .addColumn("request_id", "text", (c) => c.notNull().references("requests.id"))
          .addColumn("reason", "text", (c) => c.notNull())
          .addColumn("revoked_at", "text", (c) => c.notNull())
          .addColumn("revoked_by", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("crls")
          .ifNotExists()
          .addColumn("number", "integer", (c) => c.primaryKey())
          .addColumn("der", blob, (c) => c.notNull())
          .addColumn("this_update", "text", (c) => c.notNull())
          .addColumn("next_update", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("commitment_offers")
          .ifNotExists()
          .addColumn("commitment_key", "text", (c) => c.primaryKey())
          .addColumn("custodian", "text", (c) => c.notNull())
          .addColumn("instance", "text", (c) => c.notNull())
          .addColumn("identifier", "text", (c) => c.notNull())
          .addColumn("hiding", "text", (c) => c.notNull())
          .addColumn("binding", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("offered_at", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("job_id", "text")
          .addColumn("attempt", "integer")
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("commitment_offers_state")
          .ifNotExists()
          .on("commitment_offers")
          .columns(["state", "custodian"])
          .execute();
        await db.schema
          .createIndex("commitment_offers_job")
          .ifNotExists()
          .on("commitment_offers")
          .columns(["job_id", "attempt"])
          .execute();
      },
    },
    // Several coordinators on one database: intake order from the database, not a clock (review
    // cursors), and the state replicas share instead of keeping in memory.
    "0002_replicas": {
      async up(db: Kysely<unknown>) {
        // Every step may run again: on SQLite, Kysely runs migrations without a transaction, so an
        // upgrade interrupted half-way is finished by the next start.
        const columns = (await db.introspection.getTables()).find((t) => t.name === "requests")?.columns;
        if (!columns?.some((c) => c.name === "seq"))
          await db.schema.alterTable("requests").addColumn("seq", "integer").execute();
        // Requests written before this step get their order from (created_at, id), as before. One
        // pass (UPDATE … FROM: SQLite 3.33+, PostgreSQL), not one count per row.
        await sql`UPDATE requests SET seq = r.rn
                    FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id) AS rn FROM requests) AS r
                   WHERE r.id = requests.id AND requests.seq IS NULL`.execute(db);
        await db.schema
          .createIndex("requests_seq")
          .ifNotExists()
          .unique()
          .on("requests")
          .column("seq")
          .execute();
        await db.schema
          .createIndex("requests_status_seq")
          .ifNotExists()
          .on("requests")
          .columns(["status", "seq"])
          .execute();
        await db.schema
          .createTable("custodian_processes")
          .ifNotExists()
          .addColumn("instance", "text", (c) => c.primaryKey())
          .addColumn("custodian", "text", (c) => c.notNull())
          .addColumn("last_seen", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("custodian_contacts")
          .ifNotExists()
          .addColumn("custodian", "text", (c) => c.primaryKey())
          .addColumn("at", "text", (c) => c.notNull())
          .addColumn("via", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("leases")
          .ifNotExists()
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("holder", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("replicas")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("url", "text", (c) => c.notNull())
          .addColumn("started_at", "text", (c) => c.notNull())
          .addColumn("last_seen", "text", (c) => c.notNull())
          .execute();
      },
    },
    // The CRL state machine moves from three string meta keys ("crl.dirty" = "1"/"0", "crl.job",
    // "crl.lastNumber") to one typed row. The values are carried over, so a running CA keeps its CRL
    // numbering: a CRL number never goes backwards (RFC 5280 §5.2.3), nor below one already published.
    "0003_crl_state": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("crl_state")
          .ifNotExists()
          .addColumn("id", "integer", (c) => c.primaryKey().check(sql`id = 1`))
          .addColumn("job", "text")
          .addColumn("dirty", "integer", (c) => c.notNull().check(sql`dirty IN (0, 1)`))
          .addColumn("last_number", "integer", (c) => c.notNull().check(sql`last_number >= 0`))
          .execute();
        await sql`INSERT INTO crl_state (id, job, dirty, last_number)
                  SELECT 1,
                         (SELECT NULLIF(value, '') FROM meta WHERE key = 'crl.job'),
                         COALESCE((SELECT CASE WHEN value = '1' THEN 1 ELSE 0 END
                                     FROM meta WHERE key = 'crl.dirty'), 0),
                         CASE WHEN t.attempted > t.published THEN t.attempted ELSE t.published END
                    FROM (SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta
                                            WHERE key = 'crl.lastNumber' AND value <> ''), 0) AS attempted,
                                 COALESCE((SELECT MAX(number) FROM crls), 0) AS published) AS t
                   WHERE true
                  ON CONFLICT (id) DO NOTHING`.execute(db);
        await sql`DELETE FROM meta WHERE key IN ('crl.dirty', 'crl.job', 'crl.lastNumber')`.execute(db);
      },
    },
    // Heartbeats carry a counter (the envelope's seq, strictly increasing per custodian process):
    // the last one accepted per process is kept here, shared by every replica, so a captured
    // heartbeat replayed to any replica is refused.
    "0004_heartbeat_counters": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("heartbeats")
          .ifNotExists()
          .addColumn("custodian", "text", (c) => c.notNull())
          .addColumn("instance", "text", (c) => c.notNull())
          .addColumn("seq", "bigint", (c) => c.notNull())
          .addColumn("at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("heartbeats_pkey", ["custodian", "instance"])
          .execute();
      },
    },
    // Custodians' signed reads (src/protocol/signed-read.ts) are accepted once: each (sender,
    // nonce) is inserted here by one atomic statement, shared by every replica, and kept until its
    // read could no longer pass the freshness check. Requesters list their own requests by name.
    "0005_read_nonces": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("read_nonces")
          .ifNotExists()
          .addColumn("sender", "text", (c) => c.notNull())
          .addColumn("nonce", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("read_nonces_pkey", ["sender", "nonce"])
          .execute();
        await db.schema
          .createIndex("read_nonces_expires_at")
          .ifNotExists()
          .on("read_nonces")
          .column("expires_at")
          .execute();
        await db.schema
          .createIndex("requests_requester_seq")
          .ifNotExists()
          .on("requests")
          .columns(["requester", "seq"])
          .execute();
      },
    },
    // The certificate inventory (GET /api/v1/certificates, docs/inventory.md): searchable columns
    // read from each issued certificate (store/inventory.ts), the time it was issued, and indexes
    // for the two sort orders. Certificates issued before this step are read here once; their
    // issue time is the request's last update, which for an issued request is its issuance.
    "0006_certificate_inventory": {
      async up(db: Kysely<unknown>) {
        const columns = (await db.introspection.getTables()).find((t) => t.name === "requests")?.columns;
        for (const name of ["subject", "subject_cn", "sans", "names", "key_type", "issued_at"])
          if (!columns?.some((c) => c.name === name))
            await db.schema.alterTable("requests").addColumn(name, "text").execute();
        await db.schema
          .createIndex("requests_status_issued_at")
          .ifNotExists()
          .on("requests")
          .columns(["status", "issued_at", "seq"])
          .execute();
        await db.schema
          .createIndex("requests_status_not_after")
          .ifNotExists()
          .on("requests")
          .columns(["status", "not_after", "seq"])
          .execute();
        // In pages by seq: memory stays bounded whatever the number of certificates.
        for (let after = -1; ;) {
          const page = await sql<{ id: string; seq: number; certificate: Uint8Array; updated_at: string }>`
            SELECT id, seq, certificate, updated_at FROM requests
             WHERE status = 'issued' AND certificate IS NOT NULL AND issued_at IS NULL AND seq > ${after}
             ORDER BY seq LIMIT 200`.execute(db);
          if (page.rows.length === 0) break;
          for (const r of page.rows) {
            const c = inventoryColumns(new Uint8Array(r.certificate));
            await sql`UPDATE requests
                         SET issued_at = ${r.updated_at}, subject = ${c?.subject ?? null},
                             subject_cn = ${c?.subject_cn ?? null}, sans = ${c?.sans ?? null},
                             names = ${c?.names ?? null}, key_type = ${c?.key_type ?? null}
                       WHERE id = ${r.id}`.execute(db);
          }
          after = Number(page.rows[page.rows.length - 1]!.seq);
        }
      },
    },
    // Renewal authenticated by the current certificate (docs/revocation.md): one-time challenges
    // (SHA-256 of the value; used once, short-lived, and afterwards the renewer's credential to
    // follow its renewal), and which requests renew which certificate, with the proof custodians check.
    "0007_renewals": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("renewal_challenges")
          .ifNotExists()
          .addColumn("challenge_sha256", "text", (c) => c.primaryKey())
          .addColumn("serial", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("used_at", "text")
          .execute();
        await db.schema
          .createIndex("renewal_challenges_expires_at")
          .ifNotExists()
          .on("renewal_challenges")
          .column("expires_at")
          .execute();
        await db.schema
          .createTable("renewals")
          .ifNotExists()
          .addColumn("request_id", "text", (c) => c.primaryKey())
          .addColumn("renewal_of", "text", (c) => c.notNull())
          .addColumn("challenge_sha256", "text", (c) => c.notNull())
          .addColumn("proof", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
      },
    },
    // A certificate has at most one live renewal (docs/revocation.md): found by the renewed serial.
    "0008_renewals_by_serial": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createIndex("renewals_renewal_of")
          .ifNotExists()
          .on("renewals")
          .column("renewal_of")
          .execute();
      },
    },
    // Where a request came from (src/protocol/origin.ts, docs/acme.md): JSON text, null for a
    // requester's own submission, so every request stored before this step reads as one.
    "0009_request_origin": {
      async up(db: Kysely<unknown>) {
        // May run again (SQLite migrations run without a transaction, as in 0002).
        const columns = (await db.introspection.getTables()).find((t) => t.name === "requests")?.columns;
        if (!columns?.some((c) => c.name === "origin"))
          await db.schema.alterTable("requests").addColumn("origin", "text").execute();
      },
    },
    // The audit chain (docs/audit.md, src/coordinator/audit/log.ts): one row per entry, appended in
    // the write transaction of the event it records; seq is given there (one more than the highest),
    // so it has no gaps. body is the entry's canonical JSON body, prev and hash the chain links.
    "0010_audit_log": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("audit_log")
          .ifNotExists()
          .addColumn("seq", "integer", (c) => c.primaryKey())
          .addColumn("at", "text", (c) => c.notNull())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("subject", "text")
          .addColumn("body", "text", (c) => c.notNull())
          .addColumn("prev", "text", (c) => c.notNull())
          .addColumn("hash", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("audit_log_kind_subject")
          .ifNotExists()
          .on("audit_log")
          .columns(["kind", "subject"])
          .execute();
      },
    },
    // The key lifecycle (docs/key-lifecycle.md, src/coordinator/lifecycle/): refresh, reshare and
    // repair ceremonies (their messages go in `messages`, scope = ceremony id), and roster changes
    // with the custodians' signatures collected for them, one row per (change, signer).
    "0011_key_lifecycle": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("lifecycle_ceremonies")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("plan", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("failure", "text")
          .addColumn("result", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("roster_changes")
          .ifNotExists()
          .addColumn("to_digest", "text", (c) => c.primaryKey())
          .addColumn("statement", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("roster_signatures")
          .ifNotExists()
          .addColumn("to_digest", "text", (c) => c.notNull())
          .addColumn("signer", "text", (c) => c.notNull())
          .addColumn("signature", "text", (c) => c.notNull())
          .addColumn("received_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("roster_signatures_pkey", ["to_digest", "signer"])
          .execute();
      },
    },
  };
  return { getMigrations: async () => list };
}
