// ACME's migrations, in their own history table (Store.migrateModule("acme", …)). Never edit one that
// shipped: add one.
import type { Kysely, Migration, MigrationProvider } from "kysely";

export function acmeMigrations(): MigrationProvider {
  const list: Record<string, Migration> = {
    "0001_acme": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("acme_accounts")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("thumbprint", "text", (c) => c.notNull().unique())
          .addColumn("jwk", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("contact", "text", (c) => c.notNull())
          .addColumn("requester", "text", (c) => c.notNull())
          .addColumn("eab_key_id", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("acme_eab_keys")
          .ifNotExists()
          .addColumn("key_id", "text", (c) => c.primaryKey())
          .addColumn("requester", "text", (c) => c.notNull())
          .addColumn("hmac_key", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("created_by", "text", (c) => c.notNull())
          .addColumn("account_id", "text")
          .addColumn("bound_at", "text")
          .execute();
        await db.schema
          .createTable("acme_nonces")
          .ifNotExists()
          .addColumn("value", "text", (c) => c.primaryKey())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("acme_nonces_expires")
          .ifNotExists()
          .on("acme_nonces")
          .column("expires_at")
          .execute();
        await db.schema
          .createTable("acme_orders")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("identifiers", "text", (c) => c.notNull())
          .addColumn("profile", "text", (c) => c.notNull())
          .addColumn("not_before", "text")
          .addColumn("not_after", "text")
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("request_id", "text")
          .addColumn("error", "text")
          .addColumn("replaces", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("acme_orders_account_created")
          .ifNotExists()
          .on("acme_orders")
          .columns(["account_id", "created_at"])
          .execute();
        await db.schema
          .createIndex("acme_orders_request")
          .ifNotExists()
          .on("acme_orders")
          .column("request_id")
          .execute();
        await db.schema
          .createTable("acme_authorizations")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("order_id", "text", (c) => c.notNull())
          .addColumn("account_id", "text", (c) => c.notNull())
          .addColumn("identifier_type", "text", (c) => c.notNull())
          .addColumn("identifier_value", "text", (c) => c.notNull())
          .addColumn("wildcard", "integer", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("validated_at", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("acme_authorizations_order")
          .ifNotExists()
          .on("acme_authorizations")
          .column("order_id")
          .execute();
        await db.schema
          .createTable("acme_challenges")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("authz_id", "text", (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("token", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("validated_at", "text")
          .addColumn("error", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("acme_challenges_authz")
          .ifNotExists()
          .on("acme_challenges")
          .column("authz_id")
          .execute();
      },
    },
  };
  return { getMigrations: async () => list };
}
