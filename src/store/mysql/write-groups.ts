import type { MappingTx } from "../mapping-writes.js";
import { isRefused } from "./mysql-errors.js";
import type { TxConnection } from "./tx-connection.js";

type Write<T> = (tx: MappingTx) => Promise<T>;

interface Member {
  write: Write<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export interface GroupRunner {
  /** Runs a write in a transaction of its own. */
  alone<T>(write: Write<T>): Promise<T>;
  /**
   * Runs `body` in one transaction on a connection that sends each turn's statements together, and commits when it
   * resolves; `newTx` gives a write's statements on that connection.
   */
  together(body: (conn: TxConnection, newTx: () => MappingTx) => Promise<void>): Promise<void>;
}

/**
 * How many groups are in flight at once: writes arriving meanwhile wait and
 * form the next group. One: the next group forms while the database runs the
 * one before, so groups are larger and share more (paired runs at 32
 * connections: 14 creates a group, not 6, and 10-15% less CPU per create in
 * the daemon and in the server, at the same or a higher rate).
 */
const GROUPS = 1;
/** Large enough to take every write of a busy pool's worth of connections in one group. */
const MEMBERS = 64;

/**
 * Group commit: writes that arrive while groups are in flight run together
 * in one transaction on one connection, each by its own rules, sharing
 * START, COMMIT and every round trip (a loopback round trip costs both
 * processes more CPU than the statements it carries). Each write keeps its
 * own outcome:
 *
 * - A write that fails having only read and locked (a zone, another tenant's
 *   claim) fails alone; the others commit. Its locks end with the group.
 * - Anything else (a statement failed: a taken domain, a replayed
 *   idempotency key; or a write failed after writing) rolls the group back
 *   and runs every write again in a transaction of its own, where the rules
 *   decide as they always did.
 * - A write that needs its tenant's mapping count (a quota) runs alone after
 *   the group: writes of a group cannot see each other's rows until they are
 *   inserted, so counts taken side by side could overrun the quota.
 *
 * Revisions keep commit order per domain: each write's outbox row is still
 * appended after its insert took the domain's lock, and a group commits at once.
 * Each write reads claims after its locks, as alone: statements of write
 * transactions see what is committed when they run (see createMysqlStore).
 */
export class WriteGroups {
  private waiting: Member[] = [];
  private inFlight = 0;

  constructor(private readonly runner: GroupRunner) {}

  run<T>(write: Write<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ write, resolve: resolve as (value: unknown) => void, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.inFlight < GROUPS && this.waiting.length > 0) {
      const members = this.waiting.splice(0, MEMBERS);
      this.inFlight++;
      void this.runGroup(members).finally(() => {
        this.inFlight--;
        this.next();
      });
    }
  }

  private async runGroup(members: Member[]): Promise<void> {
    if (members.length === 1) return this.alone(members[0]!);
    let outcomes: PromiseSettledResult<unknown>[] = [];
    let committing = false;
    try {
      await this.runner.together(async (conn, newTx) => {
        committing = false;
        const views = members.map(() => memberTx(newTx()));
        outcomes = await Promise.allSettled(members.map((m, i) => m.write(views[i]!.tx)));
        // Retried by the runner when it is a deadlock or a connection lost before the transaction began.
        if (conn.failure !== undefined) throw conn.failure;
        if (outcomes.some((o, i) => o.status === "rejected" && views[i]!.wrote)) throw new RunAlone();
        committing = true;
      });
    } catch (err) {
      // A failed COMMIT may have committed: the writes are not run again, their callers learn of the failure. Unless
      // the server refused a statement sent ahead of it (an audit row of one write): the batch stopped there, unrun.
      if (committing && !isRefused(err)) return members.forEach((m) => m.reject(err));
      await Promise.all(members.map((m) => this.alone(m)));
      return;
    }
    await Promise.all(
      members.map((m, i) => {
        const o = outcomes[i]!;
        if (o.status === "fulfilled") return m.resolve(o.value);
        return o.reason instanceof RunAlone ? this.alone(m) : m.reject(o.reason);
      }),
    );
  }

  private alone(m: Member): Promise<void> {
    return this.runner.alone(m.write).then(m.resolve, m.reject);
  }
}

/** A write's way out of its group, to run in a transaction of its own. */
class RunAlone extends Error {}

/** Statements that only read or lock: a write that failed having issued only these leaves nothing to undo. */
const LOCKS_ONLY = new Set<keyof MappingTx>(["lockTenant", "lockNameTree", "othersClaim", "lockMapping", "claimants", "lockCertificate", "certificateNames"]);

/**
 * One write's statements within a group's transaction, noting whether it
 * wrote anything. (A name lock may leave a row in name_locks: a lock anchor
 * that no answer depends on.)
 */
function memberTx(tx: MappingTx): { tx: MappingTx; readonly wrote: boolean } {
  const member = { wrote: false, tx };
  member.tx = Object.fromEntries(
    Object.entries(tx).map(([name, statement]: [string, (...args: unknown[]) => Promise<unknown>]) => [
      name,
      name === "countMappings"
        ? () => Promise.reject(new RunAlone())
        : (...args: unknown[]) => {
            if (!LOCKS_ONLY.has(name as keyof MappingTx)) member.wrote = true;
            return statement(...args);
          },
    ]),
  ) as unknown as MappingTx;
  return member;
}
