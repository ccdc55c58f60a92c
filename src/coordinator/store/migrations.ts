// Schema migrations, in order. Written in the SQL subset SQLite and PostgreSQL share.
export const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE ceremonies (
        id TEXT PRIMARY KEY, announcement TEXT NOT NULL, status TEXT NOT NULL, failure TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
      CREATE TABLE messages (
        id TEXT PRIMARY KEY, scope TEXT NOT NULL, type TEXT NOT NULL, sender TEXT NOT NULL,
        recipient TEXT NOT NULL, attempt INTEGER NOT NULL, envelope TEXT NOT NULL, received_at TEXT NOT NULL,
        UNIQUE (scope, type, sender, recipient, attempt));
      CREATE TABLE signing_jobs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_ref TEXT NOT NULL, tbs BLOB NOT NULL, params TEXT NOT NULL,
        eligible TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL, signing_package TEXT,
        excluded TEXT NOT NULL, events TEXT NOT NULL, signature BLOB, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
      CREATE INDEX signing_jobs_status ON signing_jobs (status);
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE requests (
        id TEXT PRIMARY KEY, requester TEXT NOT NULL, profile TEXT NOT NULL, csr BLOB NOT NULL, tbs BLOB NOT NULL,
        tbs_sha256 TEXT NOT NULL UNIQUE, serial TEXT NOT NULL UNIQUE, not_before TEXT NOT NULL, not_after TEXT NOT NULL,
        status TEXT NOT NULL, signing_job TEXT, certificate BLOB, outcome TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
      CREATE INDEX requests_status ON requests (status);
      CREATE TABLE approvals (
        request_id TEXT NOT NULL REFERENCES requests (id), custodian TEXT NOT NULL, decision TEXT NOT NULL,
        reason TEXT, expires_at TEXT NOT NULL, envelope TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (request_id, custodian));
    `,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE revocations (
        serial TEXT PRIMARY KEY, request_id TEXT NOT NULL REFERENCES requests (id), reason TEXT NOT NULL,
        revoked_at TEXT NOT NULL, revoked_by TEXT NOT NULL);
      CREATE TABLE crls (
        number INTEGER PRIMARY KEY, der BLOB NOT NULL, this_update TEXT NOT NULL, next_update TEXT NOT NULL,
        created_at TEXT NOT NULL);
    `,
  },
  {
    // One message per sender per stage and attempt, whatever its recipient field says.
    version: 4,
    sql: `CREATE UNIQUE INDEX messages_one_per_sender ON messages (scope, type, sender, attempt);`,
  },
  {
    // Commitments handed out ahead of time (DESIGN §3.6), and the indexes the signing pipeline
    // reads on every exchange.
    version: 5,
    sql: `
      CREATE TABLE commitment_offers (
        commitment_key TEXT PRIMARY KEY, custodian TEXT NOT NULL, instance TEXT NOT NULL,
        identifier TEXT NOT NULL, hiding TEXT NOT NULL, binding TEXT NOT NULL,
        expires_at TEXT NOT NULL, offered_at TEXT NOT NULL, state TEXT NOT NULL,
        job_id TEXT, attempt INTEGER, updated_at TEXT NOT NULL);
      CREATE INDEX commitment_offers_state ON commitment_offers (state, custodian);
      CREATE INDEX commitment_offers_job ON commitment_offers (job_id, attempt);
      CREATE INDEX signing_jobs_status_created ON signing_jobs (status, created_at);
      CREATE INDEX requests_status_created ON requests (status, created_at, id);
      CREATE INDEX approvals_request ON approvals (request_id, created_at);
    `,
  },
];
