/**
 * Schema versions, applied in order at startup under a named lock so that
 * replicas starting together apply each exactly once. Never edit a released
 * migration; add a new one.
 */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: "mappings and outbox",
    statements: [
      `CREATE TABLE mappings (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        domain VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        backends MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        labels TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        revision BIGINT UNSIGNED NOT NULL,
        create_time DATETIME(3) NOT NULL,
        update_time DATETIME(3) NOT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY mappings_domain (domain),
        KEY mappings_tenant_id (tenant_id, id)
      ) ENGINE=InnoDB`,
      // One row per change of one domain, carrying its full new state. The relay
      // applies rows to Redis and deletes them; the id is the domain's revision.
      `CREATE TABLE outbox (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        domain VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        op VARCHAR(8) CHARACTER SET ascii NOT NULL,
        backends MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        created_at DATETIME(3) NOT NULL,
        PRIMARY KEY (id)
      ) ENGINE=InnoDB`,
    ],
  },
  {
    version: 2,
    name: "api keys, audit trail, tenant settings, name locks",
    statements: [
      // Only a SHA-256 of each secret is kept.
      `CREATE TABLE api_keys (
        id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        role VARCHAR(8) CHARACTER SET ascii NOT NULL,
        description VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        secret_hash BINARY(32) NOT NULL,
        create_time DATETIME(3) NOT NULL,
        expire_time DATETIME(3) NULL,
        last_used_time DATETIME(3) NULL,
        revoke_time DATETIME(3) NULL,
        PRIMARY KEY (id),
        KEY api_keys_tenant (tenant_id, create_time)
      ) ENGINE=InnoDB`,
      // Written in the transaction of the mapping write it records.
      `CREATE TABLE audit_events (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        time DATETIME(3) NOT NULL,
        tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        key_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        action VARCHAR(8) CHARACTER SET ascii NOT NULL,
        domain VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        previous_domain VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        before_state MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        after_state MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        request_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        PRIMARY KEY (id),
        KEY audit_events_tenant (tenant_id, id),
        KEY audit_events_domain (domain, id),
        KEY audit_events_previous_domain (previous_domain, id),
        KEY audit_events_time (time)
      ) ENGINE=InnoDB`,
      `CREATE TABLE tenants (
        tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        zones TEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        mapping_quota INT UNSIGNED NOT NULL,
        update_time DATETIME(3) NOT NULL,
        PRIMARY KEY (tenant_id)
      ) ENGINE=InnoDB`,
      // One row per registrable domain: its lock serialises ownership checks under it.
      `CREATE TABLE name_locks (
        name VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        PRIMARY KEY (name)
      ) ENGINE=InnoDB`,
    ],
  },
  {
    version: 3,
    name: "idempotency keys",
    statements: [
      // The first answer to a write sent with an Idempotency-Key, written in the write's transaction.
      `CREATE TABLE idempotency (
        scope VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        fingerprint CHAR(64) CHARACTER SET ascii NOT NULL,
        result MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
        created_at DATETIME(3) NOT NULL,
        PRIMARY KEY (scope, idem_key),
        KEY idempotency_created_at (created_at)
      ) ENGINE=InnoDB`,
    ],
  },
  {
    version: 4,
    name: "mapping status",
    statements: [`ALTER TABLE mappings ADD COLUMN status VARCHAR(8) CHARACTER SET ascii NOT NULL DEFAULT 'enabled' AFTER labels`],
  },
  {
    version: 5,
    name: "certificates and their outbox, TLS mode and ACME state",
    statements: [
      `ALTER TABLE mappings ADD COLUMN tls_mode VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT ''`,
      // Where each automatic certificate stands; the ACME manager (relay leader) keeps it.
      `CREATE TABLE acme_states (
        name VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        state VARCHAR(16) CHARACTER SET ascii NOT NULL,
        reason VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        expire_time DATETIME(3) NULL,
        fingerprint VARCHAR(128) CHARACTER SET ascii NOT NULL,
        next_attempt_time DATETIME(3) NOT NULL,
        failures INT UNSIGNED NOT NULL,
        PRIMARY KEY (name),
        KEY acme_states_next (next_attempt_time)
      ) ENGINE=InnoDB`,
      // One certificate per name a tenant owns; the key sealed (see SecretBox).
      `CREATE TABLE certificates (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        name VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        chain_pem MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        sealed_key TEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        dns_names TEXT CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        issuer VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        not_before DATETIME(3) NOT NULL,
        not_after DATETIME(3) NOT NULL,
        fingerprint VARCHAR(128) CHARACTER SET ascii NOT NULL,
        revision BIGINT UNSIGNED NOT NULL,
        update_time DATETIME(3) NOT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY certificates_name (name),
        KEY certificates_tenant (tenant_id, name)
      ) ENGINE=InnoDB`,
      // Like outbox, for certificates: the full new state of one name; its id is the name's certificate revision.
      `CREATE TABLE certificate_outbox (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        name VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        chain_pem MEDIUMTEXT CHARACTER SET ascii COLLATE ascii_bin NULL,
        sealed_key TEXT CHARACTER SET ascii COLLATE ascii_bin NULL,
        created_at DATETIME(3) NOT NULL,
        PRIMARY KEY (id)
      ) ENGINE=InnoDB`,
    ],
  },
  {
    version: 6,
    name: "relay lease row",
    statements: [
      // The relay lease: who holds it, until when (by the database's clock), and a fencing number
      // that rises with every new holder. A row, not GET_LOCK: locks are per server, rows replicate,
      // and writes to one row conflict on every node of Galera or Group Replication.
      `CREATE TABLE relay_lease (
        id TINYINT UNSIGNED NOT NULL,
        holder VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        fence BIGINT UNSIGNED NOT NULL,
        expires_at DATETIME(3) NOT NULL,
        PRIMARY KEY (id)
      ) ENGINE=InnoDB`,
      "INSERT INTO relay_lease (id, holder, fence, expires_at) VALUES (1, '', 0, '2000-01-01 00:00:00')",
    ],
  },
];
