import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createPool, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from "mysql2/promise";
import type { Logger } from "pino";
import { createAllIn, createIn, deleteCertificateIn, deleteIn, dryRunResult, putCertificateIn, updateIn, type MappingTx } from "../mapping-writes.js";
import {
  ACME_COLUMNS,
  ACME_DUE,
  acmeValues,
  rowToAcme,
  type AcmeRow,
  CERTIFICATE_COLUMNS,
  LIST_CERTIFICATES,
  CERTIFICATE_SUMMARY,
  EARLIEST_EXPIRY,
  PRUNE_ACME,
  rowToCertificate,
  rowsToDue,
  type CertificateRow as CertificateSqlRow,
} from "../sql-shared.js";
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
  type CertificateRow,
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
import { noChanges, notingOutbox } from "../noted-outbox.js";
import { TurnBatch, type BatchedCall } from "../turn-batch.js";
import { migrate } from "./migrate.js";
import * as outbox from "./mysql-outbox.js";
import { isConnectionError, isRetryable, toStoreError } from "./mysql-errors.js";
import { mysqlTx } from "./mysql-tx.js";
import { TxConnection } from "./tx-connection.js";
import { WriteGroups } from "./write-groups.js";
import {
  AUDIT_COLUMNS,
  auditConditions,
  INSERT_KEY,
  KEY_COLUMNS,
  keyConditions,
  keyValues,
  LIST_TENANTS,
  listConditions,
  JOIN_ACME,
  MAPPING_COLUMNS,
  rowToView,
  SELECT_VIEW,
  type MappingViewRow,
  rowToAudit,
  rowToKey,
  rowToRecord,
  rowToTenant,
  TENANT_COLUMNS,
  type AuditRow,
  type KeyRow,
  type MappingRow,
  type TenantRow,
} from "../sql-shared.js";

const TX_ATTEMPTS = 4;
/** Names in one batched GET's SELECT: a busy pool's worth of GETs at least. */
const GETS_AT_ONCE = 64;
/** What the ASCII domain column can hold. */
const ASCII = /^[\x00-\x7f]*$/;

interface GetInput {
  tenantId: string;
  domain: string;
}

export interface MysqlStoreOptions {
  url: string;
  logger: Logger;
  poolSize?: number;
}

