import { Redis } from "ioredis";
import type { Logger } from "pino";

/**
 * A Redis client that fails fast while Redis is unreachable (no offline
 * queue), so the relay rolls back and backs off instead of hanging, and
 * reconnects by itself. Logs only when reachability changes.
 */
export function createRedis(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  });
  let up: boolean | undefined;
  redis.on("ready", () => {
    if (up !== true) logger.info("redis connected");
    up = true;
  });
  redis.on("error", (err: Error) => {
    if (up !== false) logger.warn({ err: err.message }, "redis unreachable; changes wait in the outbox");
    up = false;
  });
  return redis;
}
