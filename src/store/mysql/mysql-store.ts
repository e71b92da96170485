import { createPool, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from "mysql2/promise";
import type { Logger } from "pino";
import {
  checkRevision,
  notFound,
  StoreError,
  type ListQuery,
  type ListResult,
  type MappingInput,
  type MappingRecord,
  type MappingStore,
  type OutboxStats,
  type OutboxStore,
  type RelayLease,
  type RouteChange,
  type RouteRow,
} from "../store.js";
import { migrate } from "./migrate.js";
import * as outbox from "./mysql-outbox.js";
import { isConnectionError, isDuplicate, isRetryable, toStoreError } from "./mysql-errors.js";

const COLUMNS = "id, tenant_id, domain, backends, labels, revision, create_time, update_time";
const TX_ATTEMPTS = 4;

export interface MysqlStoreOptions {
  url: string;
  logger: Logger;
  poolSize?: number;
}

/** Opens a pool and starts migrating in the background; calls answer "unavailable" until that is done. */
export function createMysqlStore(opts: MysqlStoreOptions): MysqlStore {
  const pool = createPool({
    uri: opts.url,
    connectionLimit: opts.poolSize ?? 10,
    connectTimeout: 3000,
    enableKeepAlive: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: "Z",
    charset: "utf8mb4",
    // No stack capture per query (measured ~4% of a GET's CPU): failures become StoreErrors with their cause.
    trace: false,
  });
  return new MysqlStore(pool, opts);
}

export class MysqlStore implements MappingStore, OutboxStore {
  private migrated = false;
  private notReadyReason = "migrations have not run yet";
  private closed = false;
  /** Settles once the schema is current (or the store is closed). */
  readonly ready: Promise<void>;

  private readonly logger: Logger;
  private readonly commitListeners: Array<() => void> = [];

  constructor(
    readonly pool: Pool,
    private readonly opts: MysqlStoreOptions,
  ) {
    this.logger = opts.logger;
    this.ready = this.migrateUntilDone();
  }

  async create(tenantId: string, input: MappingInput): Promise<MappingRecord> {
    return this.transaction(async (conn) => {
      const now = new Date();
      let inserted: ResultSetHeader;
      try {
        [inserted] = await conn.query<ResultSetHeader>(
          "INSERT INTO mappings (tenant_id, domain, backends, labels, revision, create_time, update_time) VALUES (?, ?, ?, ?, 0, ?, ?)",
          [tenantId, input.domain, JSON.stringify(input.backends), JSON.stringify(input.labels), now, now],
        );
      } catch (err) {
        // Never say which tenant holds the domain.
        if (isDuplicate(err)) throw new StoreError("already_exists", `domain ${input.domain} is already mapped`);
        throw err;
      }
      const id = BigInt(inserted.insertId);
      const revision = await appendOutbox(conn, input.domain, input.backends, now);
      await conn.query("UPDATE mappings SET revision = ? WHERE id = ?", [revision.toString(), id.toString()]);
      return { id, tenantId, ...input, createTime: now, updateTime: now, revision };
    });
  }

  async get(tenantId: string, domain: string): Promise<MappingRecord> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM mappings WHERE domain = ? AND tenant_id = ?`, [domain, tenantId]));
    const row = rows[0];
    if (!row) throw notFound(domain);
    return toRecord(row);
  }

  async list(tenantId: string, q: ListQuery): Promise<ListResult> {
    const filters = ["tenant_id = ?"];
    const params: unknown[] = [tenantId];
    if (q.domainSuffix !== undefined) {
      // Normalised domains hold no LIKE metacharacters ('%', '_').
      filters.push("(domain = ? OR domain LIKE ?)");
      params.push(q.domainSuffix, `%.${q.domainSuffix}`);
    }
    for (const [key, value] of q.labels) {
      filters.push("JSON_UNQUOTE(JSON_EXTRACT(labels, ?)) = ?");
      params.push(`$."${key}"`, value);
    }
    const pageFilters = q.afterId === undefined ? filters : [...filters, "id > ?"];
    const pageParams = q.afterId === undefined ? params : [...params, q.afterId.toString()];
    const [rows] = await this.read(() =>
      this.pool.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM mappings WHERE ${pageFilters.join(" AND ")} ORDER BY id LIMIT ? OFFSET ?`, [
        ...pageParams,
        q.limit + 1,
        q.offset,
      ]),
    );
    const result: ListResult = { records: rows.slice(0, q.limit).map(toRecord), hasMore: rows.length > q.limit };
    if (q.withTotal) {
      const [[count]] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM mappings WHERE ${filters.join(" AND ")}`, params));
      result.total = Number(count?.n ?? 0);
    }
    return result;
  }

  async update(
    tenantId: string,
    domain: string,
    change: (current: MappingRecord) => MappingInput,
    expectedRevision?: bigint,
  ): Promise<MappingRecord> {
    return this.transaction(async (conn) => {
      const current = await lockOwned(conn, tenantId, domain);
      checkRevision(current, expectedRevision);
      const next = change(current);
      const now = new Date();
      try {
        await conn.query("UPDATE mappings SET domain = ?, backends = ?, labels = ?, update_time = ? WHERE id = ?", [
          next.domain,
          JSON.stringify(next.backends),
          JSON.stringify(next.labels),
          now,
          current.id.toString(),
        ]);
      } catch (err) {
        if (isDuplicate(err)) throw new StoreError("already_exists", `domain ${next.domain} is already mapped`);
        throw err;
      }
      // A rename is a removal of the old name plus an upsert of the new one.
      if (next.domain !== current.domain) await appendOutbox(conn, current.domain, null, now);
      const revision = await appendOutbox(conn, next.domain, next.backends, now);
      await conn.query("UPDATE mappings SET revision = ? WHERE id = ?", [revision.toString(), current.id.toString()]);
      return { ...current, ...next, updateTime: now, revision };
    });
  }

  async delete(tenantId: string, domain: string, expectedRevision?: bigint): Promise<void> {
    await this.transaction(async (conn) => {
      const current = await lockOwned(conn, tenantId, domain);
      checkRevision(current, expectedRevision);
      await conn.query("DELETE FROM mappings WHERE id = ?", [current.id.toString()]);
      await appendOutbox(conn, domain, null, new Date());
    });
  }

  drainOutbox(limit: number, apply: (changes: RouteChange[]) => Promise<void>): Promise<number> {
    this.assertReady();
    return outbox.drainOutbox(this.pool, limit, apply).catch(toStoreError);
  }

  outboxStats(): Promise<OutboxStats> {
    return this.read(() => outbox.outboxStats(this.pool));
  }

  scanRoutes(afterId: bigint, limit: number): Promise<RouteRow[]> {
    return this.read(() => outbox.scanRoutes(this.pool, afterId, limit));
  }

  mappedDomains(domains: readonly string[]): Promise<Set<string>> {
    return this.read(() => outbox.mappedDomains(this.pool, domains));
  }

  tryAcquireRelayLease(): Promise<RelayLease | undefined> {
    this.assertReady();
    return outbox.tryAcquireRelayLease(this.opts.url).catch(toStoreError);
  }

  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ready;
    await this.pool.end();
  }

  private assertReady(): void {
    if (!this.migrated) throw new StoreError("unavailable", `the database is not ready: ${this.notReadyReason}`);
  }

  /**
   * Runs fn in one transaction: again from the start when it lost a deadlock,
   * or when the pooled connection was dead before anything was sent (as after
   * a database restart).
   */
  private async transaction<T>(fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    this.assertReady();
    for (let attempt = 1; ; attempt++) {
      let conn: PoolConnection | undefined;
      let begun = false;
      try {
        conn = await this.pool.getConnection();
        await conn.beginTransaction();
        begun = true;
        const result = await fn(conn);
        await conn.commit();
        for (const listener of this.commitListeners) listener();
        return result;
      } catch (err) {
        const retry = attempt < TX_ATTEMPTS && (isRetryable(err) || (!begun && isConnectionError(err)));
        if (conn && begun && !isConnectionError(err)) await conn.rollback().catch(() => undefined);
        if (conn && isConnectionError(err)) {
          conn.destroy();
          conn = undefined;
        }
        if (retry) continue;
        return toStoreError(err);
      } finally {
        conn?.release();
      }
    }
  }

  /** A read; run again when a pooled connection turns out to be dead. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    this.assertReady();
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt < TX_ATTEMPTS && isConnectionError(err)) continue;
        return toStoreError(err);
      }
    }
  }

  private async migrateUntilDone(): Promise<void> {
    let delayMs = 100;
    while (!this.closed) {
      try {
        await migrate(this.pool, this.logger);
        this.migrated = true;
        return;
      } catch (err) {
        this.notReadyReason = (err as Error).message || String(err);
        this.logger.warn({ err: this.notReadyReason, retryInMs: delayMs }, "database not ready");
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, 5000);
      }
    }
  }
}

/** Locks the mapping's row; another tenant's mapping is indistinguishable from none. */
async function lockOwned(conn: PoolConnection, tenantId: string, domain: string): Promise<MappingRecord> {
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM mappings WHERE domain = ? FOR UPDATE`, [domain]);
  const row = rows[0];
  if (!row || row.tenant_id !== tenantId) throw notFound(domain);
  return toRecord(row);
}

/** Appends the full new state of one domain (null backends: removed); returns its id, the new revision. */
async function appendOutbox(conn: PoolConnection, domain: string, backends: string[] | null, now: Date): Promise<bigint> {
  const [res] = await conn.query<ResultSetHeader>("INSERT INTO outbox (domain, op, backends, created_at) VALUES (?, ?, ?, ?)", [
    domain,
    backends ? "upsert" : "delete",
    backends ? JSON.stringify(backends) : null,
    now,
  ]);
  return BigInt(res.insertId);
}

function toRecord(row: RowDataPacket): MappingRecord {
  return {
    id: BigInt(row.id),
    tenantId: row.tenant_id,
    domain: row.domain,
    backends: JSON.parse(row.backends),
    labels: JSON.parse(row.labels),
    createTime: row.create_time,
    updateTime: row.update_time,
    revision: BigInt(row.revision),
  };
}
