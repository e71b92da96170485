import { createConnection, type Connection, type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from "mysql2/promise";
import { rowToRoute, SCAN_ROUTES, toCertificateChange, type CertificateOutboxRow, type MappingRow } from "../sql-shared.js";
import type { CertificateChange, CertificateRow, OutboxStats, RelayLease, RouteChange, RouteRow } from "../store.js";

export function drainOutbox(pool: Pool, limit: number, apply: (changes: RouteChange[]) => Promise<void>, lease?: MysqlRelayLease): Promise<number> {
  return drainRows(
    pool,
    "outbox",
    "id, domain, backends, created_at",
    limit,
    (rows) =>
      apply(
        rows.map((r) => ({
          domain: r.domain,
          revision: BigInt(r.id),
          backends: r.backends === null ? null : JSON.parse(r.backends),
          committedAt: r.created_at,
        })),
      ),
    lease,
  );
}

export function drainCertificateOutbox(pool: Pool, limit: number, apply: (changes: CertificateChange[]) => Promise<void>, lease?: MysqlRelayLease): Promise<number> {
  return drainRows(pool, "certificate_outbox", "id, name, chain_pem, sealed_key", limit, (rows) => apply(rows.map((r) => toCertificateChange(r as CertificateOutboxRow))), lease);
}

/**
 * In one transaction: lock up to `limit` of a table's oldest rows (skipping rows another relay holds), apply them,
 * delete them. With `lease`, its fence is checked before applying.
 */
async function drainRows(pool: Pool, table: string, columns: string, limit: number, apply: (rows: RowDataPacket[]) => Promise<void>, lease?: MysqlRelayLease): Promise<number> {
  const conn = await pool.getConnection();
  try {
    // READ COMMITTED: lock only the rows read, no gap locks that would block writers.
    await conn.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    await conn.beginTransaction();
    try {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT ${columns} FROM ${table} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, [limit]);
      if (rows.length > 0) {
        // The fence, before applying: the lease row stays locked until the batch commits. Only
        // when there is something to apply, so that an empty turn writes nothing (no commit to sync).
        if (lease && !(await lease.renew(conn))) throw new Error("the relay lease was taken over; not applying");
        await apply(rows);
        await conn.query(`DELETE FROM ${table} WHERE id IN (?)`, [rows.map((r) => r.id)]);
      }
      await conn.commit();
      return rows.length;
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    }
  } finally {
    conn.release();
  }
}

export async function outboxStats(pool: Pool): Promise<OutboxStats> {
  const [[row]] = await pool.query<RowDataPacket[]>("SELECT COUNT(*) AS depth, TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(3)) AS age_us FROM outbox");
  return { depth: Number(row?.depth ?? 0), oldestAgeMs: row?.age_us == null ? null : Math.max(0, Number(row.age_us) / 1000) };
}

export async function scanRoutes(pool: Pool, afterId: bigint, limit: number): Promise<RouteRow[]> {
  const [rows] = await pool.query<RowDataPacket[]>(SCAN_ROUTES, [afterId.toString(), limit]);
  return rows.map((r) => rowToRoute(r as MappingRow));
}

export async function mappedDomains(pool: Pool, domains: readonly string[]): Promise<Set<string>> {
  if (domains.length === 0) return new Set();
  const [rows] = await pool.query<RowDataPacket[]>("SELECT domain FROM mappings WHERE domain IN (?)", [domains]);
  return new Set(rows.map((r) => r.domain as string));
}

export async function scanCertificates(pool: Pool, afterId: bigint, limit: number): Promise<CertificateRow[]> {
  const [rows] = await pool.query<RowDataPacket[]>("SELECT id, name, chain_pem, sealed_key, revision FROM certificates WHERE id > ? ORDER BY id LIMIT ?", [afterId.toString(), limit]);
  return rows.map((r) => ({ id: BigInt(r.id), name: r.name, revision: BigInt(r.revision), state: { chainPem: r.chain_pem, sealedKey: r.sealed_key } }));
}

export async function certifiedNames(pool: Pool, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const [rows] = await pool.query<RowDataPacket[]>("SELECT name FROM certificates WHERE name IN (?)", [names]);
  return new Set(rows.map((r) => r.name as string));
}

