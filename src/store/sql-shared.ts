import { fromSnapshot, toSnapshot } from "./mapping-snapshot.js";
import { routed, type AuditInput } from "./mapping-writes.js";
import type { AcmeDue, AcmeState, AuditAction, AuditQuery, AuditRecord, CertificateChange, CertificateInput, CertificateRecord, KeyRecord, ListQuery, MappingInput, MappingRecord, MappingStatus, MappingView, Role, RouteRow, TenantRecord, TenantSettings, TlsMode, WriteContext } from "./store.js";

/** The columns both stores keep for a mapping, in the order both read them. */
export const MAPPING_COLUMNS = "id, tenant_id, domain, backends, labels, status, tls_mode, revision, create_time, update_time";

/** The writes of a mapping row; bind with mappingValues. */
export const INSERT_MAPPING = "INSERT INTO mappings (domain, backends, labels, status, tls_mode, update_time, tenant_id, create_time, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)";
export const UPDATE_MAPPING = "UPDATE mappings SET domain = ?, backends = ?, labels = ?, status = ?, tls_mode = ?, update_time = ? WHERE id = ?";

/** The values a mapping row's write sets first (INSERT_MAPPING and UPDATE_MAPPING share them), times as the driver wants. */
export const mappingValues = (m: MappingInput, time: Date | number): unknown[] => [m.domain, JSON.stringify(m.backends), JSON.stringify(m.labels), m.status, m.tls, time];

/** Mappings in id order from a position, as rowToRoute turns them into routes. */
export const SCAN_ROUTES = "SELECT id, domain, backends, status, revision FROM mappings WHERE id > ? ORDER BY id LIMIT ?";

export const rowToRoute = (r: Pick<MappingRow, "id" | "domain" | "backends" | "status" | "revision">): RouteRow => ({
  id: BigInt(r.id),
  domain: r.domain,
  backends: routed({ backends: JSON.parse(r.backends), status: r.status as MappingStatus }),
  revision: BigInt(r.revision),
});

/** A mappings row as both drivers return it; times are Date (mysql2) or epoch ms (SQLite). */
export interface MappingRow {
  id: number | string;
  tenant_id: string;
  domain: string;
  backends: string;
  labels: string;
  status: string;
  tls_mode: string;
  revision: number | string;
  create_time: Date | number;
  update_time: Date | number;
}

export function rowToRecord(row: MappingRow): MappingRecord {
  return {
    id: BigInt(row.id),
    tenantId: row.tenant_id,
    domain: row.domain,
    backends: JSON.parse(row.backends),
    labels: JSON.parse(row.labels),
    status: row.status as MappingStatus,
    tls: row.tls_mode as TlsMode,
    createTime: new Date(row.create_time),
    updateTime: new Date(row.update_time),
    revision: BigInt(row.revision),
  };
}

/**
 * The SELECT of mappings as reads return them, each with its certificate's
 * ACME state when there is one of its own tenant: one round trip, not one
 * more for the states. Follow with FROM <mappings or a derived table> m.
 */
export const SELECT_VIEW = `SELECT ${MAPPING_COLUMNS.split(", ").map((c) => `m.${c}`).join(", ")}, a.state AS acme_state, a.reason AS acme_reason, a.expire_time AS acme_expire_time, a.next_attempt_time AS acme_next_attempt_time`;
/** What joins each mapping m to its ACME state in SELECT_VIEW. */
export const JOIN_ACME = "LEFT JOIN acme_states a ON a.name = m.domain AND a.tenant_id = m.tenant_id";

/** A SELECT_VIEW row as both drivers return it. */
export interface MappingViewRow extends MappingRow {
  acme_state: string | null;
  acme_reason: string | null;
  acme_expire_time: Date | number | null;
  acme_next_attempt_time: Date | number | null;
}

export function rowToView(row: MappingViewRow): MappingView {
  const record: MappingView = rowToRecord(row);
  if (row.acme_state !== null) {
    record.certificate = {
      state: row.acme_state as AcmeState["state"],
      reason: row.acme_reason!,
      ...(row.acme_expire_time === null ? {} : { expireTime: new Date(row.acme_expire_time) }),
      nextAttemptTime: new Date(row.acme_next_attempt_time!),
    };
  }
  return record;
}

/**
 * The WHERE terms of a list: `filter` for counting, `page` for the page
 * itself (keyset position added). `labelValue` is the dialect's SQL for a
 * label's value given a JSON path parameter, e.g. "json_extract(labels, ?)".
 */
