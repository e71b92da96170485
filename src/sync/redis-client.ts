import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { RedisTarget } from "../config/config.js";

/**
 * The daemon's two connections to Redis: the relay's (outbox drains and
 * reconciliation) and one for everything else (the API's `live` lookups,
 * readiness, ACME challenges), so that drains never queue behind other
 * traffic. Closed together.
 */
export interface RedisClients {
  relay: Redis;
  api: Redis;
  close(): void;
}

/** Bound on each API call to Redis: a read answers "not live" rather than waiting through a failover. */
const API_COMMAND_TIMEOUT_MS = 2000;
/** Delay before reviving a client that ioredis ended by itself. */
const REVIVE_MS = 100;

/**
 * `leaseTtlMs` bounds each relay command, for a server that stops answering
 * on an open connection: a drain holds its batch's rows and the lease row in
 * a database transaction while it waits for Redis (the lease's heartbeat
 * waits for that lock). A lost connection fails its commands at once anyway.
 */
export function createRedisClients(target: RedisTarget, logger: Logger, leaseTtlMs: number): RedisClients {
  let closing = false;
  const connect = (name: string, options: RedisOptions) => createRedis(target, logger.child({ redis: name }), options, () => closing);
  const clients = {
    relay: connect("relay", { commandTimeout: leaseTtlMs }),
    // Concurrent calls' lookups (a batch of GETs answered together) leave in one write: each of its own costs more.
    // ioredis sends the next auto-pipeline only once the one in flight has settled, so a call can wait for the
    // timeout of the one before it, then its own: each takes half, and a call still answers within the bound.
    api: connect("api", { commandTimeout: API_COMMAND_TIMEOUT_MS / 2, enableAutoPipelining: true }),
  };
  return {
    ...clients,
    close() {
      closing = true;
      clients.relay.disconnect();
      clients.api.disconnect();
    },
  };
}

/**
 * A Redis client that fails fast while Redis is unreachable (no offline
 * queue), so the relay rolls back and backs off instead of hanging, and
 * reconnects by itself. Commands in flight when the connection drops fail at
 * once too (no retry): ioredis would otherwise hold them until it is ready
 * again and resend them, which after a failover takes seconds, or never comes.
 * `options.commandTimeout` bounds the rest. Logs only when reachability changes.
 *
 * With a Sentinel target it asks the sentinels for the master on every
 * (re)connection, checks the server it reaches is a master, and drops the
 * connection at once when a sentinel announces +switch-master or a write is
 * refused as READONLY (a demoted master), so it follows failovers; the relay
 * then sees a new run_id and reconciles.
 */
function createRedis(target: RedisTarget, logger: Logger, options: RedisOptions, closing: () => boolean): Redis {
  const redis = openRedis(target, {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    // Soon after a failover's promotion (a refused connection costs next to nothing).
    retryStrategy: (attempt) => Math.min(50 * attempt, 250),
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
  // ioredis gives a client up for good when a reconnection is cut short: its failover detector,
  // left subscribed from a connection that died with the old master, fires on +switch-master while
  // the client is asking the sentinels again. Without this the daemon would never write Redis again.
  redis.on("end", () => {
    if (closing()) return;
    logger.warn("redis client gave up reconnecting; starting it again");
    setTimeout(() => void redis.connect().catch(() => undefined), REVIVE_MS).unref();
  });
  return redis;
}

/** A client of `target` (a Redis, or the master its sentinels name) with `options` for its behaviour. */
export function openRedis(target: RedisTarget, options: RedisOptions): Redis {
  if (target.kind === "direct") return new Redis(target.url, options);
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    ...(target.sentinelTls ? { sentinelTLS: {} } : {}),
  });
}
