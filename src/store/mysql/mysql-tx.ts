import type { ResultSetHeader, RowDataPacket } from "mysql2/promise";
import { domainTaken, type MappingTx } from "../mapping-writes.js";
import { INSERT_MAPPING, mappingValues, UPDATE_MAPPING } from "../sql-shared.js";
import {
  CERTIFICATE_COLUMNS,
  CERTIFICATE_INSERT_COLUMNS,
  CERTIFICATE_INSERT_VALUES,
  certificateValues,
  rowToCertificate,
  type CertificateRow,
} from "../sql-shared.js";
import { auditValues, INSERT_AUDIT, INSERT_IDEMPOTENCY, SELECT_IDEMPOTENCY, SETTLE_IDEMPOTENCY, MAPPING_COLUMNS, othersClaimQuery, rowToRecord, rowToSettings, TENANT_COLUMNS, type MappingRow, type TenantRow } from "../sql-shared.js";
import { isDuplicate } from "./mysql-errors.js";
import type { Merge, TxConnection } from "./tx-connection.js";

/** The write statements of one MySQL transaction; those without a result are held for the next round trip. */
export function mysqlTx(conn: TxConnection): MappingTx {
  return {
    async insertMapping(tenantId, input, now) {
      const res = await conn.run<ResultSetHeader>(INSERT_MAPPING, [...mappingValues(input, now), tenantId, now], duplicateAs(input.domain));
      return BigInt(res.insertId);
    },
    async lockMapping(domain) {
      const rows = await conn.run<RowDataPacket[]>(`SELECT ${MAPPING_COLUMNS} FROM mappings WHERE domain = ? FOR UPDATE`, [domain]);
      return rows[0] && rowToRecord(rows[0] as MappingRow);
    },
    async updateMapping(id, next, now) {
      await conn.run(UPDATE_MAPPING, [...mappingValues(next, now), id.toString()], duplicateAs(next.domain));
    },
    async deleteMapping(id) {
      conn.hold("DELETE FROM mappings WHERE id = ?", [id.toString()]);
    },
    async appendOutbox(domain, backends, now) {
      const res = await conn.run<ResultSetHeader>("INSERT INTO outbox (domain, op, backends, created_at) VALUES (?, ?, ?, ?)", [
        domain,
        backends ? "upsert" : "delete",
        backends ? JSON.stringify(backends) : null,
        now,
      ]);
      return BigInt(res.insertId);
    },
    async setRevision(id, revision) {
      conn.merge(SET_REVISIONS, [id, revision]);
    },
    async lockNameTree(registrable, exclusive) {
      // InnoDB locks the row an INSERT finds: IGNORE takes a shared lock on it, ON DUPLICATE KEY UPDATE an
      // exclusive one (a row it inserts is locked exclusively either way, once per registrable domain).
      conn.lock(
        exclusive ? "INSERT INTO name_locks (name) VALUES (?) ON DUPLICATE KEY UPDATE name = name" : "INSERT IGNORE INTO name_locks (name) VALUES (?)",
        [registrable],
        false,
      );
    },
    async othersClaim(tenantId, names, subtree) {
      const q = othersClaimQuery(tenantId, names, subtree);
      const rows = await conn.run<RowDataPacket[]>(q.sql, q.params);
      return rows[0]?.domain as string | undefined;
    },
    async lockTenant(tenantId) {
      // Write transactions never change a tenant's settings.
      const rows = await conn.lock<RowDataPacket[]>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE tenant_id = ? FOR UPDATE`, [tenantId], true);
      return rows[0] && rowToSettings(rows[0] as TenantRow);
    },
    async countMappings(tenantId) {
      // A locking read: counts what is committed now, not the transaction's snapshot.
      const rows = await conn.run<RowDataPacket[]>("SELECT COUNT(*) AS n FROM mappings WHERE tenant_id = ? LOCK IN SHARE MODE", [tenantId]);
      return Number(rows[0]?.n ?? 0);
    },
    async appendAudit(event, ctx, now) {
      conn.merge(INSERT_AUDITS, auditValues(event, ctx, now));
    },
    async claimIdempotency(scope, key, fingerprint, now) {
      try {
        // Waits for a first attempt still in flight, then fails on its committed row.
        await conn.run(INSERT_IDEMPOTENCY, [scope, key, fingerprint, now]);
        return undefined;
      } catch (err) {
        if (!isDuplicate(err)) throw err;
      }
      const rows = await conn.run<RowDataPacket[]>(`${SELECT_IDEMPOTENCY} LOCK IN SHARE MODE`, [scope, key]);
      return rows[0] as { fingerprint: string; result: string | null };
    },
    async settleIdempotency(scope, key, result) {
      conn.hold(SETTLE_IDEMPOTENCY, [result, scope, key]);
    },
    async claimants(names) {
      if (names.length === 0) return new Map();
      // Shared locks: a mapping that makes a name the tenant's (or another's) cannot come or go before this write commits.
      const rows = await conn.run<RowDataPacket[]>("SELECT domain, tenant_id FROM mappings WHERE domain IN (?) LOCK IN SHARE MODE", [names]);
      return new Map(rows.map((r) => [r.domain as string, r.tenant_id as string]));
    },
    async lockCertificate(name) {
      const rows = await conn.run<RowDataPacket[]>(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE name = ? FOR UPDATE`, [name]);
      return rows[0] && rowToCertificate(rows[0] as CertificateRow);
    },
    async putCertificate(tenantId, input, now) {
      conn.hold(
        `INSERT INTO certificates (${CERTIFICATE_INSERT_COLUMNS}) VALUES (${CERTIFICATE_INSERT_VALUES}) ON DUPLICATE KEY UPDATE tenant_id = VALUES(tenant_id), chain_pem = VALUES(chain_pem), sealed_key = VALUES(sealed_key), dns_names = VALUES(dns_names), issuer = VALUES(issuer), not_before = VALUES(not_before), not_after = VALUES(not_after), fingerprint = VALUES(fingerprint), update_time = VALUES(update_time)`,
        [...certificateValues(tenantId, input, now, (d) => d)],
      );
    },
    async deleteCertificate(name) {
      conn.hold("DELETE FROM certificates WHERE name = ?", [name]);
    },
    async certificateNames(tenantId) {
      // A locking read: sees certificates committed since the transaction's snapshot.
      const rows = await conn.run<RowDataPacket[]>("SELECT name FROM certificates WHERE tenant_id = ? FOR UPDATE", [tenantId]);
      return rows.map((r) => r.name as string);
    },
    async appendCertificateOutbox(name, state, now) {
      const res = await conn.run<ResultSetHeader>("INSERT INTO certificate_outbox (name, chain_pem, sealed_key, created_at) VALUES (?, ?, ?, ?)", [
        name,
        state?.chainPem ?? null,
        state?.sealedKey ?? null,
        now,
      ]);
      return BigInt(res.insertId);
    },
    async setCertificateRevision(name, revision) {
      conn.hold("UPDATE certificates SET revision = ? WHERE name = ?", [revision.toString(), name]);
    },
  };
}

/**
 * The revisions a batch sets (of a group's creates: one per create), in one
 * statement. Nothing in a write transaction reads a revision it set.
 */
const SET_REVISIONS: Merge = {
  build: (parts, format) =>
    parts.length === 1
      ? format("UPDATE mappings SET revision = ? WHERE id = ?", [parts[0]![1], parts[0]![0]])
      : format(`UPDATE mappings SET revision = CASE id ${"WHEN ? THEN ? ".repeat(parts.length)}END WHERE id IN (?)`, [...parts.flat(), parts.map((p) => p[0])]),
};

const [AUDIT_HEAD, AUDIT_ROW] = INSERT_AUDIT.split(" VALUES ") as [string, string];
/** The audit events a batch appends, as one multi-row INSERT: nothing in a write transaction reads them. */
const INSERT_AUDITS: Merge = {
  build: (parts, format) => `${AUDIT_HEAD} VALUES ${parts.map((p) => format(AUDIT_ROW, p)).join(", ")}`,
};

/** The only unique key these statements can hit is the mapping's domain. */
const duplicateAs = (domain: string) => (err: unknown) => (isDuplicate(err) ? domainTaken(domain) : err);
