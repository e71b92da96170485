import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import { createMysqlStore } from "./mysql/mysql-store.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";
import type { AcmeStore, AuditStore, CertificateStore, IdempotencyStore, KeyStore, MappingStore, OutboxStore, TenantStore } from "./store.js";

export type Store = MappingStore & CertificateStore & AcmeStore & OutboxStore & KeyStore & AuditStore & TenantStore & IdempotencyStore & { readonly ready: Promise<void> };

/** The configured store: MySQL when MYSQL_URL is set, else the embedded SQLite file. */
export function openStore(config: Config["store"], logger: Logger): Store {
  return config.kind === "mysql" ? createMysqlStore({ url: config.url, logger }) : openSqliteStore({ file: config.file, logger });
}
