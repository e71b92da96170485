import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { inject } from "vitest";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import { startApp, type App } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import { createLogger } from "../../src/log/logger.js";
import { createDatabase } from "./mariadb.js";
import { openStore, type Store } from "../../src/store/open-store.js";
import { createRedisClients } from "../../src/sync/redis-client.js";

export const TOKEN = "test-admin-token-0123456789";
/** Tests route to loopback backends, which the default backend policy refuses. */
export const LOOPBACK_ALLOWED = { DYNROUTE_BACKEND_ALLOW: "127.0.0.0/8,::1/128" } as const;
export const protocols = ["connect", "grpc", "grpcweb"] as const;
export type Protocol = (typeof protocols)[number];

export interface TestDaemon {
  app: App;
  store: Store;
  config: Config;
  baseUrl: string;
  /** Every log line the daemon wrote. */
  logs: string[];
  transport(protocol: Protocol, token?: string | null): Transport;
  client(protocol: Protocol, token?: string | null): Client<typeof MappingService>;
  /** A client of any of the daemon's services. */
  clientOf<S extends DescService>(service: S, protocol: Protocol, token?: string | null): Client<S>;
  close(): Promise<void>;
}

/** The stores every conformance suite runs against. */
export const stores = ["mysql", "sqlite"] as const;
export type StoreKind = (typeof stores)[number];
/** Environment that points a daemon at one store. */
export type StoreEnv = { MYSQL_URL: string } | { DYNROUTE_DATA_DIR: string };

/** A new, empty store: a database on the run's MariaDB, or a data dir of its own. */
export async function freshStore(kind: StoreKind): Promise<StoreEnv> {
  return kind === "mysql" ? { MYSQL_URL: await createDatabase(inject("mysqlAdminUrl")) } : { DYNROUTE_DATA_DIR: mkdtempSync(join(tmpdir(), "dynroute-data-")) };
}

/**
 * The real daemon, in process, on a free port, against the given store and
 * (unless env says otherwise) the run's Redis under a key prefix of its own.
 */
export async function startTestDaemon(storeEnv: StoreEnv, env: Record<string, string> = {}): Promise<TestDaemon> {
  const config = loadConfig({
    DYNROUTE_ADDR: "127.0.0.1:0",
    DYNROUTE_TOKENS: TOKEN,
    ...storeEnv,
    REDIS_URL: inject("redisUrl"),
    DYNROUTE_REDIS_PREFIX: `t${randomBytes(4).toString("hex")}:`,
    DYNROUTE_RELAY_POLL_MS: "50",
    LOG_LEVEL: "info",
    ...LOOPBACK_ALLOWED,
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
  const store = openStore(config.store, logger);
  const app = await startApp(config, { store, redis: createRedisClients(config.redis.target, logger, config.relay.leaseTtlMs), logger });
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
    clientOf: (service, protocol, token) => createClient(service, transport(protocol, token)),
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