/**
 * The relay lease is the row of relay_lease: taken when expired (by the
 * database's clock), with a fencing number that rises with each new holder,
 * renewed by its holder every third of its time to live and by every batch it
 * drains. One row and one UPDATE, so it is single on every topology where the
 * database itself is: a primary with replicas, Group Replication, Galera (two
 * nodes taking it at once conflict on the row, and one of them fails).
 */
export async function tryAcquireRelayLease(pool: Pool, url: string, holder: string, ttlMs: number): Promise<RelayLease | undefined> {
  const sentAt = performance.now();
  // LAST_INSERT_ID(expr) hands the new fencing number back with the UPDATE's result.
  const [res] = await pool.query<ResultSetHeader>(
    "UPDATE relay_lease SET holder = ?, fence = LAST_INSERT_ID(fence + 1), expires_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND WHERE id = 1 AND expires_at <= UTC_TIMESTAMP(3)",
    [holder, ttlMs * 1000],
  );
  if (res.affectedRows !== 1) return undefined;
  return new MysqlRelayLease(pool, url, holder, BigInt(res.insertId), ttlMs, sentAt);
}

export class MysqlRelayLease implements RelayLease {
  private lost = false;
  /** Local clock: until when the database surely still has us as the holder. */
  private validUntil: number;
  private readonly heartbeat: NodeJS.Timeout;
  // Renewals run on a connection of their own: API writes filling the pool must not starve them into expiry.
  private own: Promise<Connection> | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly url: string,
    readonly holder: string,
    readonly fence: bigint,
    private readonly ttlMs: number,
    sentAt: number,
  ) {
    this.validUntil = this.deadline(sentAt);
    this.heartbeat = setInterval(() => void this.beat(), Math.max(50, Math.floor(ttlMs / 3)));
    this.heartbeat.unref();
  }

  held(): boolean {
    if (!this.lost && performance.now() >= this.validUntil) this.stop();
    return !this.lost;
  }

  /**
   * Extends the lease if it is still ours and unexpired; on `conn` inside a
   * drain transaction, this also takes the row lock, so a takeover waits for
   * the batch to commit and a fenced-out relay applies nothing.
   */
  async renew(conn: Pool | PoolConnection | Connection): Promise<boolean> {
    if (this.lost) return false;
    const sentAt = performance.now();
    const [res] = await conn.query<ResultSetHeader>(
      "UPDATE relay_lease SET expires_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND WHERE id = 1 AND holder = ? AND fence = ? AND expires_at > UTC_TIMESTAMP(3)",
      [this.ttlMs * 1000, this.holder, this.fence.toString()],
    );
    if (res.affectedRows !== 1) {
      this.stop();
      return false;
    }
    this.validUntil = Math.max(this.validUntil, this.deadline(sentAt));
    return true;
  }

  async release(): Promise<void> {
    if (this.lost) return;
    this.stop();
    await this.pool
      .query("UPDATE relay_lease SET expires_at = '2000-01-01 00:00:00' WHERE id = 1 AND holder = ? AND fence = ?", [this.holder, this.fence.toString()])
      .catch(() => undefined); // unreachable: it expires by itself
  }

  // The database's expiry counts from when it ran the statement, after sentAt; a tenth of the
  // time to live is left as a margin for clock drift between this host and the database.
  private deadline(sentAt: number): number {
    return sentAt + this.ttlMs - this.ttlMs / 10;
  }

  private async beat(): Promise<void> {
    try {
      // One listener per connection, not per beat: an error is noticed by the next query, which drops it.
      this.own ??= createConnection({ uri: this.url, connectTimeout: 3000, enableKeepAlive: true }).then((c) => c.on("error", () => undefined));
      await this.renew(await this.own);
    } catch {
      this.drop(); // a new connection next beat; the lease lapses if none works in time
    }
  }

  private drop(): void {
    const own = this.own;
    this.own = undefined;
    void own?.then((c) => c.destroy(), () => undefined);
  }

  private stop(): void {
    this.lost = true;
    clearInterval(this.heartbeat);
    this.drop();
  }
}
