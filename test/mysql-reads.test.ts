// Concurrent GETs on MySQL share one SELECT per turn (MysqlStore.get): each must still get exactly what it would
// get alone, its own tenant's mapping or not found.
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createMysqlStore, type MysqlStore } from "../src/store/mysql/mysql-store.js";
import type { MappingInput, WriteContext } from "../src/store/store.js";
import { createDatabase, globalStatus, PrivateMariaDb } from "./harness/mariadb.js";

const input = (domain: string): MappingInput => ({ domain, backends: [`http://${domain}:1`], labels: {}, status: "enabled", tls: "" });
const ctx: WriteContext = { keyId: "admin", requestId: "r" };

let db: PrivateMariaDb;
let store: MysqlStore;
beforeAll(async () => {
  db = await PrivateMariaDb.start();
  store = createMysqlStore({ url: await createDatabase(db.adminUrl), logger: pino({ level: "silent" }) });
  await store.ready;
});
afterAll(async () => {
  await store.close();
  await db.destroy();
});

const executed = () => globalStatus(db.adminUrl, "Com_stmt_execute");

it("answers the GETs of one turn together, each with its own tenant's mapping or not found", async () => {
  const many = [...Array(100).keys()].map((i) => `n${i}.reads.example`);
  for (const domain of ["a.reads.example", "b.reads.example", ...many]) await store.create("t", input(domain), ctx);
  await store.create("other", input("theirs.reads.example"), ctx);

  const outcome = (tenant: string, domain: string) =>
    store.get(tenant, domain).then(
      (m) => `${m.tenantId}/${m.domain} ${m.backends.join()}`,
      (err: { code?: string }) => err.code ?? String(err),
    );
  const before = await executed();
  const answers = await Promise.all([
    outcome("t", "a.reads.example"),
    outcome("t", "a.reads.example"),
    outcome("t", "b.reads.example"),
    outcome("t", "theirs.reads.example"),
    outcome("other", "theirs.reads.example"),
    outcome("other", "a.reads.example"),
    outcome("t", "missing.reads.example"),
    ...many.map((d) => outcome("t", d)),
  ]);
  const statements = (await executed()) - before;

  expect(answers.slice(0, 7)).toEqual([
    "t/a.reads.example http://a.reads.example:1",
    "t/a.reads.example http://a.reads.example:1",
    "t/b.reads.example http://b.reads.example:1",
    "not_found",
    "other/theirs.reads.example http://theirs.reads.example:1",
    "not_found",
    "not_found",
  ]);
  expect(answers.slice(7)).toEqual(many.map((d) => `t/${d} http://${d}:1`));
  // 107 GETs of 104 names: a few SELECTs, not one each (SHOW STATUS itself is not a prepared statement).
  expect(statements).toBeLessThan(5);
});

it("a name no mapping can have is not found, and does not fail the other GETs of its turn", async () => {
  await store.create("t", input("kept.reads.example"), ctx);
  await store.create("other", input("theirs2.reads.example"), ctx);
  // The API sends normalised (ASCII) names only; the store's column is ASCII, and MariaDB refuses to compare it
  // with a name it cannot hold ("Illegal mix of collations"): in a shared SELECT, for every GET with it.
  const answers = await Promise.all(
    [
      ["t", "kept.reads.example"],
      ["t", "k\u00e9pt.reads.example"],
      ["t", "\ud800.reads.example"],
      ["other", "theirs2.reads.example"],
    ].map(([tenant, domain]) =>
      store.get(tenant!, domain!).then(
        (m) => `${m.tenantId}/${m.domain}`,
        (err: { code?: string }) => err.code ?? String(err),
      ),
    ),
  );
  expect(answers).toEqual(["t/kept.reads.example", "not_found", "not_found", "other/theirs2.reads.example"]);
});
