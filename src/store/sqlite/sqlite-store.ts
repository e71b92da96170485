import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3, { type Database } from "better-sqlite3";
import type { Logger } from "pino";
import { createAllIn, createIn, deleteCertificateIn, deleteIn, domainTaken, dryRunResult, putCertificateIn, updateIn, type MappingTx } from "../mapping-writes.js";
import {
  certificateNotFound,
  notFound,
  StoreError,
  type AcmeDue,
  type AcmeState,
  type AcmeStore,
  type CertificateChange,
  type CertificateInput,
  type CertificateRecord,
  type CertificateRow as CertificateScanRow,
  type CertificateStore,
  type ListQuery,
  type ListResult,
  type MappingInput,
  type MappingRecord,
  type MappingStore,
  type MappingView,
  type OutboxStats,
  type OutboxStore,
  type RelayLease,
  type CommittedChanges,
  type RouteChange,
  type RouteRow,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
  type KeyRecord,
  type KeyStore,
  type TenantRecord,
  type TenantSettings,
  type TenantStore,
  type WriteContext,
  type IdempotencyStore,
} from "../store.js";
import {
  AUDIT_COLUMNS,
  auditConditions,
  ACME_COLUMNS,
  ACME_DUE,
  acmeValues,
  rowToAcme,
  type AcmeRow,
  CERTIFICATE_SUMMARY,
  EARLIEST_EXPIRY,
  PRUNE_ACME,
  rowsToDue,
  CERTIFICATE_COLUMNS,
  LIST_CERTIFICATES,
  CERTIFICATE_INSERT_COLUMNS,
  CERTIFICATE_INSERT_VALUES,
  certificateValues,
  rowToCertificate,
  toCertificateChange,
  type CertificateOutboxRow,
  type CertificateRow,
  auditValues,
  INSERT_AUDIT,
  INSERT_IDEMPOTENCY,
  INSERT_KEY,
  INSERT_MAPPING,
  mappingValues,
  UPDATE_MAPPING,
  KEY_COLUMNS,
  keyConditions,
  keyValues,
  LIST_TENANTS,
  listConditions,
  JOIN_ACME,
  MAPPING_COLUMNS,
  rowToView,
  SELECT_VIEW,
  othersClaimQuery,
  rowToAudit,
  rowToKey,
  rowToRecord,
  rowToSettings,
  rowToTenant,
  rowToRoute,
  SCAN_ROUTES,
  SELECT_IDEMPOTENCY,
  SETTLE_IDEMPOTENCY,
  TENANT_COLUMNS,
  type AuditRow,
  type KeyRow,
  type MappingRow,
  type TenantRow,
} from "../sql-shared.js";
import { noChanges, notingOutbox } from "../noted-outbox.js";
import { migrateSqlite } from "./sqlite-schema.js";
import { StatementCache } from "./statement-cache.js";
import { TurnBatch, type BatchedCall } from "../turn-batch.js";
import { rawViews, viewRow } from "./view-rows.js";
import { WalSync, type FileSync } from "./wal-sync.js";


export interface SqliteStoreOptions {
  /** The database file; its folder is created when missing. */
  file: string;
  logger: Logger;
  /** How files are made durable (default: fdatasync on the thread pool). */
  sync?: FileSync;
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
    // FULL while migrating; then WalSync takes over (a commit is still on disk before the write is acknowledged).
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
  return new SqliteStore(db, new WalSync(db, opts.file, opts.sync));
}

export class SqliteStore implements MappingStore, CertificateStore, AcmeStore, OutboxStore, KeyStore, AuditStore, TenantStore, IdempotencyStore {
  /** Opened and migrated synchronously; kept for symmetry with the MySQL store. */
  readonly ready = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly commitListeners: Array<(changes: CommittedChanges) => void> = [];
  private closed = false;

  /** The statements of a write transaction. */
  private readonly tx: MappingTx;
  private readonly selectOneView: BetterSqlite3.Statement;
  private readonly writes = new TurnBatch<Write, unknown>((group) => void this.commitGroup(group));
  /** For SQL written in the code. */
  private readonly prepare: (sql: string) => BetterSqlite3.Statement;
  /** For SQL built from the input (lists of placeholders, a list's filters). */
  private readonly prepareShaped: (sql: string) => BetterSqlite3.Statement;