export function listConditions(tenantId: string, q: ListQuery, labelValue: string) {
  const terms = ["tenant_id = ?"];
  const params: unknown[] = [tenantId];
  if (q.domainSuffix !== undefined) {
    // Normalised domains hold no LIKE metacharacters ('%', '_').
    terms.push("(domain = ? OR domain LIKE ?)");
    params.push(q.domainSuffix, `%.${q.domainSuffix}`);
  }
  if (q.domainContains !== undefined) {
    terms.push("domain LIKE ? ESCAPE '!'");
    params.push(`%${q.domainContains.replace(/[!%_]/g, "!$&")}%`);
  }
  if (q.status !== undefined) {
    terms.push("status = ?");
    params.push(q.status);
  }
  for (const r of q.labels) {
    // Keys hold only [A-Za-z0-9._-] (checked when parsed), so quoting them in the JSON path is safe.
    const path = `$."${r.key}"`;
    switch (r.op) {
      case "in":
        terms.push(`${labelValue} IN (${r.values.map(() => "?").join(", ")})`);
        params.push(path, ...r.values);
        break;
      case "notin":
        terms.push(`(${labelValue} IS NULL OR ${labelValue} NOT IN (${r.values.map(() => "?").join(", ")}))`);
        params.push(path, path, ...r.values);
        break;
      case "exists":
        terms.push(`${labelValue} IS NOT NULL`);
        params.push(path);
        break;
      case "absent":
        terms.push(`${labelValue} IS NULL`);
        params.push(path);
        break;
    }
  }
  const filter = { where: terms.join(" AND "), params };
  const page = q.afterId === undefined ? filter : { where: `${filter.where} AND id > ?`, params: [...params, q.afterId.toString()] };
  return { filter, page };
}

const toDate = (v: Date | number) => new Date(v);
const optionalDate = (v: Date | number | null) => (v === null ? undefined : new Date(v));

/** Statements whose SQL both dialects share; each store binds its own time values. */
export const KEY_COLUMNS = "id, tenant_id, role, description, secret_hash, create_time, expire_time, last_used_time, revoke_time";
export const INSERT_KEY = `INSERT INTO api_keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)`;
export const AUDIT_COLUMNS = "id, time, tenant_id, key_id, action, domain, previous_domain, before_state, after_state, request_id";
export const INSERT_AUDIT =
  "INSERT INTO audit_events (time, tenant_id, key_id, action, domain, previous_domain, before_state, after_state, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
export const INSERT_IDEMPOTENCY = "INSERT INTO idempotency (scope, idem_key, fingerprint, result, created_at) VALUES (?, ?, ?, NULL, ?)";
export const SELECT_IDEMPOTENCY = "SELECT fingerprint, result FROM idempotency WHERE scope = ? AND idem_key = ?";
export const SETTLE_IDEMPOTENCY = "UPDATE idempotency SET result = ? WHERE scope = ? AND idem_key = ?";
export const TENANT_COLUMNS = "tenant_id, zones, mapping_quota";
/** Every tenant with settings or mappings, with its mapping count. */
export const LIST_TENANTS = `SELECT ids.tenant_id, t.zones, t.mapping_quota, (SELECT COUNT(*) FROM mappings m WHERE m.tenant_id = ids.tenant_id) AS mapping_count
  FROM (SELECT tenant_id FROM tenants UNION SELECT DISTINCT tenant_id FROM mappings) ids LEFT JOIN tenants t ON t.tenant_id = ids.tenant_id ORDER BY ids.tenant_id`;

/** A domain a tenant other than `tenantId` maps among `names` or (given) under `subtree`. */
export function othersClaimQuery(tenantId: string, names: readonly string[], subtree: string | undefined): { sql: string; params: unknown[] } {
  const terms: string[] = [];
  const params: unknown[] = [tenantId];
  if (names.length > 0) {
    terms.push(`domain IN (${names.map(() => "?").join(", ")})`);
    params.push(...names);
  }
  if (subtree !== undefined) {
    // Normalised domains hold no LIKE metacharacters ('%', '_'). Scans: only wildcard claims ask this.
    terms.push("domain LIKE ?");
    params.push(`%.${subtree}`);
  }
  if (terms.length === 0) terms.push("1 = 0");
  return { sql: `SELECT domain FROM mappings WHERE tenant_id <> ? AND (${terms.join(" OR ")}) LIMIT 1`, params };
}

