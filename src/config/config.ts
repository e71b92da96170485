import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { canonicalCidr, type BackendPolicySettings } from "../policy/backend-policy.js";

/** Everything the daemon reads from its environment, parsed and checked once at startup. */
export interface Config {
  listen: { host: string; port: number };
  /** Admin tokens; any one of them is accepted (several allow rotation). Empty: use the data dir's generated token. */
  tokens: string[];
  /** MySQL when MYSQL_URL is set, else the embedded SQLite file in the data dir. */
  store: { kind: "mysql"; url: string } | { kind: "sqlite"; file: string };
  /** The embedded store's folder, and where a generated admin token is kept. */
  dataDir: string;
  tls?: { certFile: string; keyFile: string };
  logLevel: string;
  /** Largest request body accepted on any protocol, in bytes. */
  maxBodyBytes: number;
  /** How long shutdown waits for in-flight requests before closing connections. */
  shutdownTimeoutMs: number;
  redis: {
    /** REDIS_URL as given (may hold a password: log `display` instead). */
    url: string;
    /** Where the Redis master is: one address, or a Redis Sentinel group to ask. */
    target: RedisTarget;
    /** REDIS_URL without its passwords, for logs and messages. */
    display: string;
    /** Prepended to every key and channel dynroute writes. */
    prefix: string;
    /** Also maintain `frontend:<domain>` SETs for dynamicproxy-style routers. */
    compatFrontend: boolean;
    tombstoneTtlSeconds: number;
  };
  relay: {
    batchSize: number;
    pollMs: number;
    reconcileIntervalMs: number;
    maxBackoffMs: number;
    leaseTtlMs: number;
  };
  /** /readyz fails when the oldest unapplied change is older than this. */
  readyMaxLagMs: number;
  /** Where backends may point, beyond the built-in denials (see BackendPolicy). */
  backendPolicy: BackendPolicySettings;
  /** Audit events older than this are removed; 0 keeps them forever. */
  auditRetentionDays: number;
  /** How long a write's Idempotency-Key is remembered. */
  idempotencyTtlSeconds: number;
  /** DYNROUTE_SECRET_KEY: encrypts certificates' private keys at rest; unset: stored as sent. */
  secretKey?: string;
  /** DYNROUTE_TLS_DEFAULT: whether mappings that do not choose get an automatic certificate. */
  tlsDefault: "automatic" | "manual";
  /** Automatic certificates over ACME; undefined (no DYNROUTE_ACME_DIRECTORY): none are ordered. */
  acme?: {
    directoryUrl: string;
    email: string;
    /** PEM CA bundle trusted for the ACME server only (e.g. pebble's). */
    caFile?: string;
    /** How often the leader looks for mappings due an order. */
    pollMs: number;
    /** First retry delay after a failed order; doubles per failure (jittered) up to maxBackoffMs. */
    retryMs: number;
    maxBackoffMs: number;
  };
}

/** One Redis server by URL, or the master of a Sentinel group (followed across failovers). */
export type RedisTarget =
  | { kind: "direct"; url: string; db: number }
  | {
      kind: "sentinel";
      sentinels: Array<{ host: string; port: number }>;
      /** The master's name in the sentinels' configuration. */
      name: string;
      db: number;
      /** Credentials of the master and replicas (the URL's user info). */
      username?: string;
      password?: string;
      /** Credentials of the sentinels themselves, when they require them. */
      sentinelUsername?: string;
      sentinelPassword?: string;
      /** TLS to the master (tls=true) and to the sentinels (sentinel_tls=true). */
      tls: boolean;
      sentinelTls: boolean;
    };

