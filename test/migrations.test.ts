import { createConnection, type RowDataPacket } from "mysql2/promise";
import { pino } from "pino";
import { expect, inject, it } from "vitest";
import { createDatabase } from "./harness/mariadb.js";
import { createMysqlStore } from "../src/store/mysql/mysql-store.js";
import { migrations } from "../src/store/mysql/migrations.js";

it("applies each migration once when several replicas start at the same moment", async () => {
  const url = await createDatabase(inject("mysqlAdminUrl"));
  const stores = [...Array(4)].map(() => createMysqlStore({ url, logger: pino({ level: "silent" }) }));
  await Promise.all(stores.map((s) => s.ready));
  await Promise.all(stores.map((s) => s.create("t", { domain: `m${Math.random()}.example.org`.replace("0.", ""), backends: ["http://a:1"], labels: {}, status: "enabled", tls: "" }, { keyId: "test", requestId: "migrations" })));
  const conn = await createConnection(url);
  const [rows] = await conn.query<RowDataPacket[]>("SELECT version FROM schema_migrations ORDER BY version");
  const [mappings] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM mappings");
  await conn.end();
  expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
  expect(Number(mappings[0]!.n)).toBe(4);
  await Promise.all(stores.map((s) => s.close()));
});
