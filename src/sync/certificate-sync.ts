import type { Logger } from "pino";
import type { CertificateChange, OutboxStore, RelayLease } from "../store/store.js";
import type { SecretBox } from "../tls/secret-box.js";
import type { CertificateState, RouteWriter } from "./route-writer.js";

const SCAN_BATCH = 1000;

/**
 * Moves certificates from the store to Redis: the relay drains the
 * certificate outbox through it, the reconciler pushes every certificate and
 * tombstones the names the store no longer has, both through the writer's
 * versioned scripts. Private keys are opened here, just before Redis.
 */
export class CertificateSync {
  constructor(
    private readonly store: OutboxStore,
    private readonly writer: RouteWriter,
    private readonly secrets: SecretBox,
    private readonly logger: Logger,
  ) {}

  /** One batch of the certificate outbox, fenced by the relay's lease like route batches; returns the rows applied. */
  drain(limit: number, lease: RelayLease | undefined): Promise<number> {
    return this.store.drainCertificateOutbox(
      limit,
      async (changes) => {
        await this.writer.applyCertificates(this.openAll(changes));
      },
      lease,
    );
  }

  async reconcile(stamp: string): Promise<{ pushed: number; updated: number; retired: number }> {
    let pushed = 0;
    let updated = 0;
    for (let after = 0n; ; ) {
      const rows = await this.store.scanCertificates(after, SCAN_BATCH);
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.id;
      updated += await this.writer.applyCertificates(this.openAll(rows), stamp);
      pushed += rows.length;
    }
    let retired = 0;
    for await (const unseen of this.writer.unseenCertificates(stamp)) {
      for (const name of await this.store.certifiedNames([...unseen.keys()])) unseen.delete(name);
      retired += await this.writer.retireCertificates(unseen);
    }
    return { pushed, updated, retired };
  }

  /**
   * The changes with their keys opened. A key that cannot be opened
   * (DYNROUTE_SECRET_KEY changed or missing) is logged and its change left
   * out, so one bad certificate holds up neither the others nor the routes;
   * routers keep what they have for that name, and each reconciliation
   * tries it again.
   */
  private openAll(changes: readonly CertificateChange[]): CertificateState[] {
    const opened: CertificateState[] = [];
    for (const c of changes) {
      if (!c.state) {
        opened.push({ name: c.name, revision: c.revision, tls: null });
        continue;
      }
      try {
        opened.push({ name: c.name, revision: c.revision, tls: { chainPem: c.state.chainPem, keyPem: this.secrets.open(c.state.sealedKey) } });
      } catch (err) {
        this.logger.error({ name: c.name, err: (err as Error).message }, "cannot open a certificate's private key (check DYNROUTE_SECRET_KEY); routers keep their copy");
      }
    }
    return opened;
  }
}
