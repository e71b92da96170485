import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, PrivateMariaDb } from "./harness/mariadb.js";
import { startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";
import { outcome } from "./harness/outcome.js";
import { waitFor } from "./harness/ports.js";

let db: PrivateMariaDb;
let url: string;
beforeAll(async () => {
  db = await PrivateMariaDb.start();
  url = await createDatabase(db.adminUrl);
});
afterAll(() => db.destroy());


describe("the database going away", () => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon({ MYSQL_URL: url });
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  it("answers unavailable (HTTP 503, JSON) while MariaDB is down and recovers without a restart", async () => {
    const client = daemon.client("connect");
    await client.createMapping({ tenantId: "t", mapping: { domain: "before.example.org", backends: ["http://a:1"] } });

    await db.stop();
    expect(await outcome(client.createMapping({ tenantId: "t", mapping: { domain: "during.example.org", backends: ["http://a:1"] } }))).toBe("Unavailable");
    expect(await outcome(daemon.client("grpc").getMapping({ tenantId: "t", domain: "before.example.org" }))).toBe("Unavailable");
    const res = await fetch(`${daemon.baseUrl}/dynroute.v1.MappingService/ListMappings`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ tenantId: "t" }),
    });
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body).toEqual({ code: "unavailable", message: "the database is unavailable; retry later" });

    await db.resume();
    // The first call after the restart already succeeds: dead pooled connections are replaced.
    const got = await client.getMapping({ tenantId: "t", domain: "before.example.org" });
    expect(got.mapping!.backends).toEqual(["http://a:1"]);
    await client.createMapping({ tenantId: "t", mapping: { domain: "after.example.org", backends: ["http://a:1"] } });
    expect((await client.listMappings({ tenantId: "t" })).mappings.map((m) => m.domain)).toEqual(["before.example.org", "after.example.org"]);
  });
});

describe("starting while the database is down", () => {
  it("serves unavailable until MariaDB appears, then migrates and serves", async () => {
    const fresh = await createDatabase(db.adminUrl);
    await db.stop();
    const daemon = await startTestDaemon({ MYSQL_URL: fresh });
    try {
      const client = daemon.client("grpcweb");
      const err = await client.listMappings({ tenantId: "t" }).catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      expect((err as ConnectError).rawMessage).toBe("the database is not ready yet; retry later");
      await db.resume();
      await daemon.store.ready;
      await waitFor("the first write", () => client.createMapping({ tenantId: "t", mapping: { domain: "late.example.org", backends: ["http://a:1"] } }));
      expect((await client.getMapping({ tenantId: "t", domain: "late.example.org" })).mapping!.domain).toBe("late.example.org");
    } finally {
      await daemon.close();
    }
  });
});

describe("database error text", () => {
  it("never reaches API callers or /readyz; the log has it", async () => {
    const missing = new URL(db.adminUrl);
    missing.pathname = "/no_such_database_here";
    const daemon = await startTestDaemon({ MYSQL_URL: missing.toString() });
    try {
      const err = await daemon.client("connect").listMappings({ tenantId: "t" }).catch((e: unknown) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      const rest = await fetch(`${daemon.baseUrl}/v1/t/mapping`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const ready = await fetch(`${daemon.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      const readyBody = await ready.json();
      expect(readyBody).toMatchObject({ ready: false, store: "unavailable: see the daemon's log" });
      for (const text of [(err as ConnectError).rawMessage, await rest.text(), JSON.stringify(readyBody)]) {
        expect(text).not.toMatch(/no_such_database_here|Unknown database|ER_/);
      }
      await waitFor("the log line", async () => expect(daemon.logs.join("\n")).toContain("no_such_database_here"));
    } finally {
      await daemon.close();
    }
  });
});

describe("/readyz", () => {
  it("asks the store at most once a second, however often it is called", async () => {
    const daemon = await startTestDaemon({ MYSQL_URL: await createDatabase(db.adminUrl) });
    try {
      await daemon.store.ready;
      const real = daemon.store.outboxStats.bind(daemon.store);
      let asked = 0;
      // Counts the real store's calls (the relay does not use it); the answers are the database's own.
      daemon.store.outboxStats = () => {
        asked++;
        return real();
      };
      const started = performance.now();
      for (let i = 0; i < 20; i++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${daemon.baseUrl}/readyz`)));
        for (const a of answers) expect(((await a.json()) as { store: string }).store).toBe("ok");
      }
      const seconds = (performance.now() - started) / 1000;
      expect(asked).toBeGreaterThanOrEqual(1);
      expect(asked).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    } finally {
      await daemon.close();
    }
  });
});
