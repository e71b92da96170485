import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Every metric the daemon exports, on a registry of its own (no global state). */
export function createMetrics() {
  const registry = new Registry();
  const on = { registers: [registry] };
  return {
    registry,
    rpcRequests: new Counter({ name: "dynroute_rpc_requests_total", help: "RPCs (and REST calls) by procedure and result code.", labelNames: ["procedure", "code"], ...on }),
    rpcDuration: new Histogram({
      name: "dynroute_rpc_duration_seconds",
      help: "RPC handling time by procedure.",
      labelNames: ["procedure"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      ...on,
    }),
    outboxDepth: new Gauge({ name: "dynroute_outbox_depth", help: "Changes committed in MySQL and not yet applied to Redis.", ...on }),
    outboxOldestAge: new Gauge({ name: "dynroute_outbox_oldest_age_seconds", help: "Age of the oldest change not yet applied to Redis (0 when none).", ...on }),
    applyLag: new Histogram({
      name: "dynroute_relay_apply_lag_seconds",
      help: "Time from a change's write to its application in Redis.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 120],
      ...on,
    }),
    appliedChanges: new Counter({ name: "dynroute_relay_changes_total", help: "Outbox changes handled by the relay.", ...on }),
    relayErrors: new Counter({ name: "dynroute_relay_errors_total", help: "Relay iterations that failed (the store unreachable, or Redis failing mid-batch).", ...on }),
    relayLeader: new Gauge({ name: "dynroute_relay_leader", help: "1 while this daemon holds the relay lease.", ...on }),
    reconciliations: new Counter({ name: "dynroute_reconciliations_total", help: "Full reconciliations of Redis from MySQL, by reason.", labelNames: ["reason"], ...on }),
    acmeOrders: new Counter({ name: "dynroute_acme_orders_total", help: "ACME orders started (new certificates and renewals).", ...on }),
    acmeFailures: new Counter({ name: "dynroute_acme_failures_total", help: "ACME orders that failed (retried after a back-off).", ...on }),
    acmeCertificates: new Gauge({ name: "dynroute_acme_certificates", help: "Automatic certificates by state (reported by the relay leader).", labelNames: ["state"], ...on }),
    certificateExpiryDays: new Gauge({ name: "dynroute_certificate_earliest_expiry_days", help: "Days until the earliest expiry of any stored certificate (reported by the relay leader).", ...on }),
    reconcileDuration: new Histogram({
      name: "dynroute_reconcile_duration_seconds",
      help: "Duration of full reconciliations.",
      buckets: [0.01, 0.1, 0.5, 1, 2.5, 5, 10, 20, 60],
      ...on,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
