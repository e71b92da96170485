import { createConnection, type Connection, type Pool, type RowDataPacket } from "mysql2/promise";
import { rowToRoute, SCAN_ROUTES, toCertificateChange, type CertificateOutboxRow, type MappingRow } from "../sql-shared.js";
import type { CertificateChange, CertificateRow, OutboxStats, RelayLease, RouteChange, RouteRow } from "../store.js";

// GET_LOCK names are server-wide; scoping them by database lets several
// dynroute databases share one server. Names may be at most 64 characters.
export const lockName = (purpose: string) => `CONCAT('dynroute.${purpose}.', LEFT(SHA1(DATABASE()), 16))`;

export function drainOutbox(pool: Pool, limit: number, apply: (changes: RouteChange[]) => Promise<void>): Promise<number> {
  return drainRows(pool, "outbox", "id, domain, backends, created_at", limit, (rows) =>
    apply(
      rows.map((r) => ({
        domain: r.domain,
        revision: BigInt(r.id),
        backends: r.backends === null ? null : JSON.parse(r.backends),
        committedAt: r.created_at,
      })),
    ),
  );
}

export function drainCertificateOutbox(pool: Pool, limit: number, apply: (changes: CertificateChange[]) => Promise<void>): Promise<number> {
  return drainRows(pool, "certificate_outbox", "id, name, chain_pem, sealed_key", limit, (rows) => apply(rows.map((r) => toCertificateChange(r as CertificateOutboxRow))));
}

/** In one transaction: lock up to `limit` of a table's oldest rows (skipping rows another relay holds), apply them, delete them. */
async function drainRows(pool: Pool, table: string, columns: string, limit: number, apply: (rows: RowDataPacket[]) => Promise<void>): Promise<number> {
  const conn = await pool.getConnection();
  try {
    // READ COMMITTED: lock only the rows read, no gap locks that would block writers.
    await conn.query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    await conn.beginTransaction();
    try {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT ${columns} FROM ${table} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, [limit]);
      if (rows.length > 0) {
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

/** GET_LOCK on a connection of its own: the lock dies with the connection, so a dead daemon never blocks the next. */
export async function tryAcquireRelayLease(url: string): Promise<RelayLease | undefined> {
  const conn = await createConnection({ uri: url, connectTimeout: 3000, enableKeepAlive: true });
  conn.on("error", () => undefined); // a dead connection is noticed by held()
  try {
    const [[row]] = await conn.query<RowDataPacket[]>(`SELECT GET_LOCK(${lockName("relay")}, 0) AS got`);
    if (row?.got === 1) return new MysqlRelayLease(conn);
  } catch (err) {
    conn.destroy();
    throw err;
  }
  await conn.end().catch(() => conn.destroy());
  return undefined;
}

class MysqlRelayLease implements RelayLease {
  private lost = false;
  constructor(private readonly conn: Connection) {}

  async held(): Promise<boolean> {
    if (this.lost) return false;
    try {
      const [[row]] = await this.conn.query<RowDataPacket[]>(`SELECT IS_USED_LOCK(${lockName("relay")}) = CONNECTION_ID() AS mine`);
      this.lost = row?.mine !== 1;
    } catch {
      this.lost = true;
    }
    if (this.lost) this.conn.destroy();
    return !this.lost;
  }

  async release(): Promise<void> {
    if (this.lost) return;
    this.lost = true;
    await this.conn.end().catch(() => this.conn.destroy());
  }
}
