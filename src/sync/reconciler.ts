import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";
import type { OutboxStore } from "../store/store.js";
import { routeKey, type RouteWriter } from "./route-writer.js";

const SCAN_BATCH = 5000;

/**
 * Makes Redis match MySQL: pushes every mapping through the same versioned
 * apply as the relay (a newer revision in Redis is never overwritten), then
 * tombstones Redis routes whose domain MySQL no longer has. Streams in
 * batches, so memory stays flat at any size. Safe to run on any replica,
 * concurrently with the relay.
 */
export class Reconciler {
  constructor(
    private readonly store: OutboxStore,
    private readonly writer: RouteWriter,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  async run(reason: string): Promise<{ pushed: number; updated: number; retired: number; ms: number }> {
    const started = performance.now();
    this.logger.info({ reason }, "reconciliation started");
    let pushed = 0;
    let updated = 0;
    // The next batch is read from the store while Redis applies this one.
    let next = this.store.scanRoutes(0n, SCAN_BATCH);
    for (;;) {
      const rows = await next;
      if (rows.length === 0) break;
      next = this.store.scanRoutes(rows[rows.length - 1]!.id, SCAN_BATCH);
      next.catch(() => undefined); // awaited next turn; a failure of this turn's apply must not leave it unhandled
      updated += await this.writer.apply(rows);
      pushed += rows.length;
    }
    const pushMs = Math.round(performance.now() - started);
    const retired = await this.retireOrphans();
    const ms = Math.round(performance.now() - started);
    this.metrics.reconciliations.inc({ reason });
    this.metrics.reconcileDuration.observe(ms / 1000);
    this.logger.info({ reason, pushed, updated, retired, ms, pushMs, retireMs: ms - pushMs }, "reconciliation done");
    return { pushed, updated, retired, ms };
  }

  private async retireOrphans(): Promise<number> {
    const { redis, layout } = this.writer;
    const keyPrefix = routeKey(layout, "");
    let retired = 0;
    let cursor = "0";
    do {
      const [nextCursor, keys] = await redis.scan(cursor, "MATCH", `${escapeGlob(keyPrefix)}*`, "COUNT", SCAN_BATCH);
      cursor = nextCursor;
      if (keys.length === 0) continue;
      // Most keys are mapped: ask the store first, and Redis only about the rest.
      const domains = keys.map((key) => key.slice(keyPrefix.length));
      const mapped = await this.store.mappedDomains(domains);
      const orphans = domains.filter((d) => !mapped.has(d));
      if (orphans.length === 0) continue;
      const pipeline = redis.pipeline();
      for (const domain of orphans) pipeline.hmget(keyPrefix + domain, "rev", "deleted");
      const states = (await pipeline.exec()) ?? [];
      const live = new Map<string, string>();
      orphans.forEach((domain, i) => {
        const [err, value] = states[i] ?? [];
        const [rev, deleted] = (value as Array<string | null> | undefined) ?? [];
        if (!err && rev && !deleted) live.set(domain, rev);
      });
      // Asked again after reading the revisions: a domain created meanwhile is mapped now, or its
      // newer revision makes the conditional retire a no-op. Either way it stays.
      for (const domain of await this.store.mappedDomains([...live.keys()])) live.delete(domain);
      retired += await this.writer.retire(live);
    } while (cursor !== "0");
    return retired;
  }
}

const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, "\\$&");