/** A configuration value that stops startup; the message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const tls = parseTls(env);
  const dataDir = resolve(env.DYNROUTE_DATA_DIR || "data");
  return {
    listen: parseAddr(env.DYNROUTE_ADDR ?? "127.0.0.1:8080"),
    tokens: parseTokens(env),
    store: env.MYSQL_URL ? { kind: "mysql", url: parseMysqlUrl(env.MYSQL_URL) } : { kind: "sqlite", file: join(dataDir, "dynroute.db") },
    dataDir,
    ...(tls ? { tls } : {}),
    logLevel: oneOf("LOG_LEVEL", env.LOG_LEVEL ?? "info", logLevels),
    maxBodyBytes: positiveInt("DYNROUTE_MAX_BODY_BYTES", env.DYNROUTE_MAX_BODY_BYTES, 64 * 1024),
    shutdownTimeoutMs: positiveInt("DYNROUTE_SHUTDOWN_TIMEOUT_MS", env.DYNROUTE_SHUTDOWN_TIMEOUT_MS, 10_000),
    redis: parseRedis(env),
    relay: {
      batchSize: positiveInt("DYNROUTE_RELAY_BATCH", env.DYNROUTE_RELAY_BATCH, 1000),
      pollMs: positiveInt("DYNROUTE_RELAY_POLL_MS", env.DYNROUTE_RELAY_POLL_MS, 250),
      reconcileIntervalMs: 1000 * nonNegativeInt("DYNROUTE_RECONCILE_INTERVAL_S", env.DYNROUTE_RECONCILE_INTERVAL_S, 3600),
      maxBackoffMs: positiveInt("DYNROUTE_RELAY_MAX_BACKOFF_MS", env.DYNROUTE_RELAY_MAX_BACKOFF_MS, 5000),
      leaseTtlMs: 1000 * positiveInt("DYNROUTE_RELAY_LEASE_S", env.DYNROUTE_RELAY_LEASE_S, 10),
    },
    readyMaxLagMs: positiveInt("DYNROUTE_READY_MAX_LAG_MS", env.DYNROUTE_READY_MAX_LAG_MS, 60_000),
    backendPolicy: { deny: cidrList("DYNROUTE_BACKEND_DENY", env.DYNROUTE_BACKEND_DENY), allow: cidrList("DYNROUTE_BACKEND_ALLOW", env.DYNROUTE_BACKEND_ALLOW) },
    auditRetentionDays: nonNegativeInt("DYNROUTE_AUDIT_RETENTION_DAYS", env.DYNROUTE_AUDIT_RETENTION_DAYS, 90),
    ...(env.DYNROUTE_SECRET_KEY ? { secretKey: secretKey(env.DYNROUTE_SECRET_KEY) } : {}),
    tlsDefault: oneOf("DYNROUTE_TLS_DEFAULT", env.DYNROUTE_TLS_DEFAULT || "manual", ["automatic", "manual"]) as Config["tlsDefault"],
    ...(env.DYNROUTE_ACME_DIRECTORY ? { acme: parseAcme(env) } : {}),
    idempotencyTtlSeconds: positiveInt("DYNROUTE_IDEMPOTENCY_TTL_S", env.DYNROUTE_IDEMPOTENCY_TTL_S, 86_400),
  };
}

function parseRedis(env: NodeJS.ProcessEnv): Config["redis"] {
  const url = env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const target = parseRedisUrl(url, "REDIS_URL");
  const redis = {
    url,
    target,
    display: url.replace(/\/\/[^@/]*@/, "//***@").replace(/(sentinel_password=)[^&]*/, "$1***"),
    prefix: env.DYNROUTE_REDIS_PREFIX ?? "",
    compatFrontend: bool("DYNROUTE_COMPAT_FRONTEND", env.DYNROUTE_COMPAT_FRONTEND),
    tombstoneTtlSeconds: positiveInt("DYNROUTE_TOMBSTONE_TTL_S", env.DYNROUTE_TOMBSTONE_TTL_S, 7 * 24 * 3600),
  };
  // dynamicproxy-style routers read `frontend:<domain>` in database 0, with no prefix: anything else would silently not route.
  if (redis.compatFrontend && redis.prefix !== "") {
    throw new ConfigError("DYNROUTE_REDIS_PREFIX", "must be empty with DYNROUTE_COMPAT_FRONTEND=true (dynamicproxy routers read frontend:<domain> without a prefix)");
  }
  if (redis.compatFrontend && target.db !== 0) {
    throw new ConfigError("REDIS_URL", `must use database 0 with DYNROUTE_COMPAT_FRONTEND=true (dynamicproxy routers read database 0), got /${target.db}`);
  }
  return redis;
}

