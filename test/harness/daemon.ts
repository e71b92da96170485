import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { inject } from "vitest";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import { startApp, type App } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import { createLogger } from "../../src/log/logger.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/mysql-store.js";
import { createRedis } from "../../src/sync/redis-client.js";

export const TOKEN = "test-admin-token-0123456789";
export const protocols = ["connect", "grpc", "grpcweb"] as const;
export type Protocol = (typeof protocols)[number];

export interface TestDaemon {
  app: App;
  store: MysqlStore;
  config: Config;
  baseUrl: string;
  /** Every log line the daemon wrote. */
  logs: string[];
  transport(protocol: Protocol, token?: string | null): Transport;
  client(protocol: Protocol, token?: string | null): Client<typeof MappingService>;
  close(): Promise<void>;
}

/**
 * The real daemon, in process, on a free port, against the given database and
 * (unless env says otherwise) the run's Redis under a key prefix of its own.
 */
export async function startTestDaemon(mysqlUrl: string, env: Record<string, string> = {}): Promise<TestDaemon> {
  const config = loadConfig({
    DYNROUTE_ADDR: "127.0.0.1:0",
    DYNROUTE_TOKENS: TOKEN,
    MYSQL_URL: mysqlUrl,
    REDIS_URL: inject("redisUrl"),
    DYNROUTE_REDIS_PREFIX: `t${randomBytes(4).toString("hex")}:`,
    DYNROUTE_RELAY_POLL_MS: "50",
    LOG_LEVEL: "info",
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger(config.logLevel, sink);
  const store = createMysqlStore({ url: config.mysqlUrl, logger });
  const app = await startApp(config, { store, redis: createRedis(config.redis.url, logger), logger });
  const baseUrl = `http://127.0.0.1:${app.listener.address.port}`;
  const transport = (protocol: Protocol, token: string | null = TOKEN) => {
    const interceptors: Interceptor[] = token === null ? [] : [bearer(token)];
    switch (protocol) {
      case "connect":
        return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
      case "grpc":
        return createGrpcTransport({ baseUrl, interceptors });
      case "grpcweb":
        return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
    }
  };
  return {
    app,
    store,
    config,
    baseUrl,
    logs,
    transport,
    client: (protocol, token) => createClient(MappingService, transport(protocol, token)),
    close: () => app.close(),
  };
}

const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
