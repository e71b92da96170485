import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, stores, TOKEN, type TestDaemon } from "./harness/daemon.js";
import { assertRedisMatchesStore, eventuallyRedisMatchesStore, routeHash } from "./harness/convergence.js";
import { waitFor } from "./harness/ports.js";
import { PrivateRedis } from "./harness/redis.js";

describe.each(stores)("on the %s store", (kind) => {
  let daemon: TestDaemon;
  let redis: Redis;
  // The compatibility layout takes Redis' unprefixed keys in database 0: a Redis of its own.
  let server: PrivateRedis;
  const prefix = () => daemon.config.redis.prefix;
  beforeAll(async () => {
    server = await PrivateRedis.start();
    daemon = await startTestDaemon(await freshStore(kind), { REDIS_URL: server.url, DYNROUTE_REDIS_PREFIX: "", DYNROUTE_COMPAT_FRONTEND: "true" });
    await daemon.store.ready;
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    await daemon.close();
    redis.disconnect();
    await server.destroy();
  });

  describe("relay", () => {
    it("becomes the one relay and applies a write to Redis, announcing it", async () => {
      await waitFor("the relay lease", async () => expect(daemon.app.relay.role).toBe("leader"));
      const sub = new Redis(server.url);
      const announced: string[] = [];
      sub.on("message", (_channel, domain: string) => announced.push(domain));
      await sub.subscribe(`${prefix()}route-invalidate`);

      const { mapping } = await daemon.client("connect").createMapping({ tenantId: "r", mapping: { domain: "live.example.org", backends: ["http://a:1", "http://b:2"] } });
      await waitFor("the route", async () => {
        expect(await routeHash(redis, `${prefix()}route:live.example.org`)).toEqual({ rev: String(mapping!.revision), backends: '["http://a:1","http://b:2"]' });
      });
      expect((await redis.smembers(`${prefix()}frontend:live.example.org`)).sort()).toEqual(["http://a:1", "http://b:2"]);
      await waitFor("the announcement", async () => expect(announced).toContain("live.example.org"));
      sub.disconnect();
    });

    it("reports a mapping live once Redis serves its revision", async () => {
      const client = daemon.client("grpc");
      const created = await client.createMapping({ tenantId: "r", mapping: { domain: "ryw.example.org", backends: ["http://a:1"] } });
      expect(created.mapping!.live).toBe(false);
      await waitFor("live", async () => expect((await client.getMapping({ tenantId: "r", domain: "ryw.example.org" })).mapping!.live).toBe(true));
      const listed = await client.listMappings({ tenantId: "r", domainSuffix: "ryw.example.org" });
      expect(listed.mappings.map((m) => m.live)).toEqual([true]);
    });

    it("leaves a tombstone on delete and moves the route on rename", async () => {
      const client = daemon.client("connect");
      await client.createMapping({ tenantId: "r", mapping: { domain: "old.example.org", backends: ["http://a:1"] } });
      const renamed = await client.updateMapping({ tenantId: "r", domain: "old.example.org", mapping: { domain: "new.example.org", backends: ["http://c:3"] } });
      await waitFor("the rename", async () => {
        expect(await routeHash(redis, `${prefix()}route:new.example.org`)).toEqual({ rev: String(renamed.mapping!.revision), backends: '["http://c:3"]' });
        expect(await redis.hget(`${prefix()}route:old.example.org`, "deleted")).toBe("1");
      });
      expect(await redis.ttl(`${prefix()}route:old.example.org`)).toBeGreaterThan(3600);
      expect(await redis.exists(`${prefix()}frontend:old.example.org`)).toBe(0);
      await client.deleteMapping({ tenantId: "r", domain: "new.example.org" });
      await waitFor("the tombstone", async () => expect(await redis.hgetall(`${prefix()}route:new.example.org`)).toMatchObject({ deleted: "1" }));
      expect(await redis.hget(`${prefix()}route:new.example.org`, "backends")).toBeNull();
      await eventuallyRedisMatchesStore(daemon.store, redis, { prefix: prefix(), compatFrontend: true });
    });

    it("never lets a replayed older change overwrite a newer one", async () => {
      const client = daemon.client("connect");
      const v1 = (await client.createMapping({ tenantId: "r", mapping: { domain: "replay.example.org", backends: ["http://v1:1"] } })).mapping!;
      const v2 = (await client.updateMapping({ tenantId: "r", domain: "replay.example.org", mapping: { backends: ["http://v2:1"] } })).mapping!;
      await waitFor("v2 applied", async () => expect(await redis.hget(`${prefix()}route:replay.example.org`, "rev")).toBe(String(v2.revision)));
      const writer = (daemon.app.reconciler as unknown as { writer: import("../src/sync/route-writer.js").RouteWriter }).writer;
      expect(await writer.apply([{ domain: "replay.example.org", revision: v1.revision, backends: ["http://v1:1"] }])).toBe(0);
      expect(await writer.apply([{ domain: "replay.example.org", revision: v1.revision, backends: null }])).toBe(0);
      expect(await routeHash(redis, `${prefix()}route:replay.example.org`)).toEqual({ rev: String(v2.revision), backends: '["http://v2:1"]' });
      await client.deleteMapping({ tenantId: "r", domain: "replay.example.org" });
      await waitFor("deleted", async () => expect(await redis.hget(`${prefix()}route:replay.example.org`, "deleted")).toBe("1"));
      // A replay of the old upsert after the deletion does not resurrect the route.
      expect(await writer.apply([{ domain: "replay.example.org", revision: v2.revision, backends: ["http://v2:1"] }])).toBe(0);
      expect(await redis.hget(`${prefix()}route:replay.example.org`, "deleted")).toBe("1");
    });

    it("reconciles on demand: restores lost routes, retires ones MySQL does not have, repairs the wildcard index and frontend sets", async () => {
      const client = daemon.client("connect");
      await client.createMapping({ tenantId: "r", mapping: { domain: "restore.example.org", backends: ["http://a:1"] } });
      await client.createMapping({ tenantId: "r", mapping: { domain: "*.wild.example.org", backends: ["http://w:1"] } });
      await client.createMapping({ tenantId: "r", mapping: { domain: "kept.example.org", backends: ["http://k:1"] } });
      await eventuallyRedisMatchesStore(daemon.store, redis, { prefix: prefix(), compatFrontend: true });
      await redis.del(`${prefix()}route:restore.example.org`, `${prefix()}frontend:restore.example.org`);
      await redis.hset(`${prefix()}route:ghost.example.org`, { rev: "1", backends: '["http://ghost:1"]' });
      await redis.sadd(`${prefix()}frontend:ghost.example.org`, "http://ghost:1");
      // Derived state gone wrong: an index entry lost and one invented, a stray set member, an old system's set.
      await redis.hdel(`${prefix()}wildcards`, "*.wild.example.org");
      await redis.hset(`${prefix()}wildcards`, "*.gone.example.org", '["http://gone:1"]');
      await redis.sadd(`${prefix()}frontend:kept.example.org`, "http://stray:1");
      await redis.sadd(`${prefix()}frontend:leftover.example.org`, "http://old:1");

      const res = await fetch(`${daemon.baseUrl}/dynroute.v1.AdminService/Reconcile`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: "{}",
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { pushed: string; updated: string; retired: string };
      expect(body).toMatchObject({ updated: "1", retired: "1" });
      expect(Number(body.pushed)).toBeGreaterThan(1);
      await assertRedisMatchesStore(daemon.store, redis, { prefix: prefix(), compatFrontend: true });
      const unauthenticated = await fetch(`${daemon.baseUrl}/dynroute.v1.AdminService/Reconcile`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(unauthenticated.status).toBe(401);
    });
  });

  describe("operational endpoints", () => {
    it("answers /healthz, /readyz and /metrics", async () => {
      expect(await (await fetch(`${daemon.baseUrl}/healthz`)).json()).toEqual({ status: "ok" });
      const ready = await fetch(`${daemon.baseUrl}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ ready: true, store: "ok", redis: "ok", relay: "leader", outbox: { depth: expect.any(Number) } });
      const metrics = await (await fetch(`${daemon.baseUrl}/metrics`)).text();
      expect(metrics).toMatch(/^dynroute_relay_leader 1$/m);
      expect(metrics).toMatch(/^dynroute_outbox_depth \d+$/m);
      expect(metrics).toMatch(/^dynroute_rpc_requests_total\{procedure="dynroute.v1.MappingService\/CreateMapping",code="ok"\} \d+$/m);
      expect(metrics).toMatch(/^dynroute_relay_apply_lag_seconds_count [1-9]\d*$/m);
      expect(metrics).toMatch(/^dynroute_reconciliations_total\{reason="lease acquired"\} 1$/m);
    });
    it("answers unknown paths with a JSON 404", async () => {
      const res = await fetch(`${daemon.baseUrl}/nope`);
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(await res.json()).toEqual({ code: "not_found", message: "no such route", details: [] });
    });
  });
});
