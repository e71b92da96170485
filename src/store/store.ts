import type { LabelRequirement } from "../domain/label-selector.js";

/** A mapping as the store holds it. */
export interface MappingRecord {
  /** Internal row id: insert order, and the position a page token resumes after. */
  id: bigint;
  tenantId: string;
  domain: string;
  backends: string[];
  labels: Record<string, string>;
  status: MappingStatus;
  /** "": the operator's default. */
  tls: TlsMode;
  createTime: Date;
  updateTime: Date;
  /** The id of the outbox row written with the last change. */
  revision: bigint;
}

/** A mapping as reads return it: with where its automatic certificate stands, when the ACME manager keeps a state for it. */
export interface MappingView extends MappingRecord {
  certificate?: CertificateProgress;
}

/** The part of an ACME state the API shows with a mapping. */
export type CertificateProgress = Pick<AcmeState, "state" | "reason" | "expireTime" | "nextAttemptTime">;

/** The user-settable part of a mapping, already normalised and validated. */
export interface MappingInput {
  domain: string;
  backends: string[];
  labels: Record<string, string>;
  status: MappingStatus;
  tls: TlsMode;
}

/** Where a mapping's certificate comes from; "" leaves it to DYNROUTE_TLS_DEFAULT. */
export type TlsMode = "" | "automatic" | "manual";

/** Where a mapping's automatic certificate stands (kept by the ACME manager). */
export interface AcmeState {
  name: string;
  tenantId: string;
  state: "pending" | "issued" | "failed";
  reason: string;
  /** Of the certificate issued last, if any. */
  expireTime?: Date;
  fingerprint: string;
  /** When to order next: a retry, or the renewal. */
  nextAttemptTime: Date;
  /** Failed orders in a row. */
  failures: number;
}

/** A mapping that wants an automatic certificate now. */
export interface AcmeDue {
  tenantId: string;
  domain: string;
  /** Its state so far (failures count on), if any. */
  state?: AcmeState;
}

/** What the ACME manager (relay leader only) keeps in the store beside the certificates. */
export interface AcmeStore {
  /**
   * Up to `limit` mappings asking for automatic TLS (or leaving it to the
   * default, when that is automatic), not wildcards, whose next attempt is
   * due and whose certificate, if any, is the one ACME issued (an uploaded
   * one is left alone).
   */
  acmeDue(defaultAutomatic: boolean, now: Date, limit: number): Promise<AcmeDue[]>;
  putAcmeState(state: AcmeState): Promise<void>;
  /** States by name, for the given names. */
  acmeStates(names: readonly string[]): Promise<Map<string, AcmeState>>;
  /** Forgets the states of names no longer mapped; returns how many. */
  pruneAcmeStates(): Promise<number>;
  /** Counts for metrics: certificates by state, and the earliest expiry of any stored certificate. */
  certificateSummary(): Promise<{ byState: Record<string, number>; earliestExpiry: Date | null }>;
}

/** A disabled mapping keeps its state but is not routed (routers answer 503). */
export type MappingStatus = "enabled" | "disabled";

export interface ListQuery {
  offset: number;
  limit: number;
  /** Resume after this row id (keyset paging); constant cost at any depth. */
  afterId?: bigint;
  /** Every requirement must hold (an empty value matches a label set to ""). */
  labels: LabelRequirement[];
  /** Normalised domain: matches itself and any name ending in ".<suffix>". */
  domainSuffix?: string;
  /** Lower case: matches domains that contain it. */
  domainContains?: string;
  status?: MappingStatus;
  withTotal: boolean;
}

export interface ListResult {
  records: MappingView[];
  /** More rows match after the last one returned. */
  hasMore: boolean;
  total?: number;
}

/**
 * Source of truth for mappings. Every write commits the mapping change and
 * its outbox rows (the full new state of each affected domain) in one
 * transaction. Failures are StoreErrors.
 */
