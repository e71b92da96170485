// Concurrent creates on MySQL share transactions (see WriteGroups): each must still get the outcome it
// would get alone, and nothing acknowledged may be lost when the database dies mid-group.
import { createConnection } from "mysql2/promise";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMysqlStore, type MysqlStore } from "../src/store/mysql/mysql-store.js";
import type { MappingInput, WriteContext } from "../src/store/store.js";
import { peekOutbox } from "./harness/convergence.js";
import { createDatabase, globalStatus, PrivateMariaDb } from "./harness/mariadb.js";

const input = (domain: string): MappingInput => ({ domain, backends: ["http://a:1"], labels: {}, status: "enabled", tls: "" });
const ctx = (idempotency?: WriteContext["idempotency"]): WriteContext => ({ keyId: "admin", requestId: "r", ...(idempotency && { idempotency }) });
const settle = (p: Promise<{ revision: bigint }>) => p.then((r) => r.revision, (err: { code?: string }) => err.code ?? String(err));

let db: PrivateMariaDb;
let url: string;
let store: MysqlStore;
beforeAll(async () => {
  db = await PrivateMariaDb.start();
  url = await createDatabase(db.adminUrl);
  store = createMysqlStore({ url, logger: pino({ level: "silent" }) });
  await store.ready;
});
afterAll(async () => {
  await store.close();
  await db.destroy();
});

const commits = () => globalStatus(db.adminUrl, "Com_commit");

