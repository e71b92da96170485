import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3, { type Database } from "better-sqlite3";
import type { Logger } from "pino";
import { createAllIn, createIn, deleteIn, domainTaken, dryRunResult, updateIn, type MappingTx } from "../mapping-writes.js";
import {
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
import { listConditions, MAPPING_COLUMNS, rowToRecord, type MappingRow } from "../sql-shared.js";
import { migrateSqlite } from "./sqlite-schema.js";


export interface SqliteStoreOptions {
  /** The database file; its folder is created when missing. */
  file: string;
  logger: Logger;
}

/** Another process holds the database file: one daemon owns an embedded store. */
export class StoreOwnedError extends Error {
  override name = "StoreOwnedError";
}

/**
 * The embedded store: one SQLite file in WAL mode, owned by one daemon (an
 * exclusive lock the OS drops when the process dies, even by kill -9). Same
 * semantics as the MySQL store: every write commits the mapping and its
 * outbox rows in one transaction, and the outbox id is the revision.
 */
export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  mkdirSync(dirname(opts.file), { recursive: true });
  const db = new BetterSqlite3(opts.file, { timeout: 1000 });
  try {
    // EXCLUSIVE before WAL: no shared-memory index, and no other process may read or write.
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    // FULL: a commit is on disk before the write is acknowledged.
    db.pragma("synchronous = FULL");
    db.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") {
      throw new StoreOwnedError(`${opts.file} is in use by another dynroute process; an embedded store has one owner (set MYSQL_URL to run several daemons)`);
    }
    throw err;
  }
  migrateSqlite(db, opts.logger);
  return new SqliteStore(db);
}

export class SqliteStore implements MappingStore, OutboxStore {
  /** Opened and migrated synchronously; kept for symmetry with the MySQL store. */
  readonly ready = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly commitListeners: Array<() => void> = [];
  private closed = false;

  private readonly prepare: (sql: string) => BetterSqlite3.Statement;

  constructor(readonly db: Database) {
    this.prepare = statementCache(db);
  }

  create(tenantId: string, input: MappingInput): Promise<MappingRecord> {
    return this.transaction((tx) => createIn(tx, tenantId, input));
  }

  get(tenantId: string, domain: string): Promise<MappingRecord> {
    return this.serial(() => {
      const row = this.prepare(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE domain = ? AND tenant_id = ?`).get(domain, tenantId) as MappingRow | undefined;
      if (!row) throw notFound(domain);
      return rowToRecord(row);
    });
  }

  list(tenantId: string, q: ListQuery): Promise<ListResult> {
    return this.serial(() => {
      const { filter, page } = listConditions(tenantId, q, "json_extract(labels, ?)");
      const rows = this.db.prepare(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE ${page.where} ORDER BY id LIMIT ? OFFSET ?`).all(...page.params, q.limit + 1, q.offset) as MappingRow[];
      const result: ListResult = { records: rows.slice(0, q.limit).map(rowToRecord), hasMore: rows.length > q.limit };
      if (q.withTotal) result.total = (this.db.prepare(`SELECT COUNT(*) AS n FROM mappings WHERE ${filter.where}`).get(...filter.params) as { n: number }).n;
      return result;
    });
  }

  update(tenantId: string, domain: string, change: (current: MappingRecord) => MappingInput, expectedRevision?: bigint): Promise<MappingRecord> {
    return this.transaction((tx) => updateIn(tx, tenantId, domain, change, expectedRevision));
  }

  delete(tenantId: string, domain: string, expectedRevision?: bigint): Promise<void> {
    return this.transaction((tx) => deleteIn(tx, tenantId, domain, expectedRevision));
  }

  createMany(tenantId: string, inputs: readonly MappingInput[], { dryRun }: { dryRun: boolean }): Promise<MappingRecord[]> {
    return this.transaction((tx) => createAllIn(tx, tenantId, inputs, dryRun)).catch(dryRunResult);
  }

