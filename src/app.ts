import { readFileSync } from "node:fs";
import { createValidator } from "@bufbuild/protovalidate";
import type { Logger } from "pino";
import { authInterceptor } from "./auth/auth-interceptor.js";
import { tokenChecker } from "./auth/tokens.js";
import type { Config } from "./config/config.js";
import { errorInterceptor } from "./rpc/error-interceptor.js";
import { logInterceptor } from "./rpc/log-interceptor.js";
import { validateInterceptor } from "./rpc/validate-interceptor.js";
import { listen, type Listener } from "./server/listener.js";
import { createRpcHandler } from "./server/rpc-handler.js";
import { createMappingService } from "./service/mapping-service.js";
import type { MappingStore } from "./store/store.js";

export interface App {
  listener: Listener;
  /** Graceful: stop accepting, finish in-flight calls, then close the store. */
  close(): Promise<void>;
}

/** Wires a running daemon from its parts; the store is owned (and closed) by the app. */
export async function startApp(config: Config, deps: { store: MappingStore; logger: Logger }): Promise<App> {
  const { store, logger } = deps;
  const validator = createValidator();
  const handler = createRpcHandler({
    mappingService: createMappingService({ store, validator }),
    // Outermost first: logging sees the final code; auth runs before validation so
    // unauthenticated callers learn nothing about the request rules.
    interceptors: [logInterceptor(logger), errorInterceptor(), authInterceptor(tokenChecker(config.tokens)), validateInterceptor(validator)],
    maxBodyBytes: config.maxBodyBytes,
  });
  const tls = config.tls && { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  const listener = await listen(handler, { ...config.listen, ...(tls ? { tls } : {}) });
  return {
    listener,
    async close() {
      await listener.close(config.shutdownTimeoutMs);
      await store.close();
    },
  };
}
