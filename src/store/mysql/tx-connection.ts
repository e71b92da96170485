import type { PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";

type Result = RowDataPacket[] | ResultSetHeader;

/**
 * Statements of one kind that a batch may run as one: the parts held in a
 * batch become one statement (or several, each within the server's packet
 * limit), at the place of the first. For statements whose order among the
 * statements held around them does not matter (see TxConnection.merge).
 */
export interface Merge {
  /** One statement for these parts (each the parameters of one), formatted with `format`. */
  build(parts: readonly (readonly unknown[])[], format: (sql: string, params: readonly unknown[]) => string): string;
}

interface Merged {
  merge: Merge;
  parts: (readonly unknown[])[];
}

interface Statement {
  sql: string;
  /** Set for merged statements: their parts, built into sql when the batch is sent. */
  merged?: Merged;
  /** Set for a statement whose result someone waits for. */
  waiter?: { resolve: (r: Result) => void; reject: (err: unknown) => void };
  /** What a failure of its round trip means when this statement is the one that can cause it (else the error as it is). */
  explain?: (err: unknown) => unknown;
}

/**
 * One transaction's statements on one connection (opened with
 * multipleStatements), in as few round trips as the write's logic allows:
 * each round trip costs both processes a loopback send and a wake-up.
 * Statements are sent in the order they were issued (merged ones at the
 * place of their first part, see merge). Those whose outcome nothing waits
 * for (START TRANSACTION, lock-only inserts, writes without a result) are
 * held and go in front of the next statement that returns something, or of
 * COMMIT; statements issued in the same tick (Promise.all) go together. A statement that fails fails every waiter of its round trip
 * alike (with the error as `explain` puts it), and the transaction there:
 * MySQL stops a batch at its first error, so nothing after it runs, COMMIT
 * included. A batch longer than the server takes in one packet
 * (max_allowed_packet: it drops the connection, and the client cannot tell
 * whether a COMMIT in it ran) goes in as many round trips as it needs, one
 * after another, stopping at the first that fails.
 */
export class TxConnection {
  private statements: Statement[] = [{ sql: "START TRANSACTION" }];
  /** The locks taken (see lock), by statement: the first one's answer, or HELD. */
  private locks = new Map<string, Promise<Result> | typeof HELD>();
  /** The merged statements of the batch being formed, by kind. */
  private merging = new Map<Merge, Statement>();
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

  /**
   * Like run, for a lock this transaction keeps until it ends, read where
   * nothing in the transaction changes what it reads: the statement goes once
   * (the first time it is issued), and each later issue gets its answer (as
   * when several writes of a group lock the same tenant). `answer` false:
   * held, as with hold.
   */
  lock(sql: string, params: readonly unknown[], answer: false): void;
  lock<T extends Result>(sql: string, params: readonly unknown[], answer: true): Promise<T>;
  lock<T extends Result>(sql: string, params: readonly unknown[], answer: boolean): Promise<T> | void {
    const formatted = this.conn.format(sql, params);
    const earlier = this.locks.get(formatted);
    if (earlier) return answer ? (earlier as Promise<T>) : undefined;
    const first = answer ? this.send1(formatted) : (this.statements.push({ sql: formatted }), HELD);
    this.locks.set(formatted, first);
    return answer ? (first as Promise<T>) : undefined;
  }

  /**
   * Holds a part of a merged statement: it joins the batch's statement of the
   * same kind, wherever that was held, so it may run before statements held
   * ahead of it. Only for writes nothing else in the transaction reads or
   * orders by (one statement's failure fails the batch, as held ones do).
   */
  merge(merge: Merge, params: readonly unknown[]): void {
    const statement = this.merging.get(merge);
    if (statement) return void statement.merged!.parts.push(params);
    const first: Statement = { sql: "", merged: { merge, parts: [params] } };
    this.merging.set(merge, first);
    this.statements.push(first);
  }

  run<T extends Result>(sql: string, params: readonly unknown[] = [], explain?: (err: unknown) => unknown): Promise<T> {
    return this.send1(this.conn.format(sql, params), explain) as Promise<T>;
  }

  private send1(sql: string, explain?: (err: unknown) => unknown): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.statements.push({ sql, waiter: { resolve, reject }, ...(explain && { explain }) });
      if (!this.flushDue) {
        this.flushDue = true;
        this.schedule(() => void this.flush());
      }
    });
  }

  commit(): Promise<void> {
    return this.run("COMMIT").then(() => undefined);
  }

  async rollback(): Promise<void> {
    this.statements = [];
    this.merging.clear();
    // After the parts of a batch still on their way, which would otherwise follow it.
    await this.sending;
    if (this.sent) await this.conn.query("ROLLBACK");
  }

  private flush(): void {
    const batch = this.statements;
    this.statements = [];
    this.merging.clear();
    this.flushDue = false;
    this.sent = true;
    this.sending = this.sending.then(() => this.send(batch));
  }

  private async send(held: Statement[]): Promise<void> {
    const sizeOf = (sql: string) => Buffer.byteLength(sql) + SEPARATOR.length;
    const format = (sql: string, params: readonly unknown[]) => this.conn.format(sql, params as unknown[]);
    const whole = held.map((s) => (s.merged ? { ...s, sql: s.merged.merge.build(s.merged.parts, format) } : s));
    const total = whole.reduce((a, s) => a + sizeOf(s.sql), 0);
    const limit = total <= MIN_PACKET - PACKET_MARGIN ? total : await packetLimit(this.conn).catch((err: unknown) => err);
    const batch = typeof limit === "number" && total > limit ? whole.flatMap((s, i) => (held[i]!.merged ? splitMerged(held[i]!.merged!, limit, format) : [s])) : whole;
    const bytes = batch.map((s) => sizeOf(s.sql));
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

/** A merged statement as statements that each fit in `limit` bytes (a part that does not fit alone goes alone, to fail as it would unmerged). */
function splitMerged({ merge, parts }: Merged, limit: number, format: (sql: string, params: readonly unknown[]) => string): Statement[] {
  const statements: Statement[] = [];
  let chunk: (readonly unknown[])[] = [];
  for (const part of parts) {
    if (chunk.length > 0 && Buffer.byteLength(merge.build([...chunk, part], format)) + SEPARATOR.length > limit) {
      statements.push({ sql: merge.build(chunk, format) });
      chunk = [];
    }
    chunk.push(part);
  }
  statements.push({ sql: merge.build(chunk, format) });
  return statements;
}

/** A lock statement sent without an answer (see TxConnection.lock). */
const HELD = Symbol("held");

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