export interface MappingStore {
  create(tenantId: string, input: MappingInput, ctx: WriteContext): Promise<MappingRecord>;
  get(tenantId: string, domain: string): Promise<MappingView>;
  list(tenantId: string, query: ListQuery): Promise<ListResult>;
  /**
   * Replaces the mapping with what `change` returns for the current state,
   * read under the row lock (so read-modify-write is atomic). A different
   * domain renames it.
   */
  update(
    tenantId: string,
    domain: string,
    change: (current: MappingRecord) => MappingInput,
    expectedRevision: bigint | undefined,
    ctx: WriteContext,
  ): Promise<MappingRecord>;
  delete(tenantId: string, domain: string, expectedRevision: bigint | undefined, ctx: WriteContext): Promise<void>;
  /**
   * Creates all the mappings of one tenant in one transaction: all or none
   * (any taken domain fails the whole set). A dry run does every write and
   * rolls back, so it reports exactly what a real run would.
   */
  createMany(tenantId: string, inputs: readonly MappingInput[], opts: { dryRun: boolean; ctx: WriteContext }): Promise<MappingRecord[]>;
  /** Up to `limit` mappings of every tenant with row id above `afterId`, in id order. */
  scanMappings(afterId: bigint, limit: number): Promise<MappingRecord[]>;
  close(): Promise<void>;
}

/** Who writes, for the audit event recorded with the write. */
export interface WriteContext {
  keyId: string;
  requestId: string;
  /** The client's Idempotency-Key (scoped to keyId) and a digest of its request: a repeat gets the first answer. */
  idempotency?: { key: string; fingerprint: string };
}

export type Role = "admin" | "editor" | "viewer";

/** An API key as stored: only a hash of its secret. */
export interface KeyRecord {
  id: string;
  /** Empty for admin keys. */
  tenantId: string;
  role: Role;
  description: string;
  /** SHA-256 of the secret. */
  secretHash: Buffer;
  createTime: Date;
  expireTime?: Date;
  lastUsedTime?: Date;
  revokeTime?: Date;
}

export interface KeyStore {
  insertKey(key: KeyRecord): Promise<void>;
  findKey(id: string): Promise<KeyRecord | undefined>;
  /** Newest first. */
  listKeys(query: { tenantId?: string; showRevoked: boolean }): Promise<KeyRecord[]>;
  /** Marks the key revoked (once); undefined when there is no such key. */
  revokeKey(id: string, now: Date): Promise<KeyRecord | undefined>;
  touchKey(id: string, now: Date): Promise<void>;
}

export type AuditAction = "create" | "update" | "rename" | "delete";

/** One committed mapping write, recorded in its transaction. */
export interface AuditRecord {
  id: bigint;
  time: Date;
  tenantId: string;
  keyId: string;
  action: AuditAction;
  domain: string;
  previousDomain: string;
  before?: MappingRecord;
  after?: MappingRecord;
  requestId: string;
}

export interface AuditQuery {
  /** Undefined: every tenant. */
  tenantId?: string;
  /** Events whose domain, before or after, is this. */
  domain?: string;
  /** Older than this event id (keyset paging, newest first). */
  beforeId?: bigint;
  limit: number;
}

export interface AuditStore {
  listAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Removes events older than `before`; returns how many. */
  pruneAudit(before: Date): Promise<number>;
}

export interface IdempotencyStore {
  /** Forgets idempotency keys recorded before `before`; returns how many. */
  pruneIdempotency(before: Date): Promise<number>;
}

/** What admins set per tenant. */
export interface TenantSettings {
  /** Normalised zones; empty: any name the global rules allow. */
  zones: string[];
  /** 0: no limit. */
  mappingQuota: number;
}

export interface TenantRecord extends TenantSettings {
  tenantId: string;
  mappingCount: number;
}

export interface TenantStore {
  /** Settings (defaults when none were set) and usage. */
  getTenant(tenantId: string): Promise<TenantRecord>;
  putTenant(tenantId: string, settings: TenantSettings): Promise<TenantRecord>;
  /** Tenants with settings or mappings, by id. */
  listTenants(): Promise<TenantRecord[]>;
}

