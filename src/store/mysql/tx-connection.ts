import type { PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";

type Result = RowDataPacket[] | ResultSetHeader;

/**
 * One transaction's statements on one connection (opened with
 * multipleStatements), in as few round trips as the write's logic allows:
 * each round trip costs both processes a loopback send and a wake-up (a
 * third of the daemon's CPU per create, profiled). Statements whose outcome
 * nothing waits for (START TRANSACTION, lock-only inserts, writes without a
 * result) are held and sent in front of the next statement that returns
 * something, or of COMMIT, in order. A held statement that fails fails the
 * transaction there: MySQL stops a batch at its first error, so nothing after
 * it runs, COMMIT included.
 */
export class TxConnection {
  private held = ["START TRANSACTION"];
  /** A round trip completed: the transaction is open on the server. */
  begun = false;
  /** Something was sent: ROLLBACK is due on failure. */
  sent = false;

  constructor(private readonly conn: PoolConnection) {}

  hold(sql: string, params: readonly unknown[]): void {
    this.held.push(this.conn.format(sql, params));
  }

  async run<T extends Result>(sql: string, params: readonly unknown[] = []): Promise<T> {
    const statements = [...this.held, this.conn.format(sql, params)];
    this.held = [];
    this.sent = true;
    const [results] = await this.conn.query(statements.join(";\n"));
    this.begun = true;
    return (statements.length === 1 ? results : (results as Result[]).at(-1)) as T;
  }

  async commit(): Promise<void> {
    await this.run("COMMIT");
  }

  async rollback(): Promise<void> {
    this.held = [];
    if (this.sent) await this.conn.query("ROLLBACK");
  }
}
