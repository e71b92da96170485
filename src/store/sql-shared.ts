import type { ListQuery, MappingRecord } from "./store.js";

/** The columns both stores keep for a mapping, in the order both read them. */
export const MAPPING_COLUMNS = "id, tenant_id, domain, backends, labels, revision, create_time, update_time";

/** A mappings row as both drivers return it; times are Date (mysql2) or epoch ms (SQLite). */
export interface MappingRow {
  id: number | string;
  tenant_id: string;
  domain: string;
  backends: string;
  labels: string;
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
