import type { Database } from "better-sqlite3";
import type { Logger } from "pino";

/**
 * Schema versions of the embedded store, applied in order inside one
 * transaction each (SQLite DDL is transactional); PRAGMA user_version holds
 * the version reached. Never edit a released migration; add a new one.
 */
const migrations: Array<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: "mappings and outbox",
    // AUTOINCREMENT: ids are never reused, even after the highest row is
    // deleted, so outbox ids (revisions) only rise.
    sql: `
      CREATE TABLE mappings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        domain TEXT NOT NULL UNIQUE,
        backends TEXT NOT NULL,
        labels TEXT NOT NULL,
        revision INTEGER NOT NULL,
        create_time INTEGER NOT NULL,
        update_time INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX mappings_tenant_id ON mappings (tenant_id, id);
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain TEXT NOT NULL,
        op TEXT NOT NULL,
        backends TEXT,
        created_at INTEGER NOT NULL
      ) STRICT;`,
  },
  {
    version: 2,
    name: "api keys, audit trail, tenant settings",
    // No name locks: one write transaction runs at a time.
    sql: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        role TEXT NOT NULL,
        description TEXT NOT NULL,
        secret_hash BLOB NOT NULL,
        create_time INTEGER NOT NULL,
        expire_time INTEGER,
        last_used_time INTEGER,
        revoke_time INTEGER
      ) STRICT;
      CREATE INDEX api_keys_tenant ON api_keys (tenant_id, create_time);
      CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        tenant_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        action TEXT NOT NULL,
        domain TEXT NOT NULL,
        previous_domain TEXT NOT NULL,
        before_state TEXT,
        after_state TEXT,
        request_id TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
      CREATE INDEX audit_events_domain ON audit_events (domain, id);
      CREATE INDEX audit_events_previous_domain ON audit_events (previous_domain, id);
      CREATE INDEX audit_events_time ON audit_events (time);
      CREATE TABLE tenants (
        tenant_id TEXT PRIMARY KEY,
        zones TEXT NOT NULL,
        mapping_quota INTEGER NOT NULL,
        update_time INTEGER NOT NULL
      ) STRICT;`,
  },
  {
    version: 3,
    name: "idempotency keys",
    sql: `
      CREATE TABLE idempotency (
        scope TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        result TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (scope, idem_key)
      ) STRICT;
      CREATE INDEX idempotency_created_at ON idempotency (created_at);`,
  },
  {
    version: 4,
    name: "mapping status",
    sql: `ALTER TABLE mappings ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled';`,
  },
  {
    version: 5,
    name: "certificates and their outbox, TLS mode and ACME state",
    sql: `
      ALTER TABLE mappings ADD COLUMN tls_mode TEXT NOT NULL DEFAULT '';
      CREATE TABLE acme_states (
        name TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        expire_time INTEGER,
        fingerprint TEXT NOT NULL,
        next_attempt_time INTEGER NOT NULL,
        failures INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE certificates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL UNIQUE,
        chain_pem TEXT NOT NULL,
        sealed_key TEXT NOT NULL,
        dns_names TEXT NOT NULL,
        issuer TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        revision INTEGER NOT NULL,
        update_time INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX certificates_tenant ON certificates (tenant_id, name);
      CREATE TABLE certificate_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        chain_pem TEXT,
        sealed_key TEXT,
        created_at INTEGER NOT NULL
      ) STRICT;`,
  },
];

export function migrateSqlite(db: Database, logger: Logger): void {
  for (const m of migrations) {
    if ((db.pragma("user_version", { simple: true }) as number) >= m.version) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    logger.info({ version: m.version, migration: m.name }, "applied migration");
  }
}