describe("creates grouped into shared transactions", () => {
  // Two writes fill the group in flight and the one forming; the writes after them wait and go as one group.
  const fillers = (tag: string) => [0, 1].map((i) => store.create("t", input(`${tag}${i}.group.example`), ctx()));

  it("commit the others when a write fails having only read: a zone, another tenant's claim, a quota", async () => {
    await store.create("other", input("theirs.group.example"), ctx());
    await store.putTenant("zoned", { zones: ["zone.example"], mappingQuota: 0 });
    await store.putTenant("quota", { zones: [], mappingQuota: 3 });
    await store.create("quota", input("q0.group.example"), ctx());

    const before = await commits();
    const first = fillers("fa");
    const fresh = [...Array(10).keys()].map((i) => settle(store.create("t", input(`ok${i}.group.example`), ctx())));
    const underOthers = settle(store.create("t", input("a.theirs.group.example"), ctx()));
    const outsideZone = settle(store.create("zoned", input("x.group.example"), ctx()));
    const insideZone = settle(store.create("zoned", input("in.zone.example"), ctx()));
    const quota = [...Array(4).keys()].map((i) => settle(store.create("quota", input(`q${i + 1}.group.example`), ctx())));
    await Promise.all(first);

    const revisions = await Promise.all(fresh);
    expect(revisions.every((r) => typeof r === "bigint")).toBe(true);
    expect(await underOthers).toBe("already_exists");
    expect(await outsideZone).toBe("permission_denied");
    expect(typeof (await insideZone)).toBe("bigint");
    // One mapping already counted: two more fit under the quota of 3.
    const quotaOutcomes = await Promise.all(quota);
    expect(quotaOutcomes.filter((r) => typeof r === "bigint")).toHaveLength(2);
    expect(quotaOutcomes.filter((r) => r === "resource_exhausted")).toHaveLength(2);
    expect((await store.getTenant("quota")).mappingCount).toBe(3);
    // 19 writes shared transactions.
    expect((await commits()) - before).toBeLessThan(19);
    // Every write that succeeded is stored at its revision, which is its domain's only outbox row.
    const outbox = await peekOutbox(store);
    for (const [i, revision] of revisions.entries()) {
      expect((await store.get("t", `ok${i}.group.example`)).revision).toBe(revision);
      expect(outbox.filter((c) => c.domain === `ok${i}.group.example`).map((c) => c.revision)).toEqual([revision]);
    }
  });

  it("roll the group back when a write fails after writing: it leaves nothing behind", async () => {
    const first = fillers("fc");
    const fresh = [...Array(5).keys()].map((i) => settle(store.create("t", input(`okc${i}.group.example`), ctx())));
    const keyedOutsideZone = settle(store.create("zoned", input("y.group.example"), ctx({ key: "k-zone", fingerprint: "fz" })));
    await Promise.all(first);
    expect((await Promise.all(fresh)).every((r) => typeof r === "bigint")).toBe(true);
    expect(await keyedOutsideZone).toBe("permission_denied");
    // No key was kept with the failed write: its retry is decided again.
    expect(await settle(store.create("zoned", input("y.group.example"), ctx({ key: "k-zone", fingerprint: "fz" })))).toBe("permission_denied");
  });

  it("run each write alone again when a statement of the group fails: a taken domain, a replayed key", async () => {
    const replayed = await store.create("t", input("replayed.group.example"), ctx({ key: "k-done", fingerprint: "f1" }));
    const first = fillers("fb");
    const fresh = [...Array(5).keys()].map((i) => settle(store.create("t", input(`okb${i}.group.example`), ctx())));
    const twice = [0, 1].map(() => settle(store.create("t", input("twice.group.example"), ctx())));
    const othersName = settle(store.create("t", input("theirs.group.example"), ctx()));
    const sameKey = [0, 1].map(() => settle(store.create("t", input("keyed.group.example"), ctx({ key: "k-new", fingerprint: "f2" }))));
    const retried = settle(store.create("t", input("replayed.group.example"), ctx({ key: "k-done", fingerprint: "f1" })));
    await Promise.all(first);

    expect((await Promise.all(fresh)).every((r) => typeof r === "bigint")).toBe(true);
    const twiceOutcomes = await Promise.all(twice);
    expect(twiceOutcomes.filter((r) => typeof r === "bigint")).toHaveLength(1);
    expect(twiceOutcomes.filter((r) => r === "already_exists")).toHaveLength(1);
    expect(await othersName).toBe("already_exists");
    const keyed = await Promise.all(sameKey);
    expect(typeof keyed[0]).toBe("bigint");
    expect(keyed[1]).toBe(keyed[0]);
    expect(await retried).toBe(replayed.revision);
    expect((await store.get("t", "keyed.group.example")).revision).toBe(keyed[0]);
  });

  it("see a claim committed while a write of the group waited for its name lock, after another write of the group read", async () => {
    // Another tenant's wildcard, its name tree locked exclusively as a wildcard create locks it, not yet committed.
    const wildcard = await createConnection(url);
    await wildcard.query("START TRANSACTION");
    await wildcard.query("INSERT INTO name_locks (name) VALUES ('wild.example') ON DUPLICATE KEY UPDATE name = name");
    await wildcard.query(
      "INSERT INTO mappings (tenant_id, domain, backends, labels, status, tls_mode, revision, create_time, update_time) VALUES ('w', '*.wild.example', '[]', '{}', 'enabled', '', 0, NOW(3), NOW(3))",
    );
    const first = fillers("fe");
    // In one group: the first read of the transaction, then names under the wildcard: the name lock of the first
    // waits for it, the second shares that lock (one statement for both).
    const before = settle(store.create("t", input("oke.group.example"), ctx()));
    const under = [settle(store.create("t", input("b.wild.example"), ctx())), settle(store.create("u", input("c.wild.example"), ctx()))];
    // The group's statement that waits: it is still running only while the lock is held.
    const admin = await createConnection(db.adminUrl);
    const waiting = "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE info LIKE 'INSERT IGNORE INTO name_locks (name) VALUES (''wild.example'')%'";
    while (Number(((await admin.query(waiting)) as unknown as [[{ n: number }]])[0][0].n) === 0) await new Promise((r) => setTimeout(r, 10));
    await admin.end();
    await wildcard.query("COMMIT");
    await wildcard.end();
    await Promise.all(first);
    expect(typeof (await before)).toBe("bigint");
    expect(await Promise.all(under)).toEqual(["already_exists", "already_exists"]);
  });

  it("run each write alone again when the server refuses one write's row of a statement the group's writes share", async () => {
    // The audit rows of a group go as one INSERT, ahead of COMMIT: a request id too long for its column fails it.
    const first = fillers("fd");
    const fresh = [...Array(5).keys()].map((i) => settle(store.create("t", input(`okd${i}.group.example`), ctx())));
    const tooLong = settle(store.create("t", input("long.group.example"), { keyId: "admin", requestId: "r".repeat(200) }));
    await Promise.all(first);
    const revisions = await Promise.all(fresh);
    expect(revisions.every((r) => typeof r === "bigint")).toBe(true);
    expect(await tooLong).toBe("ER_DATA_TOO_LONG");
    await expect(store.get("t", "long.group.example")).rejects.toMatchObject({ code: "not_found" });
    const audit = await store.listAudit({ limit: 100 });
    for (const [i, revision] of revisions.entries()) {
      expect(audit.filter((e) => e.domain === `okd${i}.group.example`).map((e) => e.after?.revision)).toEqual([revision]);
    }
  });

  it("keep each write's outcome when the group's statements together outgrow the server's max_allowed_packet", async () => {
    // Each write is well below the limit; only a group's last round trip (its audit rows and idempotency results,
    // twice the labels of each write, ahead of COMMIT) is above it, and so is the one INSERT of its audit rows
    // alone. The server refuses such a packet unrun.
    const admin = await createConnection(db.adminUrl);
    await admin.query("SET GLOBAL max_allowed_packet = 1048576");
    const small = createMysqlStore({ url: await createDatabase(db.adminUrl), logger: pino({ level: "silent" }) });
    try {
      await small.ready;
      const labels = Object.fromEntries([...Array(160).keys()].map((i) => [`label-${i}-${"k".repeat(50)}`, "v".repeat(63)]));
      const big = (domain: string): MappingInput => ({ ...input(domain), labels });
      const before = await commits();
      const writes = [...Array(66).keys()].map((i) => settle(small.create("t", big(`big${i}.group.example`), ctx({ key: `k-big-${i}`, fingerprint: `fb${i}` }))));
      const outcomes = await Promise.all(writes);
      expect(outcomes.filter((r) => typeof r !== "bigint")).toEqual([]);
      // Together, not each alone again after a refused packet.
      expect((await commits()) - before).toBeLessThan(10);
    } finally {
      await small.close();
      await admin.query("SET GLOBAL max_allowed_packet = DEFAULT");
      await admin.end();
    }
  });

  it("lose no acknowledged write when the database is killed mid-group", async () => {
    const acknowledged: string[] = [];
    let n = 0;
    const writer = async () => {
      for (let i = 0; i < 40; i++) {
        const domain = `crash${n++}.group.example`;
        await store.create("crash", input(domain), ctx()).then(
          () => acknowledged.push(domain),
          () => undefined,
        );
      }
    };
    const writers = Promise.all([...Array(16)].map(writer));
    await new Promise((r) => setTimeout(r, 150));
    await db.kill();
    await new Promise((r) => setTimeout(r, 200));
    await db.resume();
    await writers;
    expect(acknowledged.length).toBeGreaterThan(0);
    const stored = new Set((await store.list("crash", { limit: 1000, offset: 0, labels: [], withTotal: false })).records.map((r) => r.domain));
    expect(acknowledged.filter((d) => !stored.has(d))).toEqual([]);
  });
});
