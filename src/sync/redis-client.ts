import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { RedisTarget } from "../config/config.js";

/**
 * A Redis client that fails fast while Redis is unreachable (no offline
 * queue), so the relay rolls back and backs off instead of hanging, and
 * reconnects by itself. Logs only when reachability changes.
 *
 * With a Sentinel target it asks the sentinels for the master on every
 * (re)connection, checks the server it reaches is a master, and drops the
 * connection at once when a sentinel announces +switch-master or a write is
 * refused as READONLY (a demoted master), so it follows failovers; the relay
 * then sees a new run_id and reconciles.
 */
export function createRedis(target: RedisTarget, logger: Logger): Redis {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  };
  const redis =
    target.kind === "direct"
      ? new Redis(target.url, common)
      : new Redis({
          ...common,
          sentinels: target.sentinels,
          name: target.name,
          db: target.db,
          ...(target.username ? { username: target.username } : {}),
          ...(target.password ? { password: target.password } : {}),
          ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
          ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
          ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
          ...(target.sentinelTls ? { sentinelTLS: {} } : {}),
          sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
          failoverDetector: true,
          // Reconnect (through the sentinels) without resending: the relay retries the batch itself.
          reconnectOnError: (err) => err.message.startsWith("READONLY"),
        });
  let up: boolean | undefined;
  redis.on("ready", () => {
    if (up !== true) logger.info(target.kind === "sentinel" ? { master: `${redis.stream.remoteAddress}:${redis.stream.remotePort}` } : {}, "redis connected");
    up = true;
  });
  redis.on("error", (err: Error) => {
    if (up !== false) logger.warn({ err: err.message }, "redis unreachable; changes wait in the outbox");
    up = false;
  });
  return redis;
}
