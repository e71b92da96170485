import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { createLogger } from "./log/logger.js";
import { startApp } from "./app.js";
import { createMysqlStore } from "./store/mysql/mysql-store.js";
import { createRedis } from "./sync/redis-client.js";

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`dynroute: configuration error: ${err.message}\n`);
  process.exit(2);
}

const logger = createLogger(config.logLevel);
const store = createMysqlStore({ url: config.mysqlUrl, logger });
const redis = createRedis(config.redis.url, logger);
const app = await startApp(config, { store, redis, logger });
const { address, port } = app.listener.address;
logger.info({ address, port, tls: Boolean(config.tls) }, `dynroute listening on ${config.tls ? "https" : "http"}://${address.includes(":") ? `[${address}]` : address}:${port}`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
