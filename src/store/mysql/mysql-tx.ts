import type { PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";
import { domainTaken, type MappingTx } from "../mapping-writes.js";
import { MAPPING_COLUMNS, rowToRecord, type MappingRow } from "../sql-shared.js";
import { isDuplicate } from "./mysql-errors.js";

/** The write statements of one MySQL transaction on `conn`. */
export function mysqlTx(conn: PoolConnection): MappingTx {
  return {
    async insertMapping(tenantId, input, now) {
      const [res] = await conn
        .query<ResultSetHeader>("INSERT INTO mappings (tenant_id, domain, backends, labels, revision, create_time, update_time) VALUES (?, ?, ?, ?, 0, ?, ?)", [
          tenantId,
          input.domain,
          JSON.stringify(input.backends),
          JSON.stringify(input.labels),
          now,
          now,
        ])
        .catch(rethrowDuplicate(input.domain));
      return BigInt(res.insertId);
    },
    async lockMapping(domain) {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE domain = ? FOR UPDATE`, [domain]);
      return rows[0] && rowToRecord(rows[0] as MappingRow);
    },
    async updateMapping(id, next, now) {
      await conn
        .query("UPDATE mappings SET domain = ?, backends = ?, labels = ?, update_time = ? WHERE id = ?", [next.domain, JSON.stringify(next.backends), JSON.stringify(next.labels), now, id.toString()])
        .catch(rethrowDuplicate(next.domain));
    },
    async deleteMapping(id) {
      await conn.query("DELETE FROM mappings WHERE id = ?", [id.toString()]);
    },
    async appendOutbox(domain, backends, now) {
      const [res] = await conn.query<ResultSetHeader>("INSERT INTO outbox (domain, op, backends, created_at) VALUES (?, ?, ?, ?)", [
        domain,
        backends ? "upsert" : "delete",
        backends ? JSON.stringify(backends) : null,
        now,
      ]);
      return BigInt(res.insertId);
    },
    async setRevision(id, revision) {
      await conn.query("UPDATE mappings SET revision = ? WHERE id = ?", [revision.toString(), id.toString()]);
    },
  };
}

const rethrowDuplicate = (domain: string) => (err: unknown) => {
  throw isDuplicate(err) ? domainTaken(domain) : err;
};
