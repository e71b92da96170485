import type { PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";

type Result = RowDataPacket[] | ResultSetHeader;

interface Statement {
  sql: string;
  /** Set for a statement whose result someone waits for. */
  waiter?: { resolve: (r: Result) => void; reject: (err: unknown) => void };
  /** What a failure of its round trip means when this statement is the one that can cause it (else the error as it is). */
  explain?: (err: unknown) => unknown;
}

/**
 * One transaction's statements on one connection (opened with
 * multipleStatements), in as few round trips as the write's logic allows:
 * each round trip costs both processes a loopback send and a wake-up.
 * Statements are sent in the order they were issued. Those whose outcome
 * nothing waits for (START TRANSACTION, lock-only inserts, writes without a
 * result) are held and go in front of the next statement that returns
 * something, or of COMMIT; statements issued in the same tick (Promise.all)
 * go together. A statement that fails fails every waiter of its round trip
 * alike (with the error as `explain` puts it), and the transaction there:
 * MySQL stops a batch at its first error, so nothing after it runs, COMMIT
 * included.
 */
export class TxConnection {
  private statements: Statement[] = [{ sql: "START TRANSACTION" }];
  private flushDue = false;
  /** A round trip completed: the transaction is open on the server. */
  begun = false;
  /** Something was sent: ROLLBACK is due on failure. */
  sent = false;
  /** The error of the first round trip that failed, as the server gave it. */
  failure: unknown;

  /**
   * `schedule` decides when held statements go: by default at the end of the
   * current tick; a group of writes (see WriteGroups) waits for the next turn
   * of the event loop, so the statements of all its writes go together.
   */
  constructor(
    private readonly conn: PoolConnection,
    private readonly schedule: (send: () => void) => void = queueMicrotask,
  ) {}

  hold(sql: string, params: readonly unknown[]): void {
    this.statements.push({ sql: this.conn.format(sql, params) });
  }

  run<T extends Result>(sql: string, params: readonly unknown[] = [], explain?: (err: unknown) => unknown): Promise<T> {
    return new Promise<Result>((resolve, reject) => {
      this.statements.push({ sql: this.conn.format(sql, params), waiter: { resolve, reject }, ...(explain && { explain }) });
      if (!this.flushDue) {
        this.flushDue = true;
        this.schedule(() => void this.flush());
      }
    }) as Promise<T>;
  }

  commit(): Promise<void> {
    return this.run("COMMIT").then(() => undefined);
  }

  async rollback(): Promise<void> {
    this.statements = [];
    if (this.sent) await this.conn.query("ROLLBACK");
  }

  private async flush(): Promise<void> {
    const batch = this.statements;
    this.statements = [];
    this.flushDue = false;
    this.sent = true;
    try {
      const [results] = await this.conn.query(batch.map((s) => s.sql).join(";\n"));
      this.begun = true;
      const each = (batch.length === 1 ? [results] : results) as Result[];
      batch.forEach((s, i) => s.waiter?.resolve(each[i]!));
    } catch (err) {
      this.failure ??= err;
      const reason = batch.reduce((e, s) => s.explain?.(e) ?? e, err);
      for (const s of batch) s.waiter?.reject(reason);
    }
  }
}
