import type { MappingTx } from "./mapping-writes.js";
import type { RouteChange } from "./store.js";

/**
 * The transaction, with each route change it appends to the outbox also noted
 * in `written`: once it commits, the relay can apply them at once instead of
 * after reading them back (the outbox rows stay the durable record).
 */
export function notingOutbox(tx: MappingTx, written: RouteChange[]): MappingTx {
  return {
    ...tx,
    async appendOutbox(domain, backends, now) {
      const revision = await tx.appendOutbox(domain, backends, now);
      written.push({ domain, revision, backends, committedAt: now });
      return revision;
    },
  };
}
