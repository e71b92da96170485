import { closeSync, fdatasync, openSync } from "node:fs";
import { promisify } from "node:util";
import type { Database } from "better-sqlite3";
import { StoreError } from "../store.js";

/** Makes what was written to a file durable, off the event loop (fdatasync on the thread pool). */
export type FileSync = (fd: number) => Promise<void>;
export const datasync: FileSync = promisify(fdatasync);

/** Writes between checkpoints: small ones, so the database file's sync (writes wait for it) stays short. */
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
 *  - `committed(writes)` right after each commit, on the event loop, counts
 *    it (and the writes it carried, towards the next checkpoint).
 *  - `durable()` resolves once every commit counted before the call is on
 *    disk: one fdatasync of the WAL covers every commit made before it
 *    started, so concurrent writes share it (group commit); with nothing
 *    counted since the last sync it resolves at once.
 *  - `checkpoint()` every CHECKPOINT_EVERY writes, as NORMAL's checkpoint
 *    orders it: the WAL synced first, frames copied into the database file
 *    (synchronous=OFF for that one statement, so SQLite itself does not sync
 *    on the event loop), then the database file synced, all before the next
 *    write may start reusing the WAL from its beginning. The caller holds the
 *    store's queue for it.
 * A failed sync is final (`failure`): after one, Linux may report later syncs
 * of the same pages as successful although they were dropped, so no write
 * may be acknowledged or published again until a restart reads the file anew.
 */
export class WalSync {
  private walFd: number | undefined;
  private readonly dbFd: number;
  private inFlight: Promise<void> | undefined;
  /** The commits the sync in flight covers. */
  private inFlightThrough = 0;
  private queued: Promise<void> | undefined;
  /** From 1: what an earlier process committed may not be on disk (it may have died before its sync), so the first durable() syncs. */
  private commits = 1;
  /** Commits known to be on disk (counted before the last successful sync started). */
  private synced = 0;
  private writesSinceCheckpoint = 0;
  /** Set by the first failed sync; see the class comment. */
  failure: StoreError | undefined;

  constructor(
    private readonly db: Database,
    private readonly file: string,
    private readonly sync: FileSync = datasync,
  ) {
    db.pragma("synchronous = NORMAL");
    db.pragma("wal_autocheckpoint = 0");
    // Read-only and never closed while SQLite has the file open: closing any descriptor of a file drops the
    // process's POSIX locks on it, SQLite's exclusive lock included.
    this.dbFd = openSync(file, "r");
  }

  /** Counts a commit of `writes` writes (call it before anything else can run); true when a checkpoint is due. */
  committed(writes = 1): boolean {
    this.commits++;
    this.writesSinceCheckpoint += writes;
    if (this.writesSinceCheckpoint < CHECKPOINT_EVERY) return false;
    this.writesSinceCheckpoint = 0;
    return true;
  }

  /** Resolves once every commit counted before the call is on disk. */
  durable(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.synced === this.commits) return Promise.resolve();
    if (this.inFlight && this.inFlightThrough === this.commits) return this.inFlight;
    if (!this.inFlight) {
      const through = (this.inFlightThrough = this.commits);
      this.inFlight = this.guard(this.syncWal())
        .then(() => void (this.synced = Math.max(this.synced, through)))
        .finally(() => (this.inFlight = undefined));
      return this.inFlight;
    }
    // A sync already running may have started before this caller's commit: one more after it serves every such caller.
    this.queued ??= this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.durable();
      });
    return this.queued;
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
    await this.guard(this.sync(this.dbFd));
  }

  /** After the database is closed (its own close checkpoints, syncs and removes the WAL); waits for a sync under way. */
  async close(): Promise<void> {
    this.synced = this.commits;
    await this.inFlight?.catch(() => undefined);
    if (this.walFd !== undefined) closeSync(this.walFd);
    closeSync(this.dbFd);
  }

  private async syncWal(): Promise<void> {
    // Opened at the first sync: SQLite creates the WAL with its first write.
    this.walFd ??= openSync(`${this.file}-wal`, "r");
    await this.sync(this.walFd);
  }

  private guard(sync: Promise<void>): Promise<void> {
    return sync.catch((err: unknown) => {
      this.failure ??= new StoreError("unavailable", `the embedded database could not be made durable (${(err as { code?: string }).code ?? err}); restart the daemon`, { cause: err });
      throw this.failure;
    });
  }
}
