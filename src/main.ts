import { once } from "node:events";
import { relative } from "node:path";
import { setFlagsFromString } from "node:v8";
import { loadOrCreateToken } from "./auth/generated-token.js";
import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { createLogger } from "./log/logger.js";
import { BackendPolicy } from "./policy/backend-policy.js";
import { listenOptions, startApp } from "./app.js";
import { listen, type Listener } from "./server/listener.js";
import { openStore, type Store } from "./store/open-store.js";
import { StoreOwnedError } from "./store/sqlite/sqlite-store.js";
import { createRedisClients } from "./sync/redis-client.js";

// The old generation grows to 2.5 times what survived the last full collection, not V8's up to four times:
// a full reconciliation's short-lived garbage (rows promoted while their batch waits for Redis) otherwise
// took the peak RSS at 1M mappings from ~178 to ~230 MB, for no speed (2 times: ~160 MB, but ~20% slower).
// V8 reads it at each collection, so setting it here works; a value on the command line wins.
if (!process.execArgv.some((arg) => arg.startsWith("--heap-growing-percent"))) setFlagsFromString("--heap-growing-percent=150");

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`dynroute: configuration error: ${err.message}\n`);
  process.exit(2);
}

// The port first: a daemon that cannot listen stops before it writes anything (data dir, token).
let bound: Listener;
try {
  bound = await listen(listenOptions(config));
} catch (err) {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== "EADDRINUSE" && code !== "EACCES" && code !== "EADDRNOTAVAIL") throw err;
  const why = code === "EADDRINUSE" ? "the address is in use" : code === "EACCES" ? "permission denied" : "no such local address";
  process.stderr.write(`dynroute: cannot listen on ${config.listen.host}:${config.listen.port}: ${why} (${code}); set DYNROUTE_ADDR to a free host:port\n`);
  process.exit(2);
}

const logger = createLogger(config.logLevel);
let store: Store;
try {
  store = openStore(config.store, logger);
} catch (err) {
  if (!(err instanceof StoreOwnedError)) throw err;
  process.stderr.write(`dynroute: ${err.message}\n`);
  process.exit(1);
}
const generated = config.tokens.length === 0 ? loadOrCreateToken(config.dataDir) : undefined;
if (generated) config = { ...config, tokens: [generated.token] };

const redis = createRedisClients(config.redis.target, logger, config.relay.leaseTtlMs);
const app = await startApp(config, { store, redis, logger, port: bound });
const { address, port } = app.listener.address;
const url = `${config.tls ? "https" : "http"}://${address.includes(":") ? `[${address}]` : address}:${port}`;
logger.info({ address, port, tls: Boolean(config.tls), store: config.store.kind }, `dynroute listening on ${url}`);
welcome();
void reportRedis();

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

/** What a newcomer needs to make the first call, on stderr beside the JSON log. */
function welcome(): void {
  const lines = [`dynroute is serving ${url}`];
  if (config.store.kind === "sqlite") lines.push(`  data:  ${config.store.file} (embedded; set MYSQL_URL for MySQL)`);
  let auth = "Authorization: Bearer <one of DYNROUTE_TOKENS>";
  if (generated) {
    const file = relative(process.cwd(), generated.file) || generated.file;
    lines.push(generated.created ? `  admin token (new, kept in ${file}): ${generated.token}` : `  admin token: in ${file}`);
    auth = `Authorization: Bearer $(cat ${file})`;
  }
  lines.push(
    `  web console: open ${url}/ in a browser and sign in with the admin token (or any API key)`,
    "  try:",
    `    curl -X PUT ${url}/v1/demo/mapping -H "${auth}" -H 'Content-Type: application/json' -d '{"domain": "demo.example.org", "backends": ["http://10.0.0.5:3000"]}'`,
    `    curl ${url}/v1/demo/mapping -H "${auth}"`,
  );
  if (new BackendPolicy(config.backendPolicy).refusal("127.0.0.1")) {
    lines.push("  backends on this machine (127.0.0.1, ::1) are refused unless you start with DYNROUTE_BACKEND_ALLOW=127.0.0.0/8,::1/128");
  }
  lines.push("");
  process.stderr.write(lines.join("\n"));
}

/** Redis may come later: say so plainly, with what waits for it. */
async function reportRedis(): Promise<void> {
  if (redis.relay.status !== "ready") {
    const settled = await Promise.race([once(redis.relay, "ready").then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), 1500).unref())]);
    if (settled) return;
    const waiting = await store.outboxStats().then((s) => s.depth, () => undefined);
    logger.warn(
      { redis: config.redis.display, outboxDepth: waiting },
      `Redis at ${config.redis.display} is unreachable: routes are not being distributed to routers; ${waiting ?? "unknown"} change(s) wait and will be applied when it appears`,
    );
  }
}
