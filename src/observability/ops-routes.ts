import type { Redis } from "ioredis";
import type { OutboxRelay } from "../sync/relay.js";
import { sendJson } from "../server/json-response.js";
import type { PlainRoute } from "../server/listener.js";
import type { OutboxStore } from "../store/store.js";
import type { Metrics } from "./metrics.js";

export interface OpsDeps {
  store: OutboxStore;
  redis: Redis;
  relay: OutboxRelay;
  metrics: Metrics;
  readyMaxLagMs: number;
}

/**
 * Unauthenticated operational endpoints, for probes and scrapers:
 * /healthz (the process answers), /readyz (store, Redis and lag), /metrics.
 * Returns false for any other path.
 */
export function createOpsRoutes(deps: OpsDeps): PlainRoute {
  return async (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    switch (path) {
      case "/healthz":
        sendJson(req, res, 200, { status: "ok" });
        return true;
      case "/readyz": {
        const report = await readiness(deps);
        sendJson(req, res, report.ready ? 200 : 503, report);
        return true;
      }
      case "/metrics": {
        await updateOutboxGauges(deps).catch(() => undefined);
        const body = await deps.metrics.registry.metrics();
        res.writeHead(200, { "content-type": deps.metrics.registry.contentType });
        res.end(body);
        return true;
      }
      default:
        return false;
    }
  };
}

async function readiness({ store, redis, relay, readyMaxLagMs }: OpsDeps) {
  const [storeState, redisUp] = await Promise.all([
    store.outboxStats().then(
      (stats) => ({ ok: true as const, stats }),
      (err: unknown) => ({ ok: false as const, error: (err as Error).message }),
    ),
    redis.ping().then(
      () => true,
      () => false,
    ),
  ]);
  const lagging = storeState.ok && storeState.stats.oldestAgeMs !== null && storeState.stats.oldestAgeMs > readyMaxLagMs;
  return {
    ready: storeState.ok && !lagging,
    store: storeState.ok ? "ok" : `unavailable: ${storeState.error}`,
    redis: redisUp ? "ok" : "unreachable: routes are not being distributed; changes wait in the outbox",
    relay: relay.role,
    outbox: storeState.ok ? { depth: storeState.stats.depth, oldest_age_ms: storeState.stats.oldestAgeMs === null ? null : Math.round(storeState.stats.oldestAgeMs) } : null,
    max_lag_ms: readyMaxLagMs,
  };
}

async function updateOutboxGauges({ store, metrics }: OpsDeps): Promise<void> {
  const stats = await store.outboxStats();
  metrics.outboxDepth.set(stats.depth);
  metrics.outboxOldestAge.set((stats.oldestAgeMs ?? 0) / 1000);
}
