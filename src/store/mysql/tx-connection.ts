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
 * included. A batch longer than the server takes in one packet
 * (max_allowed_packet: it drops the connection, and the client cannot tell
 * whether a COMMIT in it ran) goes in as many round trips as it needs, one
 * after another, stopping at the first that fails.
 */
export class TxConnection {
  private statements: Statement[] = [{ sql: "START TRANSACTION" }];
  private flushDue = false;
  /** The round trips sent so far: a batch goes after the one before it has all of its parts answered. */
  private sending: Promise<void> = Promise.resolve();
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
    // After the parts of a batch still on their way, which would otherwise follow it.
    await this.sending;
    if (this.sent) await this.conn.query("ROLLBACK");
  }

  private flush(): void {
    const batch = this.statements;
    this.statements = [];
    this.flushDue = false;
    this.sent = true;
    this.sending = this.sending.then(() => this.send(batch));
  }

  private async send(batch: Statement[]): Promise<void> {
    const bytes = batch.map((s) => Buffer.byteLength(s.sql) + SEPARATOR.length);
    const total = bytes.reduce((a, b) => a + b, 0);
    const limit = total <= MIN_PACKET - PACKET_MARGIN ? total : await packetLimit(this.conn).catch((err: unknown) => err);
    for (let start = 0; start < batch.length; ) {
      let end = start + 1;
      if (typeof limit === "number") for (let size = bytes[start]!; end < batch.length && size + bytes[end]! <= limit; end++) size += bytes[end]!;
      const part = batch.slice(start, end);
      try {
        if (typeof limit !== "number") throw limit;
        const [results] = await this.conn.query(part.map((s) => s.sql).join(SEPARATOR));
        this.begun = true;
        const each = (part.length === 1 ? [results] : results) as Result[];
        part.forEach((s, i) => s.waiter?.resolve(each[i]!));
      } catch (err) {
        this.failure ??= err;
        const reason = part.reduce((e, s) => s.explain?.(e) ?? e, err);
        // Nothing after the failed part was sent: its statements fail alike.
        for (const s of batch.slice(start)) s.waiter?.reject(reason);
        return;
      }
      start = end;
    }
  }
}

const SEPARATOR = ";\n";
/** The smallest max_allowed_packet a server can have: a batch this short needs no look-up. */
const MIN_PACKET = 1024;
/** The packet size limit of each connection (its session's, fixed when it connected), looked up once. */
const limits = new WeakMap<object, Promise<number>>();

function packetLimit(conn: PoolConnection): Promise<number> {
  let found = limits.get(conn.connection);
  if (!found) {
    found = conn.query<RowDataPacket[]>("SELECT @@max_allowed_packet AS max").then(([rows]) => Number(rows[0]!.max) - PACKET_MARGIN);
    limits.set(conn.connection, found);
    found.catch(() => limits.delete(conn.connection));
  }
  return found;
}

/** Room left in a packet for the command byte in front of the SQL. */
const PACKET_MARGIN = 64;
