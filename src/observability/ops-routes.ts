import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { OutboxRelay } from "../sync/relay.js";
import { sendJson } from "../server/json-response.js";
import type { PlainRoute } from "../server/listener.js";
import type { OutboxStats, OutboxStore } from "../store/store.js";
import type { Metrics } from "./metrics.js";

export interface OpsDeps {
  store: OutboxStore;
  redis: Redis;
  relay: OutboxRelay;
  metrics: Metrics;
  logger: Logger;
  readyMaxLagMs: number;
}

// Probes and scrapers are unauthenticated: however often they call, the store and Redis are asked at most this often.
const REFRESH_MS = 1000;

interface Health {
  store: { ok: true; stats: OutboxStats } | { ok: false };
  redisUp: boolean;
}

/**
 * Unauthenticated operational endpoints, for probes and scrapers:
 * /healthz (the process answers), /readyz (store, Redis and lag), /metrics.
 * Returns false for any other path.
 */
export function createOpsRoutes(deps: OpsDeps): PlainRoute {
  const health = cachedHealth(deps);
  return async (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    switch (path) {
      case "/healthz":
        sendJson(req, res, 200, { status: "ok" });
        return true;
      case "/readyz": {
        const report = readiness(await health(), deps);
        sendJson(req, res, report.ready ? 200 : 503, report);
        return true;
      }
      case "/metrics": {
        const { store } = await health();
        if (store.ok) {
          deps.metrics.outboxDepth.set(store.stats.depth);
          deps.metrics.outboxOldestAge.set((store.stats.oldestAgeMs ?? 0) / 1000);
        }
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

/** These routes in OpenAPI terms, for the daemon's document (they need no token). */
export function opsOpenApiPaths(): Record<string, Record<string, object>> {
  const json = (description: string) => ({ description, content: { "application/json": { schema: { type: "object" } } } });
  const op = (operationId: string, summary: string, responses: Record<string, object>) => ({ get: { operationId, tags: ["Operations"], summary, security: [], responses } });
  return {
    "/healthz": op("Healthz", "Liveness: the process answers.", { "200": json('{"status":"ok"}') }),
    "/readyz": op("Readyz", "Readiness: store, Redis, relay role and outbox lag, refreshed at most once a second.", {
      "200": json("Ready: the store answers and the outbox lag is under the limit."),
      "503": json("Not ready; the same report says why (database error text only in the log)."),
    }),
    "/metrics": op("Metrics", "Prometheus metrics.", { "200": { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } } }),
  };
}

/**
 * The store's and Redis' state, checked at most once per REFRESH_MS; callers
 * in between share the last (or in-flight) check. A store failure's text goes
 * to the log (once per change), never to callers: it may name databases,
 * hosts or users.
 */
function cachedHealth({ store, redis, logger }: OpsDeps): () => Promise<Health> {
  let last: { at: number; health: Promise<Health> } | undefined;
  let loggedFailure: string | undefined;
  const check = async (): Promise<Health> => {
    const [storeState, redisUp] = await Promise.all([
      store.outboxStats().then(
        (stats) => ({ ok: true as const, stats }),
        (err: unknown) => {
          const failure = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
          if (failure !== loggedFailure) logger.warn({ err }, "readiness: the store is unavailable");
          loggedFailure = failure;
          return { ok: false as const };
        },
      ),
      redis.ping().then(
        () => true,
        () => false,
      ),
    ]);
    if (storeState.ok && loggedFailure !== undefined) {
      logger.info("readiness: the store answers again");
      loggedFailure = undefined;
    }
    return { store: storeState, redisUp };
  };
  return () => {
    const now = performance.now();
    if (!last || now - last.at >= REFRESH_MS) last = { at: now, health: check() };
    return last.health;
  };
}

function readiness({ store, redisUp }: Health, { relay, readyMaxLagMs }: OpsDeps) {
  const lagging = store.ok && store.stats.oldestAgeMs !== null && store.stats.oldestAgeMs > readyMaxLagMs;
  return {
    ready: store.ok && !lagging,
    store: store.ok ? "ok" : "unavailable: see the daemon's log",
    redis: redisUp ? "ok" : "unreachable: routes are not being distributed; changes wait in the outbox",
    relay: relay.role,
    outbox: store.ok ? { depth: store.stats.depth, oldest_age_ms: store.stats.oldestAgeMs === null ? null : Math.round(store.stats.oldestAgeMs) } : null,
    max_lag_ms: readyMaxLagMs,
  };
}
