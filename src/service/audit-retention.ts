import type { Logger } from "pino";
import type { AuditStore } from "../store/store.js";

const EVERY_MS = 3600_000;
const DAY_MS = 86_400_000;

export interface AuditRetentionOptions {
  audit: AuditStore;
  /** Events older than this many days go; 0 keeps everything. */
  days: number;
  /** Only the relay leader prunes, so replicas do not repeat the work. */
  isLeader: () => boolean;
  logger: Logger;
  everyMs?: number;
}

/** Removes audit events past their retention, hourly, on the relay leader. */
export function startAuditRetention({ audit, days, isLeader, logger, everyMs = EVERY_MS }: AuditRetentionOptions): { stop(): void } {
  if (days === 0) return { stop() {} };
  const timer = setInterval(() => {
    if (!isLeader()) return;
    audit.pruneAudit(new Date(Date.now() - days * DAY_MS)).then(
      (removed) => removed > 0 && logger.info({ removed, retentionDays: days }, "old audit events removed"),
      (err: unknown) => logger.warn({ err: (err as Error).message }, "audit retention failed; retried next hour"),
    );
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