/** A certificate as a write stores it: parsed and checked, its private key sealed (see SecretBox). */
export interface CertificateInput {
  /** The normalised name it is served for (a host or "*.parent"). */
  name: string;
  chainPem: string;
  sealedKey: string;
  dnsNames: string[];
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

export interface CertificateRecord extends CertificateInput {
  tenantId: string;
  updateTime: Date;
  /** The id of the certificate outbox row written with the last change. */
  revision: bigint;
}

/** Source of truth for certificates; writes go through the same rules and transactions as mappings. */
export interface CertificateStore {
  /** Stores or replaces the certificate of a name the tenant owns (every DNS name in it too). */
  putCertificate(tenantId: string, input: CertificateInput): Promise<CertificateRecord>;
  getCertificate(tenantId: string, name: string): Promise<CertificateRecord>;
  /** By name. */
  /** Up to `limit` of the tenant's certificates with names after `afterName` (""), by name. */
  listCertificates(tenantId: string, afterName: string, limit: number): Promise<CertificateRecord[]>;
  deleteCertificate(tenantId: string, name: string): Promise<void>;
}

/** One change of one name's certificate, as the certificate outbox carries it: the full new state. */
export interface CertificateChange {
  name: string;
  /** The outbox row id: the name's certificate revision after this change. */
  revision: bigint;
  /** null: no certificate for the name any more. */
  state: { chainPem: string; sealedKey: string } | null;
}

/** A stored certificate as routers need it, with its row id for resuming a scan. */
export interface CertificateRow extends CertificateChange {
  id: bigint;
  state: { chainPem: string; sealedKey: string };
}

/** One change of one domain, as the outbox carries it: the full new state. */
export interface RouteChange {
  domain: string;
  /** The outbox row id: the domain's revision after this change. */
  revision: bigint;
  /** null: the domain is no longer mapped. */
  backends: string[] | null;
  /** When the change was written (for lag measurements). */
  committedAt?: Date;
}

/** What one committed write appended to the outboxes. */
export interface CommittedChanges {
  routes: RouteChange[];
  /** Whether it changed a certificate too (a mapping write may drop the certificates of names it gave up). */
  certificates: boolean;
}

/** A live mapping as the router needs it, with its row id for resuming a scan. */
export interface RouteRow extends RouteChange {
  id: bigint;
  backends: string[];
}

/** Held by at most one daemon at a time across all replicas; lost when its connection dies. */
export interface RelayLease {
  /** False once the lease is gone or could not be renewed in time: stop leading. */
  held(): boolean;
  /** Gives the lease up at once, so a standby need not wait for it to expire. */
  release(): Promise<void>;
}

export interface OutboxStats {
  depth: number;
  /** Age of the oldest unapplied change; null when there is none. */
  oldestAgeMs: number | null;
}

/** What the relay needs from the source of truth. */
export interface OutboxStore {
  /**
   * In one transaction: lock up to `limit` of the oldest unapplied changes
   * (skipping rows another relay holds), hand them to `apply`, and delete them
   * once it resolves. If it throws, nothing is deleted. Returns the row count.
   * With `lease`, the transaction first checks (and renews) it, and fails
   * without applying anything when another relay took it over meanwhile.
   */
  drainOutbox(limit: number, apply: (changes: RouteChange[]) => Promise<void>, lease?: RelayLease): Promise<number>;
  outboxStats(): Promise<OutboxStats>;
  /** Up to `limit` mappings with row id above `afterId`, in id order. */
  scanRoutes(afterId: bigint, limit: number): Promise<RouteRow[]>;
  /** The subset of `domains` that are mapped now. */
  mappedDomains(domains: readonly string[]): Promise<Set<string>>;
  /** Like drainOutbox (fenced alike by `lease`), for the certificate outbox. */
  drainCertificateOutbox(limit: number, apply: (changes: CertificateChange[]) => Promise<void>, lease?: RelayLease): Promise<number>;
  /** Up to `limit` certificates with row id above `afterId`, in id order. */
  scanCertificates(afterId: bigint, limit: number): Promise<CertificateRow[]>;
  /** The subset of `names` that have a certificate now. */
  certifiedNames(names: readonly string[]): Promise<Set<string>>;
  /** The relay lease for `ttlMs` (renewed while held) if no one else holds it, else undefined. */
  tryAcquireRelayLease(ttlMs: number): Promise<RelayLease | undefined>;
  /**
   * Calls `listener` after every committed write with what it appended to the
   * outboxes: the relay applies its route changes and drains at once.
   */
  onCommit(listener: (changes: CommittedChanges) => void): void;
}

export type StoreErrorCode = "not_found" | "already_exists" | "failed_precondition" | "permission_denied" | "resource_exhausted" | "unavailable";

export class StoreError extends Error {
  override name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const notFound = (domain: string) => new StoreError("not_found", `mapping ${domain} not found`);
export const certificateNotFound = (name: string) => new StoreError("not_found", `certificate ${name} not found`);