  scanMappings(afterId: bigint, limit: number): Promise<MappingRecord[]> {
    return this.serial(() => (this.prepare(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE id > ? ORDER BY id LIMIT ?`).all(afterId, limit) as MappingRow[]).map(rowToRecord));
  }

  /**
   * This daemon is the only relay (it owns the file), so no row locks are
   * needed; the store is not held while Redis applies, so a slow Redis never
   * blocks the API. Rows are deleted only after `apply` resolves.
   */
  async drainOutbox(limit: number, apply: (changes: RouteChange[]) => Promise<void>): Promise<number> {
    const rows = await this.serial(() => this.prepare("SELECT id, domain, backends, created_at FROM outbox ORDER BY id LIMIT ?").all(limit) as OutboxRow[]);
    if (rows.length === 0) return 0;
    await apply(rows.map((r) => ({ domain: r.domain, revision: BigInt(r.id), backends: r.backends === null ? null : JSON.parse(r.backends), committedAt: new Date(r.created_at) })));
    await this.serial(() => this.db.prepare(`DELETE FROM outbox WHERE id IN (${rows.map(() => "?").join(",")})`).run(...rows.map((r) => r.id)));
    return rows.length;
  }

  outboxStats(): Promise<OutboxStats> {
    return this.serial(() => {
      const row = this.prepare("SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM outbox").get() as { depth: number; oldest: number | null };
      return { depth: row.depth, oldestAgeMs: row.oldest === null ? null : Math.max(0, Date.now() - row.oldest) };
    });
  }

  scanRoutes(afterId: bigint, limit: number): Promise<RouteRow[]> {
    return this.serial(() =>
      (this.prepare("SELECT id, domain, backends, revision FROM mappings WHERE id > ? ORDER BY id LIMIT ?").all(afterId, limit) as MappingRow[]).map((r) => ({
        id: BigInt(r.id),
        domain: r.domain,
        backends: JSON.parse(r.backends),
        revision: BigInt(r.revision),
      })),
    );
  }

  mappedDomains(domains: readonly string[]): Promise<Set<string>> {
    if (domains.length === 0) return Promise.resolve(new Set());
    return this.serial(
      () => new Set((this.db.prepare(`SELECT domain FROM mappings WHERE domain IN (${domains.map(() => "?").join(",")})`).all(...domains) as MappingRow[]).map((r) => r.domain)),
    );
  }

  /** The daemon that owns the file is the relay; the lease lasts until it lets go. */
  async tryAcquireRelayLease(): Promise<RelayLease | undefined> {
    let held = !this.closed;
    return { held: async () => held && !this.closed, release: async () => void (held = false) };
  }

  onCommit(listener: () => void): void {
    this.commitListeners.push(listener);
  }

  async close(): Promise<void> {
    await this.serial(() => {
      this.closed = true;
      this.db.close();
    });
  }

  /**
   * One call at a time: statements are synchronous, but a write transaction
   * spans awaits (the shared write rules are async), and no other call may
   * see it half done.
   */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new StoreError("unavailable", "the embedded database is closed");
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run.catch(toStoreError);
  }

  private async transaction<T>(fn: (tx: MappingTx) => Promise<T>): Promise<T> {
    const result = await this.serial(async () => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const value = await fn(sqliteTx(this.prepare));
        this.db.exec("COMMIT");
        return value;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw err;
      }
    });
    for (const listener of this.commitListeners) listener();
    return result;
  }
}

/** Prepares each distinct statement once; only for fixed SQL (lists of placeholders would grow it without bound). */
function statementCache(db: Database): (sql: string) => BetterSqlite3.Statement {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return (sql) => {
    let stmt = cache.get(sql);
    if (!stmt) cache.set(sql, (stmt = db.prepare(sql)));
    return stmt;
  };
}

function sqliteTx(prepare: (sql: string) => BetterSqlite3.Statement): MappingTx {
  const unique = (domain: string, run: () => unknown) => {
    try {
      return run();
    } catch (err) {
      throw (err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE" ? domainTaken(domain) : err;
    }
  };
  return {
    async insertMapping(tenantId, input, now) {
      const res = unique(input.domain, () =>
        prepare("INSERT INTO mappings (tenant_id, domain, backends, labels, revision, create_time, update_time) VALUES (?, ?, ?, ?, 0, ?, ?)")
          .run(tenantId, input.domain, JSON.stringify(input.backends), JSON.stringify(input.labels), now.getTime(), now.getTime()),
      ) as BetterSqlite3.RunResult;
      return BigInt(res.lastInsertRowid);
    },
    async lockMapping(domain) {
      // BEGIN IMMEDIATE already holds the write lock: reading is locking.
      const row = prepare(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE domain = ?`).get(domain) as MappingRow | undefined;
      return row && rowToRecord(row);
    },
    async updateMapping(id, next, now) {
      unique(next.domain, () =>
        prepare("UPDATE mappings SET domain = ?, backends = ?, labels = ?, update_time = ? WHERE id = ?").run(next.domain, JSON.stringify(next.backends), JSON.stringify(next.labels), now.getTime(), id),
      );
    },
    async deleteMapping(id) {
      prepare("DELETE FROM mappings WHERE id = ?").run(id);
    },
    async appendOutbox(domain, backends, now) {
      const res = prepare("INSERT INTO outbox (domain, op, backends, created_at) VALUES (?, ?, ?, ?)").run(domain, backends ? "upsert" : "delete", backends ? JSON.stringify(backends) : null, now.getTime());
      return BigInt(res.lastInsertRowid);
    },
    async setRevision(id, revision) {
      prepare("UPDATE mappings SET revision = ? WHERE id = ?").run(revision, id);
    },
  };
}

interface OutboxRow {
  id: number;
  domain: string;
  backends: string | null;
  created_at: number;
}

// The file cannot be written or read now (disk full, I/O error, permissions): callers see unavailable.
const unavailable = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|PROTOCOL|NOMEM)/;

function toStoreError(err: unknown): never {
  const code = (err as { code?: string }).code;
  if (code && unavailable.test(code)) throw new StoreError("unavailable", `the embedded database cannot be used now (${code}); retry later`, { cause: err });
  throw err;
}
