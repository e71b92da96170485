import { fromSnapshot, toSnapshot } from "./mapping-snapshot.js";
import { routed, type AuditInput } from "./mapping-writes.js";
import type { AuditAction, AuditQuery, AuditRecord, KeyRecord, ListQuery, MappingInput, MappingRecord, MappingStatus, Role, RouteRow, TenantRecord, TenantSettings, WriteContext } from "./store.js";

/** The columns both stores keep for a mapping, in the order both read them. */
export const MAPPING_COLUMNS = "id, tenant_id, domain, backends, labels, status, revision, create_time, update_time";

/** The writes of a mapping row; bind with mappingValues. */
export const INSERT_MAPPING = "INSERT INTO mappings (domain, backends, labels, status, update_time, tenant_id, create_time, revision) VALUES (?, ?, ?, ?, ?, ?, ?, 0)";
export const UPDATE_MAPPING = "UPDATE mappings SET domain = ?, backends = ?, labels = ?, status = ?, update_time = ? WHERE id = ?";

/** The values a mapping row's write sets first (INSERT_MAPPING and UPDATE_MAPPING share them), times as the driver wants. */
export const mappingValues = (m: MappingInput, time: Date | number): unknown[] => [m.domain, JSON.stringify(m.backends), JSON.stringify(m.labels), m.status, time];

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
    createTime: new Date(row.create_time),
    updateTime: new Date(row.update_time),
    revision: BigInt(row.revision),
  };
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

