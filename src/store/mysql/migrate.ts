import type { Pool, RowDataPacket } from "mysql2/promise";
import type { Logger } from "pino";
import { migrations } from "./migrations.js";

const LOCK_TIMEOUT_S = 60;
// GET_LOCK names are server-wide; scoping them by database lets several
// dynroute databases share one server. Names may be at most 64 characters.
const LOCK_NAME = "CONCAT('dynroute.migrate.', LEFT(SHA1(DATABASE()), 16))";

/**
 * Applies the migrations this database lacks. The named lock serialises
 * replicas that start at the same moment on one server: the second one waits,
 * then finds nothing left to do. (A lock is per server: on a multi-primary
 * cluster, start the first replica alone when a release adds a migration.)
 */
export async function migrate(pool: Pool, logger: Logger): Promise<void> {
  const conn = await pool.getConnection();
  try {
    const [[lock]] = await conn.query<RowDataPacket[]>(`SELECT GET_LOCK(${LOCK_NAME}, ?) AS got`, [LOCK_TIMEOUT_S]);
    if (lock?.got !== 1) throw new Error(`could not take the migration lock within ${LOCK_TIMEOUT_S}s`);
    try {
      await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        applied_at DATETIME(3) NOT NULL
      ) ENGINE=InnoDB`);
      const [rows] = await conn.query<RowDataPacket[]>("SELECT version FROM schema_migrations");
      const applied = new Set(rows.map((r) => Number(r.version)));
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        // DDL commits implicitly in MySQL, so each statement stands alone; the
        // version row is written last so an interrupted migration is retried.
        for (const sql of m.statements) await conn.query(sql);
        await conn.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [m.version, m.name, new Date()]);
        logger.info({ version: m.version, migration: m.name }, "applied migration");
      }
    } finally {
      await conn.query(`SELECT RELEASE_LOCK(${LOCK_NAME})`);
    }
  } finally {
    conn.release();
  }
}