  constructor(
    readonly db: Database,
    private readonly wal: WalSync,
  ) {
    const statements = new StatementCache(db);
    this.prepare = statements.fixed;
    this.prepareShaped = statements.shaped;
    this.tx = sqliteTx(statements);
    this.selectOneView = rawViews(db.prepare(SELECT_ONE_VIEW));
  }

  create(tenantId: string, input: MappingInput, ctx: WriteContext): Promise<MappingRecord> {
    return this.transaction((tx) => createIn(tx, tenantId, input, ctx));
  }

  get(tenantId: string, domain: string): Promise<MappingView> {
    return this.serial(() => {
      const row = this.selectOneView.get(domain, tenantId) as unknown[] | undefined;
      if (!row) throw notFound(domain);
      return rowToView(viewRow(row));
    });
  }

  list(tenantId: string, q: ListQuery): Promise<ListResult> {
    return this.serial(() => {
      const { filter, page } = listConditions(tenantId, q, "json_extract(labels, ?)");
      const rows = rawViews(this.prepareShaped(`${SELECT_VIEW} FROM (SELECT ${MAPPING_COLUMNS} FROM mappings WHERE ${page.where} ORDER BY id LIMIT ? OFFSET ?) m ${JOIN_ACME} ORDER BY m.id`))
        .all(...page.params, q.limit + 1, q.offset) as unknown[][];
      const result: ListResult = { records: rows.slice(0, q.limit).map((r) => rowToView(viewRow(r))), hasMore: rows.length > q.limit };
      if (q.withTotal) result.total = (this.prepareShaped(`SELECT COUNT(*) AS n FROM mappings WHERE ${filter.where}`).get(...filter.params) as { n: number }).n;
      return result;
    });
  }

  update(tenantId: string, domain: string, change: (current: MappingRecord) => MappingInput, expectedRevision: bigint | undefined, ctx: WriteContext): Promise<MappingRecord> {
    return this.transaction((tx) => updateIn(tx, tenantId, domain, change, expectedRevision, ctx));
  }

  delete(tenantId: string, domain: string, expectedRevision: bigint | undefined, ctx: WriteContext): Promise<void> {
    return this.transaction((tx) => deleteIn(tx, tenantId, domain, expectedRevision, ctx));
  }

  createMany(tenantId: string, inputs: readonly MappingInput[], { dryRun, ctx }: { dryRun: boolean; ctx: WriteContext }): Promise<MappingRecord[]> {
    return this.transaction((tx) => createAllIn(tx, tenantId, inputs, dryRun, ctx)).catch(dryRunResult);
  }

  putCertificate(tenantId: string, input: CertificateInput): Promise<CertificateRecord> {
    return this.transaction((tx) => putCertificateIn(tx, tenantId, input));
  }

  getCertificate(tenantId: string, name: string): Promise<CertificateRecord> {
    return this.serial(() => {
      const row = this.prepare(SELECT_CERTIFICATE).get(name, tenantId) as CertificateRow | undefined;
      if (!row) throw certificateNotFound(name);
      return rowToCertificate(row);
    });
  }

  listCertificates(tenantId: string, afterName: string, limit: number): Promise<CertificateRecord[]> {
    return this.serial(() => (this.prepare(LIST_CERTIFICATES).all(tenantId, afterName, limit) as CertificateRow[]).map(rowToCertificate));
  }

  deleteCertificate(tenantId: string, name: string): Promise<void> {
    return this.transaction((tx) => deleteCertificateIn(tx, tenantId, name));
  }

  insertKey(key: KeyRecord): Promise<void> {
    return this.durably(() => void this.prepare(INSERT_KEY).run(...keyValues(key, (d) => d.getTime())));
  }

  findKey(id: string): Promise<KeyRecord | undefined> {
    return this.serial(() => {
      const row = this.prepare(SELECT_KEY).get(id) as KeyRow | undefined;
      return row && rowToKey(row);
    });
  }

