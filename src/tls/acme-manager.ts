import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import acme from "acme-client";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { Metrics } from "../observability/metrics.js";
import type { AcmeDue, AcmeState, AcmeStore, CertificateStore } from "../store/store.js";
import type { RouteWriter } from "../sync/route-writer.js";
import { parseCertificate } from "./certificate.js";
import type { SecretBox } from "./secret-box.js";

/** Orders per turn, one after another: a burst of new mappings does not become a burst at the CA. */
const PER_TURN = 5;
/** How long an order may take before another turn may start it again (a daemon that died mid-order). */
const ORDER_LEASE_MS = 10 * 60_000;
const CHALLENGE_TTL_S = 600;

export interface AcmeManagerDeps {
  store: CertificateStore & AcmeStore;
  writer: RouteWriter;
  secrets: SecretBox;
  metrics: Metrics;
  logger: Logger;
  /** Only the relay leader orders: one across all replicas. */
  isLeader: () => boolean;
  settings: NonNullable<Config["acme"]>;
  tlsDefault: Config["tlsDefault"];
  /** Where the ACME account key is kept (so a restart reuses the account). */
  dataDir: string;
}

/**
 * Automatic certificates over ACME (RFC 8555, HTTP-01): the relay leader
 * orders a certificate for every mapping that asks for one, routers answer
 * the challenge from Redis, and the issued certificate is stored like an
 * uploaded one (so it reaches routers through the certificate outbox).
 * Renewal at two thirds of the lifetime; a failure is retried after a
 * jittered, doubling delay. The state lives in the store, so a restart
 * continues where it was instead of ordering everything again.
 */
export class AcmeManager {
  private timer: NodeJS.Timeout | undefined;
  private turn: Promise<void> = Promise.resolve();
  private client: acme.Client | undefined;
  private stopped = false;

  constructor(private readonly deps: AcmeManagerDeps) {
    const { caFile } = deps.settings;
    // Trusted by acme-client's own axios instance only, never process-wide.
    if (caFile) acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(caFile) });
  }

  start(): void {
    const tick = () => {
      this.turn = this.runTurn().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.deps.settings.pollMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.turn;
  }

  private async runTurn(): Promise<void> {
    const { store, logger, isLeader, tlsDefault } = this.deps;
    if (!isLeader()) return;
    try {
      await store.pruneAcmeStates();
      for (const due of await store.acmeDue(tlsDefault === "automatic", new Date(), PER_TURN)) {
        if (this.stopped || !isLeader()) break;
        await this.order(due);
      }
      await this.report();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "ACME turn failed; trying again next turn");
    }
  }

  private async order({ tenantId, domain, state }: AcmeDue): Promise<void> {
    const { store, writer, secrets, metrics, logger } = this.deps;
    const started = new Date();
    const base: AcmeState = state ?? { name: domain, tenantId, state: "pending", reason: "", fingerprint: "", nextAttemptTime: started, failures: 0 };
    // Leased first: no other turn orders it meanwhile; a crash retries after the lease.
    await store.putAcmeState({ ...base, tenantId, state: base.state === "issued" ? "issued" : "pending", nextAttemptTime: new Date(started.getTime() + ORDER_LEASE_MS) });
    metrics.acmeOrders.inc();
    try {
      const client = await this.account();
      const [key, csr] = await acme.crypto.createCsr({ altNames: [domain] }, await acme.crypto.createPrivateEcdsaKey());
      const chain = await client.auto({
        csr,
        ...(this.deps.settings.email ? { email: this.deps.settings.email } : {}),
        termsOfServiceAgreed: true,
        challengePriority: ["http-01"],
        // The CA checks through the router; acme-client's own pre-check would resolve the name itself.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => writer.putChallenge(challenge.token, keyAuthorization, CHALLENGE_TTL_S),
        challengeRemoveFn: async (_authz, challenge) => writer.removeChallenge(challenge.token),
      });
      const parsed = parseCertificate(domain, chain, key.toString(), new Date());
      const { keyPem, ...rest } = parsed;
      await store.putCertificate(tenantId, { ...rest, name: domain, sealedKey: secrets.seal(keyPem) });
      const lifetime = parsed.notAfter.getTime() - parsed.notBefore.getTime();
      const renewAt = new Date(parsed.notBefore.getTime() + (lifetime * 2) / 3);
      await store.putAcmeState({ name: domain, tenantId, state: "issued", reason: "", expireTime: parsed.notAfter, fingerprint: parsed.fingerprint, nextAttemptTime: renewAt, failures: 0 });
      logger.info({ domain, tenantId, expireTime: parsed.notAfter.toISOString(), renewAt: renewAt.toISOString(), ms: Date.now() - started.getTime() }, "certificate issued over ACME");
    } catch (err) {
      metrics.acmeFailures.inc();
      const failures = base.failures + 1;
      const reason = describe(err);
      const { retryMs, maxBackoffMs } = this.deps.settings;
      // Rate limited: at least an hour, whatever the back-off says.
      const floor = /rateLimited|too many/i.test(reason) ? 3_600_000 : 0;
      const backoff = Math.max(floor, Math.min(maxBackoffMs, retryMs * 2 ** (failures - 1)));
      const delay = Math.round(backoff / 2 + (Math.random() * backoff) / 2);
      // A renewal that fails keeps the certificate being served (and its expiry shown).
      await store.putAcmeState({ ...base, tenantId, state: "failed", reason, nextAttemptTime: new Date(Date.now() + delay), failures });
      logger.warn({ domain, tenantId, failures, retryInMs: delay, reason }, "ACME order failed");
    }
  }

  /** The ACME account, made once per process with a key kept in the data dir. */
  private async account(): Promise<acme.Client> {
    if (this.client) return this.client;
    const file = join(this.deps.dataDir, "acme-account-key.pem");
    let accountKey: Buffer;
    try {
      accountKey = readFileSync(file);
    } catch {
      accountKey = await acme.crypto.createPrivateEcdsaKey();
      // With MySQL nothing else needs the data dir, so it may not exist yet.
      mkdirSync(this.deps.dataDir, { recursive: true });
      writeFileSync(file, accountKey, { mode: 0o600 });
    }
    this.client = new acme.Client({ directoryUrl: this.deps.settings.directoryUrl, accountKey });
    return this.client;
  }

  private async report(): Promise<void> {
    const { byState, earliestExpiry } = await this.deps.store.certificateSummary();
    for (const state of ["pending", "issued", "failed"]) this.deps.metrics.acmeCertificates.set({ state }, byState[state] ?? 0);
    this.deps.metrics.certificateExpiryDays.set(earliestExpiry ? (earliestExpiry.getTime() - Date.now()) / 86_400_000 : 0);
  }
}

/** An ACME problem's detail, or the error's message; short enough to show on a mapping. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.slice(0, 1000);
}