export interface KeyRow {
  id: string;
  tenant_id: string;
  role: string;
  description: string;
  secret_hash: Buffer;
  create_time: Date | number;
  expire_time: Date | number | null;
  last_used_time: Date | number | null;
  revoke_time: Date | number | null;
}

export function rowToKey(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    role: row.role as Role,
    description: row.description,
    secretHash: Buffer.from(row.secret_hash),
    createTime: toDate(row.create_time),
    expireTime: optionalDate(row.expire_time),
    lastUsedTime: optionalDate(row.last_used_time),
    revokeTime: optionalDate(row.revoke_time),
  };
}

/** The values of INSERT_KEY, times as the store's driver wants them. */
export function keyValues(key: KeyRecord, time: (d: Date) => Date | number): unknown[] {
  return [key.id, key.tenantId, key.role, key.description, key.secretHash, time(key.createTime), key.expireTime ? time(key.expireTime) : null];
}

/** WHERE and parameters of a key listing. */
export function keyConditions(q: { tenantId?: string; showRevoked: boolean }): { where: string; params: unknown[] } {
  const terms = ["1 = 1"];
  const params: unknown[] = [];
  if (q.tenantId !== undefined) {
    terms.push("tenant_id = ?");
    params.push(q.tenantId);
  }
  if (!q.showRevoked) terms.push("revoke_time IS NULL");
  return { where: terms.join(" AND "), params };
}

export interface AuditRow {
  id: number | string;
  time: Date | number;
  tenant_id: string;
  key_id: string;
  action: string;
  domain: string;
  previous_domain: string;
  before_state: string | null;
  after_state: string | null;
  request_id: string;
}

export function rowToAudit(row: AuditRow): AuditRecord {
  return {
    id: BigInt(row.id),
    time: toDate(row.time),
    tenantId: row.tenant_id,
    keyId: row.key_id,
    action: row.action as AuditAction,
    domain: row.domain,
    previousDomain: row.previous_domain,
    before: row.before_state === null ? undefined : fromSnapshot(row.before_state),
    after: row.after_state === null ? undefined : fromSnapshot(row.after_state),
    requestId: row.request_id,
  };
}

/** The values of INSERT_AUDIT. */
export function auditValues(e: AuditInput, ctx: WriteContext, time: Date | number): unknown[] {
  const snapshot = (r?: MappingRecord) => (r ? toSnapshot(r) : null);
  return [time, e.tenantId, ctx.keyId, e.action, e.domain, e.previousDomain, snapshot(e.before), snapshot(e.after), ctx.requestId];
}

/** WHERE and parameters of an audit listing, newest first. */
export function auditConditions(q: AuditQuery): { where: string; params: unknown[] } {
  const terms = ["1 = 1"];
  const params: unknown[] = [];
  if (q.tenantId !== undefined) {
    terms.push("tenant_id = ?");
    params.push(q.tenantId);
  }
  if (q.domain !== undefined) {
    terms.push("(domain = ? OR previous_domain = ?)");
    params.push(q.domain, q.domain);
  }
  if (q.beforeId !== undefined) {
    terms.push("id < ?");
    params.push(q.beforeId.toString());
  }
  return { where: terms.join(" AND "), params };
}

export interface TenantRow {
  tenant_id: string;
  zones: string | null;
  mapping_quota: number | string | null;
  mapping_count?: number | string;
}

export function rowToTenant(row: TenantRow): TenantRecord {
  return {
    tenantId: row.tenant_id,
    zones: row.zones === null ? [] : JSON.parse(row.zones),
    mappingQuota: Number(row.mapping_quota ?? 0),
    mappingCount: Number(row.mapping_count ?? 0),
  };
}

export const rowToSettings = (row: TenantRow): TenantSettings => ({ zones: JSON.parse(row.zones ?? "[]"), mappingQuota: Number(row.mapping_quota ?? 0) });


/** The columns both stores keep for a certificate, in the order both read them. */
export const CERTIFICATE_COLUMNS = "id, tenant_id, name, chain_pem, sealed_key, dns_names, issuer, not_before, not_after, fingerprint, revision, update_time";
/** A page of a tenant's certificates by name (params: tenant, the last name of the page before or "", limit). */
export const LIST_CERTIFICATES = `SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?`;

export interface CertificateRow {
  id: number | string;
  tenant_id: string;
  name: string;
  chain_pem: string;
  sealed_key: string;
  dns_names: string;
  issuer: string;
  not_before: Date | number;
  not_after: Date | number;
  fingerprint: string;
  revision: number | string;
  update_time: Date | number;
}

