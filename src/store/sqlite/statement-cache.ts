import type { Database, Statement } from "better-sqlite3";

/** How many statements of input-shaped SQL stay prepared (most recently used first). */
const SHAPED_SLOTS = 64;

/**
 * Prepared statements, each prepared once: preparing costs more than running
 * most of them (about 9 µs of a create's ~90 µs in the store went to preparing
 * its claim check anew every time).
 */
export class StatementCache {
  private readonly fixedSql = new Map<string, Statement>();
  private readonly shapedSql = new Map<string, Statement>();

  constructor(private readonly db: Database) {}

  /** For SQL written in the code: a fixed set, kept for the life of the store. */
  fixed = (sql: string): Statement => {
    let stmt = this.fixedSql.get(sql);
    if (!stmt) this.fixedSql.set(sql, (stmt = this.db.prepare(sql)));
    return stmt;
  };

  /**
   * For SQL whose text follows the input (a list of placeholders, a list's
   * filters): the shapes in use repeat, but callers could make any number, so
   * only the most recently used SHAPED_SLOTS stay prepared.
   */
  shaped = (sql: string): Statement => {
    let stmt = this.shapedSql.get(sql);
    if (stmt) {
      this.shapedSql.delete(sql);
    } else {
      stmt = this.db.prepare(sql);
      if (this.shapedSql.size >= SHAPED_SLOTS) this.shapedSql.delete(this.shapedSql.keys().next().value!);
    }
    this.shapedSql.set(sql, stmt);
    return stmt;
  };
}