/** Opens a pool and starts migrating in the background; calls answer "unavailable" until that is done. */
export function createMysqlStore(opts: MysqlStoreOptions): MysqlStore {
  const pool = (connectionLimit: number, multipleStatements = false) =>
    createPool({
      uri: opts.url,
      connectionLimit,
      connectTimeout: 3000,
      enableKeepAlive: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      timezone: "Z",
      charset: "utf8mb4",
      // No stack capture per query (measured ~4% of a GET's CPU): failures become StoreErrors with their cause.
      trace: false,
      multipleStatements,
    });
  const size = opts.poolSize ?? 10;
  // Write transactions send several statements per round trip (see TxConnection), on connections of their own; the
  // relay drains one batch at a time on a connection of its own: API calls filling the pools must not delay it.
  const writePool = pool(size, true);
  // Each statement of a write reads what is committed when it runs. Under REPEATABLE READ the first plain read of a
  // transaction fixes its snapshot: a group of creates (WriteGroups) or a createMany reads claims for one name, then
  // waits for the name lock of the next, and would not see a claim committed during that wait (another tenant's
  // wildcard over the name). Locks are taken as before; the relay's drain runs READ COMMITTED too.
  // Queued ahead of anything the pool's caller sends; a connection that cannot take it is of no use.
  writePool.pool.on("connection", (conn) => conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", (err: unknown) => err && conn.destroy()));
  return new MysqlStore(pool(size), writePool, pool(1), opts);
}

export class MysqlStore implements MappingStore, CertificateStore, AcmeStore, OutboxStore, KeyStore, AuditStore, TenantStore, IdempotencyStore {
  private migrated = false;
  private closed = false;
  /** Settles once the schema is current (or the store is closed). */
  readonly ready: Promise<void>;

  private readonly logger: Logger;
  private readonly commitListeners: Array<(changes: CommittedChanges) => void> = [];
  /** Names this store's relay in relay_lease (for operators reading the row). */
  private readonly leaseHolder = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private readonly gets = new TurnBatch<GetInput, MappingView>((gets) => this.getTogether(gets));
  private readonly groups = new WriteGroups({
    alone: (write) => this.transaction(write),
    together: (body) => this.onConnection(body, setImmediate),
  });

  constructor(
    readonly pool: Pool,
    private readonly writePool: Pool,
    private readonly drainPool: Pool,
    private readonly opts: MysqlStoreOptions,
  ) {
    this.logger = opts.logger;
    this.ready = this.migrateUntilDone();
  }

  create(tenantId: string, input: MappingInput, ctx: WriteContext): Promise<MappingRecord> {
    const write = (tx: MappingTx) => createIn(tx, tenantId, input, ctx);
    // A wildcard locks its name tree exclusively: in a group, it would not wait for the names under it there.
    return input.domain.startsWith("*.") ? this.transaction(write) : this.groups.run(write);
  }

  get(tenantId: string, domain: string): Promise<MappingView> {
    return this.gets.call({ tenantId, domain });
  }

  /**
   * The GETs of one turn in one SELECT (per GETS_AT_ONCE names): under load a
   * query's round trip (a socket write, a wake-up of the server's thread) cost
   * the daemon more than everything else a GET does, and its Redis lookups
   * then leave together too. A mapping of another tenant is not found.
   */
  private getTogether(gets: BatchedCall<GetInput, MappingView>[]): void {
    for (let at = 0; at < gets.length; at += GETS_AT_ONCE) void this.getPart(gets.slice(at, at + GETS_AT_ONCE));
  }

  private async getPart(part: BatchedCall<GetInput, MappingView>[]): Promise<void> {
    try {
      const byDomain = new Map((await this.selectViews(part.map((g) => g.input.domain))).map((r) => [r.domain, r]));
      for (const { input, resolve, reject } of part) {
        const row = byDomain.get(input.domain);
        if (row && row.tenant_id === input.tenantId) resolve(rowToView(row));
        else reject(notFound(input.domain));
      }
    } catch (err) {
      for (const g of part) g.reject(err);
    }
  }

  /** The mappings of these names (of any tenant), in one SELECT. */
  private async selectViews(domains: readonly string[]): Promise<MappingViewRow[]> {
    this.assertReady();
    // A name the ASCII column cannot hold matches nothing; MariaDB would refuse to compare it ("Illegal mix of
    // collations") and fail the statement for every name in it.
    const names = [...new Set(domains.filter((d) => ASCII.test(d)))];
    if (names.length === 0) return [];
    // Padded to a power of two with its last name: a few statement shapes, each prepared once per connection.
    while ((names.length & (names.length - 1)) !== 0) names.push(names[names.length - 1]!);
    const [rows] = await this.read(() => this.pool.execute<RowDataPacket[]>(`${SELECT_VIEW} FROM mappings m ${JOIN_ACME} WHERE m.domain IN (${names.map(() => "?").join(", ")})`, names));
    return rows as MappingViewRow[];
  }

  async list(tenantId: string, q: ListQuery): Promise<ListResult> {
    const { filter, page } = listConditions(tenantId, q, "JSON_UNQUOTE(JSON_EXTRACT(labels, ?))");
    const [rows] = await this.read(() =>
      this.pool.query<RowDataPacket[]>(`${SELECT_VIEW} FROM (SELECT ${MAPPING_COLUMNS} FROM mappings WHERE ${page.where} ORDER BY id LIMIT ? OFFSET ?) m ${JOIN_ACME} ORDER BY m.id`, [
        ...page.params,
        q.limit + 1,
        q.offset,
      ]),
    );
    const result: ListResult = { records: rows.slice(0, q.limit).map((r) => rowToView(r as MappingViewRow)), hasMore: rows.length > q.limit };
    if (q.withTotal) {
      const [[count]] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM mappings WHERE ${filter.where}`, filter.params));
      result.total = Number(count?.n ?? 0);
    }
    return result;
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

  async insertKey(key: KeyRecord): Promise<void> {
    await this.read(() => this.pool.query(INSERT_KEY, keyValues(key, (d) => d)));
  }

  async findKey(id: string): Promise<KeyRecord | undefined> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`, [id]));
    return rows[0] && rowToKey(rows[0] as KeyRow);
  }

  async listKeys(q: { tenantId?: string; showRevoked: boolean }): Promise<KeyRecord[]> {
    const { where, params } = keyConditions(q);
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE ${where} ORDER BY create_time DESC, id`, params));
    return rows.map((r) => rowToKey(r as KeyRow));
  }

  async revokeKey(id: string, now: Date): Promise<KeyRecord | undefined> {
    await this.read(() => this.pool.query("UPDATE api_keys SET revoke_time = ? WHERE id = ? AND revoke_time IS NULL", [now, id]));
    return this.findKey(id);
  }

  async touchKey(id: string, now: Date): Promise<void> {
    await this.read(() => this.pool.query("UPDATE api_keys SET last_used_time = ? WHERE id = ?", [now, id]));
  }

  async listAudit(q: AuditQuery): Promise<AuditRecord[]> {
    const { where, params } = auditConditions(q);
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ${where} ORDER BY id DESC LIMIT ?`, [...params, q.limit]));
    return rows.map((r) => rowToAudit(r as AuditRow));
  }

  async pruneAudit(before: Date): Promise<number> {
    const [res] = await this.read(() => this.pool.query<ResultSetHeader>("DELETE FROM audit_events WHERE time < ?", [before]));
    return res.affectedRows;
  }

  async pruneIdempotency(before: Date): Promise<number> {
    const [res] = await this.read(() => this.pool.query<ResultSetHeader>("DELETE FROM idempotency WHERE created_at < ?", [before]));
    return res.affectedRows;
  }

  async getTenant(tenantId: string): Promise<TenantRecord> {
    const [[settings], [[count]]] = await Promise.all([
      this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE tenant_id = ?`, [tenantId])),
      this.read(() => this.pool.query<RowDataPacket[]>("SELECT COUNT(*) AS mapping_count FROM mappings WHERE tenant_id = ?", [tenantId])),
    ]);
    return rowToTenant({ tenant_id: tenantId, zones: null, mapping_quota: null, ...settings[0], mapping_count: count?.mapping_count } as TenantRow);
  }

  async putTenant(tenantId: string, settings: TenantSettings): Promise<TenantRecord> {
    await this.read(() =>
      this.pool.query("INSERT INTO tenants (tenant_id, zones, mapping_quota, update_time) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE zones = VALUES(zones), mapping_quota = VALUES(mapping_quota), update_time = VALUES(update_time)", [
        tenantId,
        JSON.stringify(settings.zones),
        settings.mappingQuota,
        new Date(),
      ]),
    );
    return this.getTenant(tenantId);
  }

  async listTenants(): Promise<TenantRecord[]> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(LIST_TENANTS));
    return rows.map((r) => rowToTenant(r as TenantRow));
  }

  async scanMappings(afterId: bigint, limit: number): Promise<MappingRecord[]> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE id > ? ORDER BY id LIMIT ?`, [afterId.toString(), limit]));
    return rows.map((r) => rowToRecord(r as MappingRow));
  }

  putCertificate(tenantId: string, input: CertificateInput): Promise<CertificateRecord> {
    return this.transaction((tx) => putCertificateIn(tx, tenantId, input));
  }

  async getCertificate(tenantId: string, name: string): Promise<CertificateRecord> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE name = ? AND tenant_id = ?`, [name, tenantId]));
    if (!rows[0]) throw certificateNotFound(name);
    return rowToCertificate(rows[0] as CertificateSqlRow);
  }

  async listCertificates(tenantId: string, afterName: string, limit: number): Promise<CertificateRecord[]> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(LIST_CERTIFICATES, [tenantId, afterName, limit]));
    return rows.map((r) => rowToCertificate(r as CertificateSqlRow));
  }

  deleteCertificate(tenantId: string, name: string): Promise<void> {
    return this.transaction((tx) => deleteCertificateIn(tx, tenantId, name));
  }

  drainCertificateOutbox(limit: number, apply: (changes: CertificateChange[]) => Promise<void>, lease?: RelayLease): Promise<number> {
    this.assertReady();
    return outbox.drainCertificateOutbox(this.drainPool, limit, apply, this.ownLease(lease)).catch(toStoreError);
  }

  scanCertificates(afterId: bigint, limit: number): Promise<CertificateRow[]> {
    return this.read(() => outbox.scanCertificates(this.pool, afterId, limit));
  }

  async acmeDue(defaultAutomatic: boolean, now: Date, limit: number): Promise<AcmeDue[]> {
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(ACME_DUE, [defaultAutomatic ? 1 : 0, now, limit]));
    return rowsToDue(rows);
  }

  async putAcmeState(state: AcmeState): Promise<void> {
    await this.read(() =>
      this.pool.query(
        `INSERT INTO acme_states (${ACME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE tenant_id = VALUES(tenant_id), state = VALUES(state), reason = VALUES(reason), expire_time = VALUES(expire_time), fingerprint = VALUES(fingerprint), next_attempt_time = VALUES(next_attempt_time), failures = VALUES(failures)`,
        [...acmeValues(state, (d) => d)],
      ),
    );
  }

  async acmeStates(names: readonly string[]): Promise<Map<string, AcmeState>> {
    if (names.length === 0) return new Map();
    const [rows] = await this.read(() => this.pool.query<RowDataPacket[]>(`SELECT ${ACME_COLUMNS} FROM acme_states WHERE name IN (?)`, [names]));
    return new Map(rows.map((r) => [r.name as string, rowToAcme(r as AcmeRow)]));
  }

  async pruneAcmeStates(): Promise<number> {
    const [res] = await this.read(() => this.pool.query<ResultSetHeader>(PRUNE_ACME));
    return res.affectedRows;
  }

  async certificateSummary(): Promise<{ byState: Record<string, number>; earliestExpiry: Date | null }> {
    const [[states], [[expiry]]] = await Promise.all([
      this.read(() => this.pool.query<RowDataPacket[]>(CERTIFICATE_SUMMARY)),
      this.read(() => this.pool.query<RowDataPacket[]>(EARLIEST_EXPIRY)),
    ]);
    return { byState: Object.fromEntries(states.map((r) => [r.state, Number(r.n)])), earliestExpiry: expiry?.earliest ?? null };
  }

  certifiedNames(names: readonly string[]): Promise<Set<string>> {
    return this.read(() => outbox.certifiedNames(this.pool, names));
  }

  drainOutbox(limit: number, apply: (changes: RouteChange[]) => Promise<void>, lease?: RelayLease): Promise<number> {
    this.assertReady();
    return outbox.drainOutbox(this.drainPool, limit, apply, this.ownLease(lease)).catch(toStoreError);
  }

  private ownLease(lease: RelayLease | undefined): outbox.MysqlRelayLease | undefined {
    if (lease && !(lease instanceof outbox.MysqlRelayLease)) throw new TypeError("not a lease of this store");
    return lease;
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

  tryAcquireRelayLease(ttlMs: number): Promise<RelayLease | undefined> {
    this.assertReady();
    return outbox.tryAcquireRelayLease(this.pool, this.opts.url, this.leaseHolder, ttlMs).catch(toStoreError);
  }

  onCommit(listener: (changes: CommittedChanges) => void): void {
    this.commitListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ready;
    await Promise.all([this.pool.end(), this.writePool.end(), this.drainPool.end()]);
  }

  private assertReady(): void {
    // The reason (e.g. "Unknown database 'x'") is logged by migrateUntilDone; callers are not told about the server's setup.
    if (!this.migrated) throw new StoreError("unavailable", "the database is not ready yet; retry later");
  }

  private transaction<T>(fn: (tx: MappingTx) => Promise<T>): Promise<T> {
    return this.onConnection((_, newTx) => fn(newTx()));
  }

  /**
   * Runs fn in one transaction on a write connection (see TxConnection for
   * `schedule`): again from the start when it lost a deadlock, or when the
   * pooled connection was dead before anything was sent (as after a database
   * restart). `newTx` gives the write statements on that connection, noting
   * the route changes they append for the commit listeners.
   */
  private async onConnection<T>(fn: (conn: TxConnection, newTx: () => MappingTx) => Promise<T>, schedule?: (send: () => void) => void): Promise<T> {
    this.assertReady();
    for (let attempt = 1; ; attempt++) {
      let conn: PoolConnection | undefined;
      let tx: TxConnection | undefined;
      try {
        conn = await this.writePool.getConnection();
        const open = (tx = new TxConnection(conn, schedule));
        const written = noChanges();
        const result = await fn(open, () => notingOutbox(mysqlTx(open), written));
        await open.commit();
        for (const listener of this.commitListeners) listener(written);
        return result;
      } catch (err) {
        const retry = attempt < TX_ATTEMPTS && (isRetryable(err) || (!tx?.begun && isConnectionError(err)));
        if (tx && !isConnectionError(err)) await tx.rollback().catch(() => undefined);
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
        this.logger.warn({ err: (err as Error).message || String(err), retryInMs: delayMs }, "database not ready");
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, 5000);
      }
    }
  }
}
