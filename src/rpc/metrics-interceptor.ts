import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Metrics } from "../observability/metrics.js";

/** Counts calls by procedure and code and times them. */
export function metricsInterceptor(metrics: Metrics): Interceptor {
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const stop = metrics.rpcDuration.startTimer({ procedure });
    try {
      const res = await next(req);
      metrics.rpcRequests.inc({ procedure, code: "ok" });
      return res;
    } catch (err) {
      metrics.rpcRequests.inc({ procedure, code: Code[ConnectError.from(err).code] });
      throw err;
    } finally {
      stop();
    }
  };
}
