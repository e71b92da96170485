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
    for (let after = 0n; ; ) {
      const rows = await this.store.scanRoutes(after, SCAN_BATCH);
      if (rows.length === 0) break;
      updated += await this.writer.apply(rows);
      pushed += rows.length;
      after = rows[rows.length - 1]!.id;
    }
    const retired = await this.retireOrphans();
    const ms = Math.round(performance.now() - started);
    this.metrics.reconciliations.inc({ reason });
    this.metrics.reconcileDuration.observe(ms / 1000);
    this.logger.info({ reason, pushed, updated, retired, ms }, "reconciliation done");
    return { pushed, updated, retired, ms };
  }

  private async retireOrphans(): Promise<number> {
    const { redis, layout } = this.writer;
    const keyPrefix = routeKey(layout, "");
    let retired = 0;
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${escapeGlob(keyPrefix)}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipeline = redis.pipeline();
      for (const key of keys) pipeline.hmget(key, "rev", "deleted");
      const states = (await pipeline.exec()) ?? [];
      const live = new Map<string, string>();
      keys.forEach((key, i) => {
        const [err, value] = states[i] ?? [];
        const [rev, deleted] = (value as Array<string | null> | undefined) ?? [];
        if (!err && rev && !deleted) live.set(key.slice(keyPrefix.length), rev);
      });
      const mapped = await this.store.mappedDomains([...live.keys()]);
      for (const domain of mapped) live.delete(domain);
      retired += await this.writer.retire(live);
    } while (cursor !== "0");
    return retired;
  }
}

const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, "\\$&");
