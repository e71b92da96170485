import type { Statement } from "better-sqlite3";
import type { MappingViewRow } from "../sql-shared.js";

/** SELECT_VIEW's columns, in its order: viewRow reads them by position. */
const VIEW_COLUMNS = "id,tenant_id,domain,backends,labels,status,tls_mode,revision,create_time,update_time,acme_state,acme_reason,acme_expire_time,acme_next_attempt_time";

/**
 * A SELECT_VIEW statement in raw mode (rows as arrays). better-sqlite3 builds
 * a row object by setting its properties one by one, which took about 1 µs of
 * a 2.8 µs lookup of one mapping; viewRow names the values in one literal
 * instead. The statement's columns are checked, so a change to SELECT_VIEW
 * cannot shift them silently.
 */
export function rawViews(stmt: Statement): Statement {
  const columns = stmt.columns().map((c) => c.name).join(",");
  if (columns !== VIEW_COLUMNS) throw new Error(`SELECT_VIEW's columns are now ${columns}; update view-rows.ts`);
  return stmt.raw(true);
}

/** A raw SELECT_VIEW row as the shared row mapping (rowToView) reads it. */
export const viewRow = (r: unknown[]): MappingViewRow =>
  ({
    id: r[0],
    tenant_id: r[1],
    domain: r[2],
    backends: r[3],
    labels: r[4],
    status: r[5],
    tls_mode: r[6],
    revision: r[7],
    create_time: r[8],
    update_time: r[9],
    acme_state: r[10],
    acme_reason: r[11],
    acme_expire_time: r[12],
    acme_next_attempt_time: r[13],
  }) as MappingViewRow;
