import type { Logger } from "pino";
import type { AuditStore, IdempotencyStore } from "../store/store.js";

const EVERY_MS = 3600_000;

export interface HousekeepingOptions {
  store: AuditStore & IdempotencyStore;
  /** Audit events older than this go; 0 keeps them. */
  auditRetentionMs: number;
  /** Idempotency keys older than this are forgotten. */
  idempotencyTtlMs: number;
  /** Only the relay leader cleans up, so replicas do not repeat the work. */
  isLeader: () => boolean;
  logger: Logger;
  everyMs?: number;
}

/** Removes what has outlived its retention (audit events, idempotency keys), hourly, on the relay leader. */
export function startHousekeeping({ store, auditRetentionMs, idempotencyTtlMs, isLeader, logger, everyMs = EVERY_MS }: HousekeepingOptions): { stop(): void } {
  const jobs: Array<[string, () => Promise<number>]> = [["idempotency keys", () => store.pruneIdempotency(new Date(Date.now() - idempotencyTtlMs))]];
  if (auditRetentionMs > 0) jobs.push(["audit events", () => store.pruneAudit(new Date(Date.now() - auditRetentionMs))]);
  const timer = setInterval(() => {
    if (!isLeader()) return;
    for (const [what, prune] of jobs) {
      prune().then(
        (removed) => removed > 0 && logger.info({ removed }, `expired ${what} removed`),
        (err: unknown) => logger.warn({ err: (err as Error).message }, `removing expired ${what} failed; retried next time`),
      );
    }
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