  listKeys(q: { tenantId?: string; showRevoked: boolean }): Promise<KeyRecord[]> {
    const { where, params } = keyConditions(q);
    return this.serial(() => (this.prepareShaped(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE ${where} ORDER BY create_time DESC, id`).all(...params) as KeyRow[]).map(rowToKey));
  }

  async revokeKey(id: string, now: Date): Promise<KeyRecord | undefined> {
    await this.durably(() => this.prepare("UPDATE api_keys SET revoke_time = ? WHERE id = ? AND revoke_time IS NULL").run(now.getTime(), id));
    return this.findKey(id);
  }

  touchKey(id: string, now: Date): Promise<void> {
    // A last use lost with the machine is harmless: nothing waits for its sync.
    return this.mutate(() => void this.prepare("UPDATE api_keys SET last_used_time = ? WHERE id = ?").run(now.getTime(), id));
  }

  listAudit(q: AuditQuery): Promise<AuditRecord[]> {
    const { where, params } = auditConditions(q);
    return this.serial(() => (this.prepareShaped(`SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ${where} ORDER BY id DESC LIMIT ?`).all(...params, q.limit) as AuditRow[]).map(rowToAudit));
  }

  pruneAudit(before: Date): Promise<number> {
    return this.mutate(() => this.prepare("DELETE FROM audit_events WHERE time < ?").run(before.getTime()).changes);
  }

  pruneIdempotency(before: Date): Promise<number> {
    return this.mutate(() => this.prepare("DELETE FROM idempotency WHERE created_at < ?").run(before.getTime()).changes);
  }

  getTenant(tenantId: string): Promise<TenantRecord> {
    return this.serial(() => {
      const settings = this.prepare(SELECT_TENANT).get(tenantId) as TenantRow | undefined;
      const count = this.prepare("SELECT COUNT(*) AS mapping_count FROM mappings WHERE tenant_id = ?").get(tenantId) as { mapping_count: number };
      return rowToTenant({ tenant_id: tenantId, zones: null, mapping_quota: null, ...settings, mapping_count: count.mapping_count });
    });
  }

  async putTenant(tenantId: string, settings: TenantSettings): Promise<TenantRecord> {
    await this.durably(() =>
      this.prepare(
        "INSERT INTO tenants (tenant_id, zones, mapping_quota, update_time) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET zones = excluded.zones, mapping_quota = excluded.mapping_quota, update_time = excluded.update_time",
      ).run(tenantId, JSON.stringify(settings.zones), settings.mappingQuota, Date.now()),
    );
    return this.getTenant(tenantId);
  }

  listTenants(): Promise<TenantRecord[]> {
    return this.serial(() => (this.prepare(LIST_TENANTS).all() as TenantRow[]).map(rowToTenant));
  }

  scanMappings(afterId: bigint, limit: number): Promise<MappingRecord[]> {
    return this.serial(() => (this.prepare(SCAN_MAPPINGS).all(afterId, limit) as MappingRow[]).map(rowToRecord));
  }

  /**
   * This daemon is the only relay (it owns the file), so no row locks are
   * needed; the store is not held while Redis applies, so a slow Redis never
   * blocks the API. Rows are deleted only after `apply` resolves: those up to
   * the last id read, which are the rows read (the first `limit` by id), as
   * AUTOINCREMENT gives every later row a higher id than any before it.
   */
  async drainOutbox(limit: number, apply: (changes: RouteChange[]) => Promise<void>): Promise<number> {
    const rows = await this.published(() => this.prepare("SELECT id, domain, backends, created_at FROM outbox ORDER BY id LIMIT ?").all(limit) as OutboxRow[]);
    if (rows.length === 0) return 0;
    await apply(rows.map((r) => ({ domain: r.domain, revision: BigInt(r.id), backends: r.backends === null ? null : JSON.parse(r.backends), committedAt: new Date(r.created_at) })));
    await this.mutate(() => this.prepare("DELETE FROM outbox WHERE id <= ?").run(rows[rows.length - 1]!.id));
    return rows.length;
  }

  async drainCertificateOutbox(limit: number, apply: (changes: CertificateChange[]) => Promise<void>): Promise<number> {
    const rows = await this.published(() => this.prepare("SELECT id, name, chain_pem, sealed_key FROM certificate_outbox ORDER BY id LIMIT ?").all(limit) as CertificateOutboxRow[]);
    if (rows.length === 0) return 0;
    await apply(rows.map(toCertificateChange));
    await this.mutate(() => this.prepare("DELETE FROM certificate_outbox WHERE id <= ?").run(rows[rows.length - 1]!.id));
    return rows.length;
  }

  scanCertificates(afterId: bigint, limit: number): Promise<CertificateScanRow[]> {
    return this.published(() =>
      (this.prepare("SELECT id, name, chain_pem, sealed_key, revision FROM certificates WHERE id > ? ORDER BY id LIMIT ?").all(afterId, limit) as CertificateRow[]).map((r) => ({
        id: BigInt(r.id),
        name: r.name,
        revision: BigInt(r.revision),
        state: { chainPem: r.chain_pem, sealedKey: r.sealed_key },
      })),
    );
  }

  acmeDue(defaultAutomatic: boolean, now: Date, limit: number): Promise<AcmeDue[]> {
    return this.serial(() => rowsToDue(this.prepare(ACME_DUE).all(defaultAutomatic ? 1 : 0, now.getTime(), limit) as Array<Record<string, unknown>>));
  }

  putAcmeState(state: AcmeState): Promise<void> {
    return this.durably(
      () =>
        void this.prepare(
          `INSERT INTO acme_states (${ACME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET tenant_id = excluded.tenant_id, state = excluded.state, reason = excluded.reason, expire_time = excluded.expire_time, fingerprint = excluded.fingerprint, next_attempt_time = excluded.next_attempt_time, failures = excluded.failures`,
        ).run(...acmeValues(state, (d) => d.getTime())),
    );
  }

  acmeStates(names: readonly string[]): Promise<Map<string, AcmeState>> {
    if (names.length === 0) return Promise.resolve(new Map());
    return this.serial(() => {
      const rows = this.prepareShaped(`SELECT ${ACME_COLUMNS} FROM acme_states WHERE name IN (${names.map(() => "?").join(",")})`).all(...names) as AcmeRow[];
      return new Map(rows.map((r) => [r.name, rowToAcme(r)]));
    });
  }

  pruneAcmeStates(): Promise<number> {
    return this.mutate(() => this.prepare(PRUNE_ACME).run().changes);
  }

  certificateSummary(): Promise<{ byState: Record<string, number>; earliestExpiry: Date | null }> {
    return this.serial(() => {
      const byState = Object.fromEntries((this.prepare(CERTIFICATE_SUMMARY).all() as Array<{ state: string; n: number }>).map((r) => [r.state, r.n]));
      const { earliest } = this.prepare(EARLIEST_EXPIRY).get() as { earliest: number | null };
      return { byState, earliestExpiry: earliest === null ? null : new Date(earliest) };
    });
  }

  certifiedNames(names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return Promise.resolve(new Set());
    return this.published(() => new Set((this.prepareShaped(`SELECT name FROM certificates WHERE name IN (${names.map(() => "?").join(",")})`).all(...names) as CertificateRow[]).map((r) => r.name)));
  }

  outboxStats(): Promise<OutboxStats> {
    return this.serial(() => {
      const row = this.prepare("SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM outbox").get() as { depth: number; oldest: number | null };
      return { depth: row.depth, oldestAgeMs: row.oldest === null ? null : Math.max(0, Date.now() - row.oldest) };
    });
  }

  scanRoutes(afterId: bigint, limit: number): Promise<RouteRow[]> {
    return this.published(() => (this.prepare(SCAN_ROUTES).all(afterId, limit) as MappingRow[]).map(rowToRoute));
  }

  mappedDomains(domains: readonly string[]): Promise<Set<string>> {
    if (domains.length === 0) return Promise.resolve(new Set());
    return this.published(
      () => new Set((this.prepareShaped(`SELECT domain FROM mappings WHERE domain IN (${domains.map(() => "?").join(",")})`).all(...domains) as MappingRow[]).map((r) => r.domain)),
    );
  }

  /** The daemon that owns the file is the relay; the lease lasts until it lets go. */
  async tryAcquireRelayLease(): Promise<RelayLease | undefined> {
    let held = !this.closed;
    return { held: () => held && !this.closed, release: async () => void (held = false) };
  }

  onCommit(listener: (changes: CommittedChanges) => void): void {
    this.commitListeners.push(listener);
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      this.closed = true;
      this.db.close();
      await this.wal.close();
    });
  }

  /**
   * One call at a time: statements are synchronous, but a write transaction
   * spans awaits (the shared write rules are async), and no other call may
   * see it half done. Reads only: writes go through mutate (WalSync must count them).
   */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new StoreError("unavailable", "the embedded database is closed");
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run.catch(toStoreError);
  }

  /**
   * A write (every one goes through here, so WalSync counts it): refused once
   * the file could not be made durable; returns once committed, not yet durable.
   */
  private mutate<T>(fn: () => T | Promise<T>, writes = 1): Promise<T> {
    return this.serial(async () => {
      if (this.wal.failure) throw this.wal.failure;
      const value = await fn();
      // Not awaited by this write; the next calls queue behind it. One that fails is tried again at the next turn.
      if (this.wal.committed(writes)) void this.serial(() => this.wal.checkpoint()).catch(() => undefined);
      return value;
    });
  }

  /** A write acknowledged only once it is on disk; `writes`: how many writes it carries, for WalSync's count. */
  private async durably<T>(fn: () => T | Promise<T>, writes = 1): Promise<T> {
    const value = await this.mutate(fn, writes);
    await this.wal.durable();
    return value;
  }

  /**
   * A read whose rows leave for Redis: only what is on disk may, or a change
   * lost with the machine would leave its revision served, above the next write's.
   */
  private async published<T>(fn: () => T): Promise<T> {
    const rows = await this.serial(fn);
    await this.wal.durable();
    return rows;
  }

  private transaction<T>(fn: (tx: MappingTx) => Promise<T>): Promise<T> {
    return this.writes.call(fn) as Promise<T>;
  }

  /**
   * The writes asked for in one turn of the event loop, in one transaction:
   * they share its COMMIT (the WAL frames of the pages they all touch are
   * written once, the biggest part of a create's cost in the store) and its
   * sync. Each runs in a savepoint of its own, so one that fails is undone and
   * fails alone, as it would by itself; each is answered, and its changes are
   * passed on, only once the transaction is on disk.
   */
  private async commitGroup(group: readonly QueuedWrite[]): Promise<void> {
    let outcomes: WriteOutcome[];
    try {
      outcomes = await this.durably(() => this.runGroup(group), group.length);
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    // Every write answered first (their callers run later, after the listeners), so a listener cannot leave one unanswered.
    group.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) w.resolve(outcome.value);
      else w.reject(storeError(outcome.error));
    });
    for (const outcome of outcomes) if (outcome.ok) for (const listener of this.commitListeners) listener(outcome.written);
  }

  private async runGroup(group: readonly QueuedWrite[]): Promise<WriteOutcome[]> {
    const alone = group.length === 1;
    const outcomes: WriteOutcome[] = [];
    this.db.exec("BEGIN IMMEDIATE");
    try {
      for (const w of group) outcomes.push(await this.runWrite(w, alone));
      this.db.exec(outcomes.some((o) => o.ok) ? "COMMIT" : "ROLLBACK");
      return outcomes;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }

  /** One write of a group; alone it needs no savepoint, as its group commits only if it succeeded. */
  private async runWrite(w: QueuedWrite, alone: boolean): Promise<WriteOutcome> {
    const written = noChanges();
    if (!alone) this.db.exec("SAVEPOINT write");
    try {
      const value = await w.input(notingOutbox(this.tx, written));
      if (!alone) this.db.exec("RELEASE write");
      return { ok: true, value, written };
    } catch (error) {
      // After some errors (I/O, disk full) SQLite has rolled back the whole transaction, the group's other writes too: all fail.
      if (!this.db.inTransaction) throw error;
      if (!alone) this.db.exec("ROLLBACK TO write; RELEASE write");
      return { ok: false, error };
    }
  }
}

function sqliteTx({ fixed: prepare, shaped: prepareShaped }: StatementCache): MappingTx {
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
        prepare(INSERT_MAPPING).run(...mappingValues(input, now.getTime()), tenantId, now.getTime()),
      ) as BetterSqlite3.RunResult;
      return BigInt(res.lastInsertRowid);
    },
    async lockMapping(domain) {
      // BEGIN IMMEDIATE already holds the write lock: reading is locking.
      const row = prepare(LOCK_MAPPING).get(domain) as MappingRow | undefined;
      return row && rowToRecord(row);
    },
    async updateMapping(id, next, now) {
      unique(next.domain, () =>
        prepare(UPDATE_MAPPING).run(...mappingValues(next, now.getTime()), id),
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
    // BEGIN IMMEDIATE holds the only write lock: writes are serialised already.
    async lockNameTree() {},
    async othersClaim(tenantId, names, subtree) {
      const q = othersClaimQuery(tenantId, names, subtree);
      return (prepareShaped(q.sql).get(...q.params) as { domain: string } | undefined)?.domain;
    },
    async lockTenant(tenantId) {
      const row = prepare(SELECT_TENANT).get(tenantId) as TenantRow | undefined;
      return row && rowToSettings(row);
    },
    async countMappings(tenantId) {
      return (prepare("SELECT COUNT(*) AS n FROM mappings WHERE tenant_id = ?").get(tenantId) as { n: number }).n;
    },
    async appendAudit(event, ctx, now) {
      prepare(INSERT_AUDIT).run(...auditValues(event, ctx, now.getTime()));
    },
    async claimIdempotency(scope, key, fingerprint, now) {
      const earlier = prepare(SELECT_IDEMPOTENCY).get(scope, key) as { fingerprint: string; result: string | null } | undefined;
      if (!earlier) prepare(INSERT_IDEMPOTENCY).run(scope, key, fingerprint, now.getTime());
      return earlier;
    },
    async settleIdempotency(scope, key, result) {
      prepare(SETTLE_IDEMPOTENCY).run(result, scope, key);
    },
    async claimants(names) {
      if (names.length === 0) return new Map();
      const rows = prepareShaped(`SELECT domain, tenant_id FROM mappings WHERE domain IN (${names.map(() => "?").join(",")})`).all(...names) as MappingRow[];
      return new Map(rows.map((r) => [r.domain, r.tenant_id]));
    },
    async lockCertificate(name) {
      const row = prepare(LOCK_CERTIFICATE).get(name) as CertificateRow | undefined;
      return row && rowToCertificate(row);
    },
    async putCertificate(tenantId, input, now) {
      prepare(
        `INSERT INTO certificates (${CERTIFICATE_INSERT_COLUMNS}) VALUES (${CERTIFICATE_INSERT_VALUES}) ON CONFLICT (name) DO UPDATE SET tenant_id = excluded.tenant_id, chain_pem = excluded.chain_pem, sealed_key = excluded.sealed_key, dns_names = excluded.dns_names, issuer = excluded.issuer, not_before = excluded.not_before, not_after = excluded.not_after, fingerprint = excluded.fingerprint, update_time = excluded.update_time`,
      ).run(...certificateValues(tenantId, input, now.getTime(), (d) => d.getTime()));
    },
    async deleteCertificate(name) {
      prepare("DELETE FROM certificates WHERE name = ?").run(name);
    },
    async certificateNames(tenantId) {
      return (prepare("SELECT name FROM certificates WHERE tenant_id = ?").all(tenantId) as Array<{ name: string }>).map((r) => r.name);
    },
    async appendCertificateOutbox(name, state, now) {
      const res = prepare("INSERT INTO certificate_outbox (name, chain_pem, sealed_key, created_at) VALUES (?, ?, ?, ?)").run(name, state?.chainPem ?? null, state?.sealedKey ?? null, now.getTime());
      return BigInt(res.lastInsertRowid);
    },
    async setCertificateRevision(name, revision) {
      prepare("UPDATE certificates SET revision = ? WHERE name = ?").run(revision, name);
    },
  };
}

// SQL of the hot paths, built once (not per call) so their cache lookup hashes one string once.
const SELECT_ONE_VIEW = `${SELECT_VIEW} FROM mappings m ${JOIN_ACME} WHERE m.domain = ? AND m.tenant_id = ?`;
const LOCK_MAPPING = `SELECT ${MAPPING_COLUMNS} FROM mappings WHERE domain = ?`;
const SCAN_MAPPINGS = `SELECT ${MAPPING_COLUMNS} FROM mappings WHERE id > ? ORDER BY id LIMIT ?`;
const SELECT_TENANT = `SELECT ${TENANT_COLUMNS} FROM tenants WHERE tenant_id = ?`;
const SELECT_KEY = `SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`;
const SELECT_CERTIFICATE = `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE name = ? AND tenant_id = ?`;
const LOCK_CERTIFICATE = `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE name = ?`;

/** A write transaction's body; one waiting for its group is a QueuedWrite (see commitGroup). */
type Write = (tx: MappingTx) => Promise<unknown>;
type QueuedWrite = BatchedCall<Write, unknown>;

type WriteOutcome = { ok: true; value: unknown; written: CommittedChanges } | { ok: false; error: unknown };

interface OutboxRow {
  id: number;
  domain: string;
  backends: string | null;
  created_at: number;
}

// The file cannot be written or read now (disk full, I/O error, permissions): callers see unavailable.
const unavailable = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|PROTOCOL|NOMEM)/;

function storeError(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  return code && unavailable.test(code) ? new StoreError("unavailable", `the embedded database cannot be used now (${code}); retry later`, { cause: err }) : err;
}

function toStoreError(err: unknown): never {
  throw storeError(err);
}
