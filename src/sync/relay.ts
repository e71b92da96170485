import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { CommittedChanges, OutboxStore, RelayLease, RouteChange } from "../store/store.js";
import type { CertificateSync } from "./certificate-sync.js";
import type { Reconciler } from "./reconciler.js";
import type { RouteWriter } from "./route-writer.js";

export interface RelayOptions {
  /** Outbox rows per transaction and Redis pipeline. */
  batchSize: number;
  /** How often to look for other replicas' commits (and, as standby, for the lease). */
  pollMs: number;
  /** Full reconciliation period; 0 turns the periodic run off. */
  reconcileIntervalMs: number;
  /** Upper bound of the back-off after failures. */
  maxBackoffMs: number;
  /** How long the lease outlives its holder's last renewal (a standby takes over after that). */
  leaseTtlMs: number;
}

export type RelayRole = "leader" | "standby" | "stopped";

/**
 * Applies the outbox to Redis. One relay across all replicas holds the lease
 * and drains; the others stand by and take over when it is released or
 * expires (its holder died or lost the database). Every batch checks the
 * lease in its own transaction, so a relay that lost it applies nothing more.
 * The leader applies a local commit's route changes at once and drains
 * their outbox rows at the next poll (see committed); it polls for other
 * replicas' commits.
 * Redis unreachable: the transaction rolls back, the backlog stays in MySQL,
 * and the relay backs off and retries. Redis emptied (sentinel missing or a
 * new run_id): full reconciliation, draining the outbox between its batches
 * so that changes do not wait for it.
 */
export class OutboxRelay {
  private lease: RelayLease | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private nextReconcileAt = 0;
  private nextSentinelCheckAt = 0;
  private reconcileRequested: string | undefined;
  /**
   * Revisions applied on commit whose outbox rows are not drained yet (→ when
   * noted): the drain deletes those rows without applying them again. Only a
   * saving: a row whose entry is gone (pruned, or the drain read it first) is
   * applied again, a no-op at the same revision.
   */
  private readonly appliedOnCommit = new Map<bigint, number>();

  constructor(
    private readonly store: OutboxStore,
    private readonly writer: RouteWriter,
    private readonly reconciler: Reconciler,
    private readonly certificates: CertificateSync,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly opts: RelayOptions,
  ) {}

  /** Leader only while the lease is surely held (it may lapse while the database is unreachable). */
  get role(): RelayRole {
    if (this.stopped) return "stopped";
    return this.lease?.held() ? "leader" : "standby";
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * A local write committed. Its route changes go to Redis now, without the
   * drain's round trips to the database (under load its transactions queue
   * behind the API's writes), but only while this relay surely holds the
   * lease (held() keeps a margin before its expiry), so no other relay applies
   * meanwhile. Versioned writes keep this safe in any order with the drain and
   * a reconciliation, as for any replay. The outbox rows stay the durable
   * record, deleted by the next poll's drain (one batch rather than a
   * transaction per commit) once this apply succeeded; anything not applied
   * here, and a certificate change, wake the drain at once.
   */
  committed = ({ routes, certificates }: CommittedChanges): void => {
    const direct = routes.length > 0 && !this.stopped && this.lease?.held() === true && this.writer.ready;
    if (certificates || !direct) this.wake();
    if (!direct) return;
    this.writer.apply(routes).then(
      () => {
        const now = Date.now();
        for (const c of routes) this.appliedOnCommit.set(c.revision, now);
        this.applied(routes, now);
      },
      (err: Error) => {
        this.logger.debug({ err: err.message }, "apply on commit failed; the drain applies it");
        this.wake();
      },
    );
  };

  /** Drain now instead of at the next poll. */
  wake = (): void => {
    this.woken = true;
    this.wakeUp?.();
  };