export function rowToCertificate(row: CertificateRow): CertificateRecord {
  return {
    tenantId: row.tenant_id,
    name: row.name,
    chainPem: row.chain_pem,
    sealedKey: row.sealed_key,
    dnsNames: JSON.parse(row.dns_names),
    issuer: row.issuer,
    notBefore: new Date(row.not_before),
    notAfter: new Date(row.not_after),
    fingerprint: row.fingerprint,
    revision: BigInt(row.revision),
    updateTime: new Date(row.update_time),
  };
}

/** The values of CERTIFICATE_INSERT_COLUMNS, times in the dialect's form. */
export const certificateValues = <T>(tenantId: string, c: CertificateInput, now: T, time: (d: Date) => T) =>
  [tenantId, c.name, c.chainPem, c.sealedKey, JSON.stringify(c.dnsNames), c.issuer, time(c.notBefore), time(c.notAfter), c.fingerprint, now] as const;
export const CERTIFICATE_INSERT_COLUMNS = "tenant_id, name, chain_pem, sealed_key, dns_names, issuer, not_before, not_after, fingerprint, revision, update_time";
export const CERTIFICATE_INSERT_VALUES = "?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?";

/** A certificate_outbox row as both drivers return it. */
export interface CertificateOutboxRow {
  id: number | string;
  name: string;
  chain_pem: string | null;
  sealed_key: string | null;
}

export const toCertificateChange = (r: CertificateOutboxRow): CertificateChange => ({
  name: r.name,
  revision: BigInt(r.id),
  state: r.chain_pem === null || r.sealed_key === null ? null : { chainPem: r.chain_pem, sealedKey: r.sealed_key },
});

/** The ACME state columns, in the order both stores read them. */
export const ACME_COLUMNS = "name, tenant_id, state, reason, expire_time, fingerprint, next_attempt_time, failures";

export interface AcmeRow {
  name: string;
  tenant_id: string;
  state: string;
  reason: string;
  expire_time: Date | number | null;
  fingerprint: string;
  next_attempt_time: Date | number;
  failures: number;
}

export function rowToAcme(r: AcmeRow): AcmeState {
  return {
    name: r.name,
    tenantId: r.tenant_id,
    state: r.state as AcmeState["state"],
    reason: r.reason,
    ...(r.expire_time === null ? {} : { expireTime: new Date(r.expire_time) }),
    fingerprint: r.fingerprint,
    nextAttemptTime: new Date(r.next_attempt_time),
    failures: Number(r.failures),
  };
}

export const acmeValues = <T>(a: AcmeState, time: (d: Date) => T) =>
  [a.name, a.tenantId, a.state, a.reason, a.expireTime ? time(a.expireTime) : null, a.fingerprint, time(a.nextAttemptTime), a.failures] as const;

/**
 * Mappings due for an order (see AcmeStore.acmeDue), with their state's
 * columns (NULL when none). Params: default automatic (1/0), now, limit.
 * Normalised domains hold no LIKE metacharacters.
 */
export const ACME_DUE = `SELECT m.tenant_id AS m_tenant_id, m.domain AS m_domain, ${ACME_COLUMNS.split(", ").map((c) => `a.${c}`).join(", ")}
  FROM mappings m
  LEFT JOIN acme_states a ON a.name = m.domain
  LEFT JOIN certificates c ON c.name = m.domain
  WHERE (m.tls_mode = 'automatic' OR (m.tls_mode = '' AND ? = 1))
    AND m.domain NOT LIKE '*.%'
    AND (a.name IS NULL OR a.next_attempt_time <= ?)
    AND (c.name IS NULL OR (a.name IS NOT NULL AND c.fingerprint = a.fingerprint))
  ORDER BY m.id LIMIT ?`;

/** The due rows of ACME_DUE as both drivers return them. */
export function rowsToDue(rows: Array<Record<string, unknown>>): AcmeDue[] {
  return rows.map((r) => ({
    tenantId: r.m_tenant_id as string,
    domain: r.m_domain as string,
    ...(r.name == null ? {} : { state: rowToAcme(r as unknown as AcmeRow) }),
  }));
}

export const CERTIFICATE_SUMMARY = "SELECT state, COUNT(*) AS n FROM acme_states GROUP BY state";
export const EARLIEST_EXPIRY = "SELECT MIN(not_after) AS earliest FROM certificates";
export const PRUNE_ACME = "DELETE FROM acme_states WHERE name NOT IN (SELECT domain FROM mappings)";
