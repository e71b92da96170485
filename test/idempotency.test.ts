import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CommitCutter } from "./harness/commit-cutter.js";
import { createDatabase } from "./harness/mariadb.js";
import { freshStore, protocols, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { outcome } from "./harness/outcome.js";
import { rest } from "./harness/rest.js";

const idem = (key: string) => ({ "idempotency-key": key });

describe.each(stores)("Idempotency-Key on %s", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  const events = async (domain: string) => (await daemon.store.listAudit({ domain, limit: 100 })).map((e) => e.action);

  it("answers a repeated create, update and delete with the first answer and writes each once", async () => {
    const url = daemon.baseUrl;
    const body = { domain: "once.idem.example", backends: ["http://a:1"] };
    const first = await rest(url, "PUT", "/v1/t/mapping", { headers: idem("create-1"), body });
    const again = await rest(url, "PUT", "/v1/t/mapping", { headers: idem("create-1"), body });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get("location")).toBe(first.headers.get("location"));

    const update = { domain: "once.idem.example", backends: ["http://a:2"] };
    const u1 = await rest(url, "PUT", "/v1/t/mapping/once.idem.example", { headers: idem("update-1"), body: update });
    const u2 = await rest(url, "PUT", "/v1/t/mapping/once.idem.example", { headers: idem("update-1"), body: update });
    expect(u2.json.revision).toBe(u1.json.revision);
    expect(BigInt(u1.json.revision)).toBeGreaterThan(BigInt(first.json.revision));

    const d1 = await rest(url, "DELETE", "/v1/t/mapping/once.idem.example", { headers: idem("delete-1") });
    const d2 = await rest(url, "DELETE", "/v1/t/mapping/once.idem.example", { headers: idem("delete-1") });
    expect([d1.status, d2.status]).toEqual([204, 204]);
    expect((await rest(url, "DELETE", "/v1/t/mapping/once.idem.example", { headers: idem("delete-2") })).status).toBe(404);
    expect(await events("once.idem.example")).toEqual(["delete", "update", "create"]);
  });

  it("refuses a key reused for another request, and changes nothing", async () => {
    const url = daemon.baseUrl;
    expect((await rest(url, "PUT", "/v1/t/mapping", { headers: idem("reuse-1"), body: { domain: "a.reuse.idem.example", backends: ["http://a:1"] } })).status).toBe(201);
    const reused = await rest(url, "PUT", "/v1/t/mapping", { headers: idem("reuse-1"), body: { domain: "b.reuse.idem.example", backends: ["http://a:1"] } });
    expect(reused.status).toBe(400);
    expect(reused.json.details[0].violations[0]).toMatchObject({ rule_id: "idempotency_key.reused" });
    expect((await rest(url, "GET", "/v1/t/mapping/b.reuse.idem.example")).status).toBe(404);
    const otherMethod = await rest(url, "DELETE", "/v1/t/mapping/a.reuse.idem.example", { headers: idem("reuse-1") });
    expect(otherMethod.status).toBe(400);
    expect((await rest(url, "GET", "/v1/t/mapping/a.reuse.idem.example")).status).toBe(200);
    expect((await rest(url, "PUT", "/v1/t/mapping", { headers: idem("has spaces"), body: { domain: "c.reuse.idem.example", backends: ["http://a:1"] } })).status).toBe(400);
  });

  it("scopes keys to the API key that sent them", async () => {
    const made = await rest(daemon.baseUrl, "POST", "/v1/keys", { body: { tenant_id: "t", role: "editor" } });
    const body = { domain: "scoped.idem.example", backends: ["http://a:1"] };
    expect((await rest(daemon.baseUrl, "PUT", "/v1/t/mapping", { headers: idem("shared"), body })).status).toBe(201);
    // The same idempotency key from another API key is a new request: here, a taken domain.
    expect((await rest(daemon.baseUrl, "PUT", "/v1/t/mapping", { token: made.json.secret, headers: idem("shared"), body })).status).toBe(409);
  });

  it.each(protocols)("works over %s with the same header", async (protocol) => {
    const client = daemon.client(protocol);
    const domain = `rpc-${protocol}.idem.example`;
    const headers = idem(`rpc-${protocol}`);
    const a = await client.createMapping({ tenantId: "t", mapping: { domain, backends: ["http://a:1"] } }, { headers });
    const b = await client.createMapping({ tenantId: "t", mapping: { domain, backends: ["http://a:1"] } }, { headers });
    expect(b.mapping?.revision).toBe(a.mapping?.revision);
    expect(await outcome(client.createMapping({ tenantId: "t", mapping: { domain, backends: ["http://a:9"] } }, { headers }))).toBe("InvalidArgument");
    expect(await events(domain)).toEqual(["create"]);
  });
});

it("applies each write once when it is retried after the answer to its commit was lost", async () => {
  const url = new URL(await createDatabase(inject("mysqlAdminUrl")));
  // Every fifth commit is applied by MariaDB, but its answer never reaches the daemon.
  let commits = 0;
  const cutter = await CommitCutter.start({ host: url.hostname, port: Number(url.port) }, () => ++commits % 5 === 0);
  url.host = `127.0.0.1:${cutter.port}`;
  const daemon = await startTestDaemon({ MYSQL_URL: url.toString() });
  try {
    await daemon.store.ready;
    const client = daemon.client("connect");
    let unavailable = 0;
    /** Sends until it gets an answer other than unavailable, always with the same idempotency key. */
    const retried = async (key: string, send: (headers: Record<string, string>) => Promise<unknown>) => {
      for (;;) {
        try {
          return await send(idem(key));
        } catch (err) {
          if (ConnectError.from(err).code !== Code.Unavailable) throw err;
          unavailable++;
        }
      }
    };
    const WRITERS = 3;
    const UPDATES = 20;
    await Promise.all(
      [...Array(WRITERS).keys()].map(async (w) => {
        const domain = `w${w}.cut.example`;
        await retried(`c-${w}`, (headers) => client.createMapping({ tenantId: "t", mapping: { domain, backends: ["http://a:1"] } }, { headers }));
        for (let i = 1; i <= UPDATES; i++) {
          await retried(`u-${w}-${i}`, (headers) => client.updateMapping({ tenantId: "t", domain, mapping: { backends: [`http://a:${i + 1}`] } }, { headers }));
        }
      }),
    );
    // Writes (and relay batches) were committed without an answer, and callers were told to retry...
    expect(cutter.cut).toBeGreaterThan(3);
    expect(unavailable).toBeGreaterThan(3);
    // ...yet each was applied exactly once.
    for (let w = 0; w < WRITERS; w++) {
      const trail = await daemon.store.listAudit({ domain: `w${w}.cut.example`, limit: 500 });
      expect(trail.map((e) => e.action)).toEqual([...Array(UPDATES).fill("update"), "create"]);
      expect(trail[0]!.after?.backends).toEqual([`http://a:${UPDATES + 1}`]);
    }
  } finally {
    await daemon.close();
    await cutter.close();
  }
});
