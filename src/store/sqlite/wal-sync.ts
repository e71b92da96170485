import { closeSync, fdatasync, openSync } from "node:fs";
import { promisify } from "node:util";
import type { Database } from "better-sqlite3";

const datasync = promisify(fdatasync);

/** Commits between checkpoints: small ones, so the database file's sync (writes wait for it) stays short. */
const CHECKPOINT_EVERY = 250;

/**
 * Makes the embedded store's commits durable without blocking the event loop.
 * With synchronous=FULL SQLite fsyncs the WAL inside every COMMIT, and
 * better-sqlite3 runs that on the event loop: on this machine's disk that was
 * half the daemon's time under load and every other request waited behind it
 * (create p99 16-30× p50). Here SQLite runs with synchronous=NORMAL (commits
 * write the WAL, never sync it; consistent after a power loss, by SQLite's
 * own guarantee) and no automatic checkpoints, and this class does the syncs
 * on the thread pool:
 *  - `durable()` after a commit: one fdatasync of the WAL covers every commit
 *    made before it started, so concurrent writes share it (group commit). A
 *    write is acknowledged only after it: what FULL promised, still true.
 *  - `checkpoint()` every CHECKPOINT_EVERY commits, as NORMAL's checkpoint
 *    orders it: the WAL synced first, frames copied into the database file
 *    (synchronous=OFF for that one statement, so SQLite itself does not sync
 *    on the event loop), then the database file synced, all before the next
 *    write may start reusing the WAL from its beginning. The caller holds the
 *    store's queue for it.
 */
export class WalSync {
  private walFd: number | undefined;
  private readonly dbFd: number;
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private commits = 0;

  constructor(
    private readonly db: Database,
    private readonly file: string,
  ) {
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0");
    // Read-only and never closed while SQLite has the file open: closing any descriptor of a file drops the
    // process's POSIX locks on it, SQLite's exclusive lock included.
    this.dbFd = openSync(file, "r");
  }

  /** Resolves once every commit made before the call is on disk. */
  durable(): Promise<void> {
    if (!this.inFlight) {
      this.inFlight = this.syncWal().finally(() => (this.inFlight = undefined));
      return this.inFlight;
    }
    // A sync already running may have started before this caller's commit: one more after it serves every such caller.
    this.queued ??= this.inFlight.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.durable();
    });
    return this.queued;
  }

  /** Counts a commit; true when a checkpoint is due. */
  committed(): boolean {
    return ++this.commits % CHECKPOINT_EVERY === 0;
  }

  /** Moves the WAL into the database file durably; no write may start until it resolves. */
  async checkpoint(): Promise<void> {
    await this.durable();
    this.db.pragma("synchronous = OFF");
    try {
      this.db.pragma("wal_checkpoint(PASSIVE)");
    } finally {
      this.db.pragma("synchronous = NORMAL");
    }
    await datasync(this.dbFd);
  }

  /** After the database is closed (its own close checkpoints, syncs and removes the WAL). */
  close(): void {
    if (this.walFd !== undefined) closeSync(this.walFd);
    closeSync(this.dbFd);
  }

  private async syncWal(): Promise<void> {
    // Opened at the first commit: SQLite creates the WAL with its first write.
    this.walFd ??= openSync(`${this.file}-wal`, "r");
    await datasync(this.walFd);
  }
}
