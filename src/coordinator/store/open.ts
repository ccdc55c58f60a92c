// Opens the coordinator's store from one setting: a PostgreSQL URL (several coordinators as one
// CA), or a SQLite file (the embedded default). See docs/storage.md.
import Sqlite from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase } from "kysely";
import pg from "pg";
import type { Database } from "./schema.ts";
import { CHANNEL, SqlStore, WAKE_ALL, type NotificationChannel } from "./sql-store.ts";
import { notificationChunks } from "./sql-store.ts";

/** True for a `postgres://` or `postgresql://` URL. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * The location for logs: user, host, port and database, never a password (which may also be a
 * query parameter, `?password=`) nor any other query parameter.
 */
export function redactLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const u = new URL(location);
    const user = u.username ? `${u.username}@` : "";
    return `postgres://${user}${u.host}${u.pathname}`;
  } catch {
    return "postgres://(unparsable URL)";
  }
}

/**
 * Every PostgreSQL session of a replica: a replica that stops in the middle of a transaction (a VM
 * paused, a partition) must not hold the write lock for ever. Its session ends after 30 s idle in a
 * transaction, which rolls the transaction back and frees the lock for the others; a writer waits
 * at most 60 s for the lock, then fails (and its caller sees an error) rather than hang.
 */
const SESSION_OPTIONS = "-c idle_in_transaction_session_timeout=30000 -c lock_timeout=60000";

export interface OpenOptions {
  /** Most connections this process holds to PostgreSQL (default 10). */
  poolSize?: number;
}

/** Opens (and migrates) the store at `location`: a PostgreSQL URL, `sqlite:PATH`, a path, or `:memory:`. */
export async function openStore(location: string, o: OpenOptions = {}): Promise<SqlStore> {
  if (isPostgresUrl(location)) return openPostgres(location, o);
  return openSqlite(location.replace(/^sqlite:/i, ""));
}

async function openSqlite(path: string): Promise<SqlStore> {
  const db = new Sqlite(path);
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  // better-sqlite3 compiles SQL on every prepare(), and Kysely prepares on every query: keep the
  // compiled statements (Kysely's SQL for one query shape is always the same text). A write
  // transaction takes the write lock when it begins (BEGIN IMMEDIATE), so it never fails half-way
  // on a lock upgrade if something else writes the file.
  const statements = new Map<string, Sqlite.Statement>();
  const database: SqliteDatabase = {
    close: () => db.close(),
    prepare: (sql: string) => {
      const text = sql === "begin" ? "BEGIN IMMEDIATE" : sql;
      let st = statements.get(text);
      if (!st) {
        st = db.prepare(text);
        if (statements.size < 2000) statements.set(text, st);
      }
      return st;
    },
  };
  return SqlStore.open(new Kysely<Database>({ dialect: new SqliteDialect({ database }) }), {
    dialect: "sqlite",
    location: path,
  });
}

async function openPostgres(url: string, o: OpenOptions): Promise<SqlStore> {
  const pool = new pg.Pool({
    connectionString: url,
    max: o.poolSize ?? 10,
    keepAlive: true, // a dead peer is noticed in minutes, not after the kernel's two hours
    options: SESSION_OPTIONS,
  });
  // A connection the server dropped (database restart, network) must not crash the process: idle
  // ones are reported on the pool, checked-out ones on the client between two queries. The query
  // that next uses it fails (and its transaction rolls back); the pool then opens a fresh one.
  pool.on("error", () => undefined);
  pool.on("connect", (client) => client.on("error", () => undefined));
  const location = redactLocation(url);
  try {
    await pool.query("SELECT 1");
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot reach PostgreSQL at ${location}: ${(e as Error).message}`);
  }
  return SqlStore.open(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), {
    dialect: "postgres",
    location,
    listen: (deliver) => listen(url, pool, deliver),
  });
}

/**
 * One connection per replica LISTENs on the shared channel. If it drops (database restart), it
 * reconnects with backoff and delivers "*" so that every waiter looks again at what it waits for.
 */
async function listen(
  url: string,
  pool: pg.Pool,
  deliver: (topics: string[]) => void,
): Promise<NotificationChannel> {
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (delayMs: number): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url, keepAlive: true });
    c.on("notification", (n) => {
      if (n.channel !== CHANNEL || !n.payload) return;
      try {
        const topics = JSON.parse(n.payload) as unknown;
        if (Array.isArray(topics)) deliver(topics.filter((t): t is string => typeof t === "string"));
      } catch {
        deliver([WAKE_ALL]);
      }
    });
    const again = () => {
      if (closed || client !== c) return;
      client = undefined;
      c.removeAllListeners("error");
      c.on("error", () => undefined);
      void c.end().catch(() => undefined);
      retry = setTimeout(() => void connect(Math.min(delayMs * 2, 5_000)), delayMs);
      retry.unref();
    };
    c.on("error", again);
    c.on("end", again);
    client = c;
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
      if (delayMs > 100) deliver([WAKE_ALL]); // reconnected: some notifications may have been missed
    } catch {
      again();
    }
  };
  await connect(100);
  return {
    send: async (topics) => {
      for (const payload of notificationChunks(topics))
        await pool.query("SELECT pg_notify($1, $2)", [CHANNEL, payload]);
    },
    close: async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