const SENTINEL_URL = /^redis\+sentinel:\/\/(?:([^@/]*)@)?([^/?#@]+)\/([^/?#]+)\/?(?:\?([^#]*))?$/;

/** A Redis URL as REDIS_URL takes it (`variable` names the setting in errors). */
export function parseRedisUrl(value: string, variable: string): RedisTarget {
  if (value.startsWith("redis+sentinel:")) return parseSentinelUrl(value, variable);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, "not a URL; e.g. redis://127.0.0.1:6379/0");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") throw new ConfigError(variable, `scheme must be redis://, rediss:// or redis+sentinel://, got ${url.protocol}//`);
  const db = url.pathname.replace(/^\//, "");
  return { kind: "direct", url: value, db: db === "" ? 0 : redisDb(db, variable) };
}

/**
 * `redis+sentinel://[user:pass@]host1:26379,host2:26379/mymaster[?db=N&tls=true&sentinel_tls=true&
 * sentinel_username=…&sentinel_password=…]`: the user info is for the master (and replicas), as in
 * a redis:// URL; the sentinels get their own credentials, since they usually differ.
 */
function parseSentinelUrl(value: string, variable: string): RedisTarget {
  const m = SENTINEL_URL.exec(value);
  if (!m) throw new ConfigError(variable, "expected redis+sentinel://[user:pass@]host1:26379,host2:26379/<master name>[?db=N]");
  const [, userinfo, hostList, name, query] = m;
  const sentinels = hostList!.split(",").map((hp) => {
    const hm = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(hp);
    const port = Number(hm?.[3] ?? 26379);
    if (!hm || !(port > 0 && port <= 65535)) throw new ConfigError(variable, `"${hp}" is not a sentinel host:port`);
    return { host: hm[1] ?? hm[2]!, port };
  });
  const params = new URLSearchParams(query ?? "");
  for (const key of params.keys()) {
    if (!["db", "tls", "sentinel_tls", "sentinel_username", "sentinel_password"].includes(key)) throw new ConfigError(variable, `unknown option ${key}`);
  }
  const colon = userinfo?.indexOf(":") ?? -1;
  const username = userinfo && decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
  const password = userinfo && colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : undefined;
  return {
    kind: "sentinel",
    sentinels,
    name: decodeURIComponent(name!),
    db: params.has("db") ? redisDb(params.get("db")!, variable) : 0,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(params.get("sentinel_username") ? { sentinelUsername: params.get("sentinel_username")! } : {}),
    ...(params.get("sentinel_password") ? { sentinelPassword: params.get("sentinel_password")! } : {}),
    tls: bool(variable, params.get("tls") ?? undefined),
    sentinelTls: bool(variable, params.get("sentinel_tls") ?? undefined),
  };
}

function redisDb(value: string, variable: string): number {
  const db = Number(value);
  if (!/^\d+$/.test(value) || db > 65535) throw new ConfigError(variable, `database must be a number, got "${value}"`);
  return db;
}

function cidrList(variable: string, value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter((c) => c !== "")
    .map((c) => {
      try {
        return canonicalCidr(c);
      } catch (err) {
        throw new ConfigError(variable, (err as Error).message);
      }
    });
}

function bool(variable: string, value: string | undefined): boolean {
  if (value === undefined || value === "" || value === "0" || value === "false") return false;
  if (value === "1" || value === "true") return true;
  throw new ConfigError(variable, `must be true or false, got "${value}"`);
}

function nonNegativeInt(variable: string, value: string | undefined, fallback: number): number {
  return value === "0" ? 0 : positiveInt(variable, value, fallback);
}

function parseAddr(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !(port >= 0 && port <= 65535)) {
    throw new ConfigError("DYNROUTE_ADDR", `expected host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got "${value}"`);
  }
  if (m?.[1] !== undefined && isIP(host) !== 6) throw new ConfigError("DYNROUTE_ADDR", `"${host}" is not an IPv6 address`);
  return { host: host === "" ? "0.0.0.0" : host, port };
}

function parseTokens(env: NodeJS.ProcessEnv): string[] {
  const fromEnv = splitTokens(env.DYNROUTE_TOKENS ?? "", /,/);
  let fromFile: string[] = [];
  if (env.DYNROUTE_TOKENS_FILE) {
    try {
      fromFile = splitTokens(readFileSync(env.DYNROUTE_TOKENS_FILE, "utf8"), /\r?\n/);
    } catch (err) {
      throw new ConfigError("DYNROUTE_TOKENS_FILE", `cannot read ${env.DYNROUTE_TOKENS_FILE}: ${(err as Error).message}`);
    }
  }
  const tokens = [...fromEnv, ...fromFile];
  if (env.DYNROUTE_TOKENS_FILE && tokens.length === 0) throw new ConfigError("DYNROUTE_TOKENS_FILE", `${env.DYNROUTE_TOKENS_FILE} holds no token`);
  for (const t of tokens) {
    if (t.length < 16) throw new ConfigError("DYNROUTE_TOKENS", "every token must be at least 16 characters");
    if (!/^[\x21-\x7e]+$/.test(t)) throw new ConfigError("DYNROUTE_TOKENS", "tokens must be printable ASCII without spaces");
  }
  return tokens;
}

function splitTokens(text: string, sep: RegExp): string[] {
  return text
    .split(sep)
    .map((t) => t.trim())
    .filter((t) => t !== "" && !t.startsWith("#"));
}

function parseMysqlUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError("MYSQL_URL", "not a URL; e.g. mysql://dynroute:secret@127.0.0.1:3306/dynroute");
  }
  if (url.protocol !== "mysql:") throw new ConfigError("MYSQL_URL", `scheme must be mysql://, got ${url.protocol}//`);
  if (url.pathname.length <= 1) throw new ConfigError("MYSQL_URL", "names no database; add it as the path, e.g. .../dynroute");
  return value;
}

