import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Metrics } from "../observability/metrics.js";

/** Counts calls by procedure and code and times them. */
export function metricsInterceptor(metrics: Metrics): Interceptor {
  // The labelled series of each procedure, looked up once: prom-client hashes the labels on every lookup.
  const series = new Map<DescMethod, { duration: ReturnType<Metrics["rpcDuration"]["labels"]>; ok: ReturnType<Metrics["rpcRequests"]["labels"]>; procedure: string }>();
  const of = (method: DescMethod) => {
    let found = series.get(method);
    if (!found) {
      const procedure = `${method.parent.typeName}/${method.name}`;
      series.set(method, (found = { duration: metrics.rpcDuration.labels({ procedure }), ok: metrics.rpcRequests.labels({ procedure, code: "ok" }), procedure }));
    }
    return found;
  };
  return (next) => async (req) => {
    const s = of(req.method);
    const started = performance.now();
    try {
      const res = await next(req);
      s.ok.inc();
      return res;
    } catch (err) {
      metrics.rpcRequests.inc({ procedure: s.procedure, code: Code[ConnectError.from(err).code] });
      throw err;
    } finally {
      s.duration.observe((performance.now() - started) / 1000);
    }
  };
}
