// The databases a storage-touching test runs on: SQLite in memory (the embedded default) and a
// fresh PostgreSQL database on the suite's shared server (test/helpers/postgres.ts). Use with
// `describe.each(await storeKinds())`: on a machine without PostgreSQL (never in CI) only SQLite runs,
// with a warning.
import { openStore } from "../../src/coordinator/store/open.ts";
import type { SqlStore } from "../../src/coordinator/store/sql-store.ts";
import { hasPostgres, testDatabaseUrl } from "./postgres.ts";

export interface StoreKind {
  name: "sqlite" | "postgres";
  /** A location for openStore (a fresh, empty database each call). */
  location(): Promise<string>;
  open(): Promise<SqlStore>;
}

const sqlite: StoreKind = {
  name: "sqlite",
  location: async () => ":memory:",
  open: () => openStore(":memory:"),
};
const postgres: StoreKind = {
  name: "postgres",
  location: () => testDatabaseUrl(),
  open: async () => openStore(await testDatabaseUrl()),
};

export async function storeKinds(suite: string): Promise<StoreKind[]> {
  return (await hasPostgres(suite)) ? [sqlite, postgres] : [sqlite];
}
