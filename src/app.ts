import { readFileSync } from "node:fs";
import { createValidator } from "@bufbuild/protovalidate";
import { createServiceImplSpec } from "@connectrpc/connect";
import type { RedisClients } from "./sync/redis-client.js";
import type { Logger } from "pino";
import { authenticateInterceptor, authorizeInterceptor } from "./auth/auth-interceptor.js";
import { createAuthenticator } from "./auth/authenticator.js";
import { createConsoleRoute, defaultConsoleDir } from "./console/console-route.js";
import { tokenChecker } from "./auth/tokens.js";
import type { Config } from "./config/config.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import { BackendPolicy } from "./policy/backend-policy.js";
import { createOpsRoutes, opsOpenApiPaths } from "./observability/ops-routes.js";
import { errorInterceptor } from "./rpc/error-interceptor.js";
import { logInterceptor } from "./rpc/log-interceptor.js";
import { metricsInterceptor } from "./rpc/metrics-interceptor.js";
import { validateInterceptor } from "./rpc/validate-interceptor.js";
import { listen, type ListenOptions, type Listener } from "./server/listener.js";
import { createRpcHandler } from "./server/rpc-handler.js";
import { AdminService } from "../gen/dynroute/v1/admin_pb.js";
import { AuditService } from "../gen/dynroute/v1/audit_pb.js";
import { CertificateService } from "../gen/dynroute/v1/certificate_pb.js";
import { KeyService } from "../gen/dynroute/v1/key_pb.js";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { TenantService } from "../gen/dynroute/v1/tenant_pb.js";
import { httpRoutes } from "./gateway/http-routes.js";
import { createOpenApiRoute, openApiDocument } from "./gateway/openapi.js";
import { createRestGateway } from "./gateway/rest-gateway.js";
import { createAdminService } from "./service/admin-service.js";
import { startHousekeeping } from "./service/housekeeping.js";
import { createAuditService } from "./service/audit-service.js";
import { createCertificateService } from "./service/certificate-service.js";
import { createKeyService } from "./service/key-service.js";
import { createTenantService } from "./service/tenant-service.js";
import { fifoGate } from "./service/fifo-gate.js";
import { createMappingService } from "./service/mapping-service.js";
import { createReflectionServices } from "./service/reflection-service.js";
import type { Store } from "./store/open-store.js";
import { CertificateSync } from "./sync/certificate-sync.js";
import { Reconciler } from "./sync/reconciler.js";
import { OutboxRelay } from "./sync/relay.js";
import { RouteWriter } from "./sync/route-writer.js";
import { AcmeManager } from "./tls/acme-manager.js";
import { SecretBox } from "./tls/secret-box.js";

// Two: one list's store read overlaps another's serialisation (one at a time answered 15-20% fewer 500-mapping
// pages), and an event-loop turn stays a page or two long (at four, new connections waited seconds again).
const LISTS_AT_ONCE = 2;

const API_DESCRIPTION =
  "Map a domain to backends; nginx routes requests by Host to them. JSON over HTTP, transcoded from the dynroute.v1 protobuf API (also served over Connect, gRPC and gRPC-Web). Field names as in the proto (tenant_id); input also takes lowerCamelCase.";

export interface AppDeps {
  store: Store;
  redis: RedisClients;
  logger: Logger;
  /** The port, bound already (main binds before writing anything); else bound here. */
  port?: Listener;
}