  /** Ask the leader for a full reconciliation at its next turn. */
  requestReconcile(reason: string): void {
    this.reconcileRequested = reason;
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    await this.lease?.release();
    this.lease = undefined;
    this.metrics.relayLeader.set(0);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!(await this.holdLease())) {
          await this.sleep(this.opts.pollMs);
          continue;
        }
        // Not connected (yet, or again): nothing to try; the client logs reachability itself.
        if (!this.writer.ready) {
          this.nextSentinelCheckAt = 0; // connected again: to the same server, or another
          await this.sleep(this.opts.pollMs, false);
          continue;
        }
        const reason = await this.reconcileReason();
        if (reason) {
          await this.reconcile(reason);
          // Cleared only once done: a failed run is retried for the same reason.
          if (this.reconcileRequested === reason) this.reconcileRequested = undefined;
        }
        await this.drainAll();
        while (!this.stopped && (await this.certificates.drain(this.opts.batchSize, this.lease)) === this.opts.batchSize);
        failures = 0;
        await this.sleep(this.opts.pollMs);
      } catch (err) {
        failures++;
        this.nextSentinelCheckAt = 0;
        this.metrics.relayErrors.inc();
        const backoff = Math.min(this.opts.maxBackoffMs, 50 * 2 ** Math.min(failures, 10));
        const delay = Math.round(backoff / 2 + (Math.random() * backoff) / 2);
        this.logger.warn({ err: (err as Error).message, failures, retryInMs: delay }, "relay iteration failed");
        await this.sleep(delay, false);
      }
    }
  }

  private async holdLease(): Promise<boolean> {
    if (this.lease?.held()) return true;
    if (this.lease) {
      this.lease = undefined;
      this.metrics.relayLeader.set(0); // now, not after the next attempt (which fails while the database is away)
      this.logger.warn("relay lease lost");
    }
    this.lease = await this.store.tryAcquireRelayLease(this.opts.leaseTtlMs);
    this.metrics.relayLeader.set(this.lease ? 1 : 0);
    if (!this.lease) return false;
    this.logger.info("relay lease acquired; this daemon applies the outbox");
    this.reconcileRequested ??= "lease acquired";
    return true;
  }

  private async reconcileReason(): Promise<string | undefined> {
    if (this.reconcileRequested) return this.reconcileRequested;
    // Once a poll interval, not on every wake after a commit: it costs a round trip (and an INFO).
    if (Date.now() >= this.nextSentinelCheckAt) {
      const sentinel = await this.writer.sentinel();
      if (sentinel !== "intact") return sentinel === "missing" ? "redis lost its data" : "redis restarted";
      this.nextSentinelCheckAt = Date.now() + this.opts.pollMs;
    }
    if (this.opts.reconcileIntervalMs > 0 && Date.now() >= this.nextReconcileAt) return "periodic";
    return undefined;
  }

  private async reconcile(reason: string): Promise<void> {
    await this.writer.setSentinel();
    // The backlog first (after a failover, the writes made while there was no master), then the run.
    await this.drainAll();
    await this.reconciler.run(reason, this.drainAll);
    this.nextReconcileAt = Date.now() + this.opts.reconcileIntervalMs;
  }

  /** Drains until a batch comes back short (the outbox is empty as far as this relay can see). */
  private drainAll = async (): Promise<void> => {
    while (!this.stopped && (await this.drainBatch()) === this.opts.batchSize);
  };

  private drainBatch(): Promise<number> {
    return this.store.drainOutbox(this.opts.batchSize, async (changes) => {
      const pending = changes.filter((c) => !this.appliedOnCommit.delete(c.revision));
      await this.writer.apply(pending);
      this.applied(pending, Date.now());
      // Entries (oldest first) whose rows an earlier drain took: one that read them before their apply here finished.
      const stale = Date.now() - 10 * this.opts.pollMs;
      for (const [revision, at] of this.appliedOnCommit) {
        if (at >= stale) break;
        this.appliedOnCommit.delete(revision);
      }
    }, this.lease);
  }

  private applied(changes: readonly RouteChange[], now: number): void {
    for (const c of changes) if (c.committedAt) this.metrics.applyLag.observe(Math.max(0, now - c.committedAt.getTime()) / 1000);
    this.metrics.appliedChanges.inc(changes.length);
  }

  private sleep(ms: number, wakeable = true): Promise<void> {
    if (wakeable && this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        if (wakeable || this.stopped) {
          this.woken = false;
          done();
        }
      };
    });
  }
}
