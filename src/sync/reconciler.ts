import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { BackendPolicy } from "../policy/backend-policy.js";
import type { OutboxStore } from "../store/store.js";
import type { CertificateSync } from "./certificate-sync.js";
import type { RouteWriter } from "./route-writer.js";

const SCAN_BATCH = 5000;

/**
 * Makes Redis match MySQL: pushes every mapping through the same versioned
 * apply as the relay (a newer revision in Redis is never overwritten), then
 * tombstones Redis routes whose domain MySQL no longer has, and drops what
 * derives from routes that are not live (wildcard index entries, and in the
 * compatibility layout `frontend:` sets, e.g. an older system's). Streams in
 * batches, so memory stays flat at any size. Each run also publishes the
 * backend destination policy, so routers get it back after Redis lost it,
 * and reconciles certificates alike (see CertificateSync).
 * Safe to run on any replica, concurrently with the relay.
 */
export class Reconciler {
  constructor(
    private readonly store: OutboxStore,
    private readonly writer: RouteWriter,
    private readonly policy: BackendPolicy,
    private readonly certificates: CertificateSync,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /**
   * `betweenBatches` runs after each batch pushed: the relay drains the outbox
   * there, so changes keep reaching Redis during a long run (after a failover,
   * at millions of routes) instead of waiting for its end.
   */
  async run(reason: string, betweenBatches?: () => Promise<void>): Promise<{ pushed: number; updated: number; retired: number; pruned: number; ms: number }> {
    const started = performance.now();
    this.logger.info({ reason }, "reconciliation started");
    if (await this.writer.writePolicy(this.policy)) this.logger.info({ rules: this.policy.rules.length }, "backend policy published to routers");
    const stamp = `${Date.now().toString(36)}.${randomBytes(4).toString("hex")}`;
    let pushed = 0;
    let updated = 0;
    // The next batch is read from the store while Redis applies this one.
    let next = this.store.scanRoutes(0n, SCAN_BATCH);
    for (;;) {
      const rows = await next;
      if (rows.length === 0) break;
      next = this.store.scanRoutes(rows[rows.length - 1]!.id, SCAN_BATCH);
      next.catch(() => undefined); // awaited next turn; a failure of this turn's apply must not leave it unhandled
      updated += await this.writer.apply(rows, stamp);
      pushed += rows.length;
      await betweenBatches?.();
    }
    const pushMs = Math.round(performance.now() - started);
    const retired = await this.retireOrphans(stamp);
    const retireMs = Math.round(performance.now() - started) - pushMs;
    const pruned = await this.pruneDerived();
    const certificates = await this.certificates.reconcile(stamp);
    const ms = Math.round(performance.now() - started);
    this.metrics.reconciliations.inc({ reason });
    this.metrics.reconcileDuration.observe(ms / 1000);
    this.logger.info({ reason, pushed, updated, retired, pruned, certificates, ms, pushMs, retireMs }, "reconciliation done");
    return { pushed, updated, retired, pruned, ms };
  }

  /**
   * Live routes this run did not stamp are routes of domains the store did
   * not have when it was read. Their revisions are read first, then the store
   * is asked again: a domain created meanwhile is mapped now (or has a newer
   * revision, which the conditional retire leaves alone).
   */
  private async retireOrphans(stamp: string): Promise<number> {
    let retired = 0;
    for await (const unseen of this.writer.unseenRoutes(stamp)) {
      for (const domain of await this.store.mappedDomains([...unseen.keys()])) unseen.delete(domain);
      retired += await this.writer.retire(unseen);
    }
    return retired;
  }

  /** Wildcard index entries and (compat) frontend sets whose route is not live go. */
  private async pruneDerived(): Promise<number> {
    let pruned = 0;
    for await (const domains of this.writer.derivedDomains()) pruned += await this.writer.prune(domains);
    return pruned;
  }
}
