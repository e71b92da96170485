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
];