function parseTls(env: NodeJS.ProcessEnv): Config["tls"] {
  const certFile = env.DYNROUTE_TLS_CERT;
  const keyFile = env.DYNROUTE_TLS_KEY;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError(certFile ? "DYNROUTE_TLS_KEY" : "DYNROUTE_TLS_CERT", "TLS needs both DYNROUTE_TLS_CERT and DYNROUTE_TLS_KEY");
  return { certFile, keyFile };
}

function parseAcme(env: NodeJS.ProcessEnv): NonNullable<Config["acme"]> {
  const directoryUrl = env.DYNROUTE_ACME_DIRECTORY!;
  if (!/^https:\/\//.test(directoryUrl)) throw new ConfigError("DYNROUTE_ACME_DIRECTORY", "must be an https:// URL of an ACME directory");
  const caFile = env.DYNROUTE_ACME_CA_FILE;
  if (caFile) {
    try {
      readFileSync(caFile);
    } catch {
      throw new ConfigError("DYNROUTE_ACME_CA_FILE", `cannot read ${caFile}`);
    }
  }
  return {
    directoryUrl,
    email: env.DYNROUTE_ACME_EMAIL ?? "",
    ...(caFile ? { caFile } : {}),
    pollMs: positiveInt("DYNROUTE_ACME_POLL_MS", env.DYNROUTE_ACME_POLL_MS, 10_000),
    retryMs: positiveInt("DYNROUTE_ACME_RETRY_MS", env.DYNROUTE_ACME_RETRY_MS, 60_000),
    maxBackoffMs: positiveInt("DYNROUTE_ACME_MAX_BACKOFF_MS", env.DYNROUTE_ACME_MAX_BACKOFF_MS, 6 * 3_600_000),
  };
}

function secretKey(value: string): string {
  if (value.length < 16) throw new ConfigError("DYNROUTE_SECRET_KEY", "must be at least 16 characters (e.g. openssl rand -base64 32)");
  return value;
}

function oneOf(variable: string, value: string, allowed: string[]): string {
  if (!allowed.includes(value)) throw new ConfigError(variable, `must be one of ${allowed.join(", ")}`);
  return value;
}

function positiveInt(variable: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new ConfigError(variable, `must be a positive integer, got "${value}"`);
  return n;
}