/** Where and how the daemon listens: address, and TLS files read now. */
export function listenOptions(config: Config): ListenOptions {
  const tls = config.tls && { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  return { ...config.listen, ...(tls ? { tls } : {}) };
}

export interface App {
  listener: Listener;
  relay: OutboxRelay;
  reconciler: Reconciler;
  metrics: Metrics;
  /** Graceful: stop accepting, finish in-flight calls, stop the relay, close store and Redis. */
  close(): Promise<void>;
}

/** Wires a running daemon from its parts; the app owns (and closes) store and Redis. */
export async function startApp(config: Config, { store, redis, logger, port }: AppDeps): Promise<App> {
  const validator = createValidator();
  const metrics = createMetrics();
  // The relay drains on a connection of its own; API reads, readiness and ACME challenges use the other.
  const writer = new RouteWriter(redis.relay, config.redis);
  const apiWriter = new RouteWriter(redis.api, config.redis);
  const backendPolicy = new BackendPolicy(config.backendPolicy);
  const secrets = new SecretBox(config.secretKey);
  const certificates = new CertificateSync(store, writer, secrets, logger);
  const reconciler = new Reconciler(store, writer, backendPolicy, certificates, logger, metrics);
  const relay = new OutboxRelay(store, writer, reconciler, certificates, logger, metrics, config.relay);
  store.onCommit(relay.committed);

  const authenticator = createAuthenticator({ tokens: tokenChecker(config.tokens), keys: store, logger });

  const services = [
    createServiceImplSpec<typeof MappingService>(
      MappingService,
      createMappingService({ store, validator, backendRules: { policy: backendPolicy, pathless: config.redis.compatFrontend }, servedRevisions: (domains) => apiWriter.revisions(domains), listGate: fifoGate(LISTS_AT_ONCE) }),
    ),
    createServiceImplSpec<typeof AdminService>(AdminService, createAdminService({ reconciler })),
    createServiceImplSpec<typeof KeyService>(KeyService, createKeyService({ keys: store, authenticator })),
    createServiceImplSpec<typeof AuditService>(AuditService, createAuditService({ audit: store })),
    createServiceImplSpec<typeof TenantService>(TenantService, createTenantService({ tenants: store })),
    createServiceImplSpec<typeof CertificateService>(CertificateService, createCertificateService({ store, secrets })),
  ];
  const reflection = createReflectionServices(services.map((s) => s.service));
  services.push(...reflection);
  const routes = httpRoutes(services.map((s) => s.service));
  // Outermost first: logging and metrics see the final code; auth runs before
  // the request is read (REST decodes it there) and validated, so
  // unauthenticated callers learn nothing about the request rules.
  const callInterceptors = [logInterceptor(logger), metricsInterceptor(metrics), errorInterceptor(), authenticateInterceptor(authenticator)];
  // Any key may read the schema (reflection), as anyone may read /v1/openapi.json.
  const messageInterceptors = [authorizeInterceptor(new Set(reflection.map((s) => s.service.typeName))), validateInterceptor(validator)];
  const handler = createRpcHandler({
    services,
    callInterceptors,
    messageInterceptors,
    maxBodyBytes: config.maxBodyBytes,
    logger,
    otherRoutes: [
      createOpsRoutes({ store, redis: redis.api, relay, metrics, logger, readyMaxLagMs: config.readyMaxLagMs }),
      createOpenApiRoute("/v1/openapi.json", openApiDocument(routes, { title: "dynroute", version: "v1", description: API_DESCRIPTION }, opsOpenApiPaths())),
      createRestGateway({ routes, services, callInterceptors, messageInterceptors, maxBodyBytes: config.maxBodyBytes }),
      createConsoleRoute(defaultConsoleDir()),
    ],
  });
  const listener = port ?? (await listen(listenOptions(config)));
  listener.serve(handler);
  // After migrations: until then every relay turn would only fail (and say so).
  void store.ready.then(() => relay.start());
  const acme =
    config.acme &&
    new AcmeManager({ store, writer: apiWriter, secrets, metrics, logger, isLeader: () => relay.role === "leader", settings: config.acme, tlsDefault: config.tlsDefault, dataDir: config.dataDir });
  void store.ready.then(() => acme?.start());
  const housekeeping = startHousekeeping({
    store,
    auditRetentionMs: config.auditRetentionDays * 86_400_000,
    idempotencyTtlMs: config.idempotencyTtlSeconds * 1000,
    isLeader: () => relay.role === "leader",
    logger,
  });
  return {
    listener,
    relay,
    reconciler,
    metrics,
    async close() {
      await listener.close(config.shutdownTimeoutMs);
      housekeeping.stop();
      await acme?.stop();
      await relay.stop();
      await store.close();
      redis.close();
    },
  };
}
