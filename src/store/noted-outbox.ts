import type { MappingTx } from "./mapping-writes.js";
import type { CommittedChanges } from "./store.js";

/** Nothing appended yet: what notingOutbox fills in. */
export const noChanges = (): CommittedChanges => ({ routes: [], certificates: false });

/**
 * The transaction, with what it appends to the outboxes also noted in
 * `written`: once it commits, the relay can apply its route changes at once
 * instead of after reading them back (the outbox rows stay the durable
 * record), and drain a certificate change at once.
 */
export function notingOutbox(tx: MappingTx, written: CommittedChanges): MappingTx {
  return {
    ...tx,
    async appendOutbox(domain, backends, now) {
      const revision = await tx.appendOutbox(domain, backends, now);
      written.routes.push({ domain, revision, backends, committedAt: now });
      return revision;
    },
    appendCertificateOutbox(name, state, now) {
      written.certificates = true;
      return tx.appendCertificateOutbox(name, state, now);
    },
  };
}
