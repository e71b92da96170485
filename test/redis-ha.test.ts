import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { LOOPBACK_ALLOWED, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { createDatabase } from "./harness/mariadb.js";
import { eventuallyRedisMatchesMySQL } from "./harness/convergence.js";
import { waitFor } from "./harness/ports.js";
import { rest } from "./harness/rest.js";
import { Backend, PrivateRouter, request } from "./harness/router.js";
import { MASTER_NAME, SentinelGroup } from "./harness/sentinel.js";

// Redis HA as operators run it, on loopback: a master, a replica and three sentinels. The daemon
// reaches Redis through REDIS_URL=redis+sentinel://…, one router asks the sentinels for the master,
// another reads the replica directly (a router fleet's topology). Both routers cache for 300 s, so a
// change seen through them within the waits below arrived by invalidation.
const PREFIX = "ha:";
let ha: SentinelGroup;
let mysqlUrl: string;
let daemon: TestDaemon;
let viaSentinel: PrivateRouter;
let viaReplica: PrivateRouter;
const backends: Backend[] = [];
beforeAll(async () => {
  [ha, mysqlUrl] = await Promise.all([SentinelGroup.start(), createDatabase(inject("mysqlAdminUrl"))]);
  daemon = await startTestDaemon({ MYSQL_URL: mysqlUrl }, { REDIS_URL: ha.url, DYNROUTE_REDIS_PREFIX: PREFIX, DYNROUTE_RELAY_MAX_BACKOFF_MS: "500" });
  await daemon.store.ready;
  const sentinels = ha.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(",");
  [viaSentinel, viaReplica] = await Promise.all([
    PrivateRouter.start("redis://127.0.0.1:1", PREFIX, { ROUTER_CACHE_TTL: "300", ROUTER_REDIS_SENTINELS: sentinels, ROUTER_REDIS_SENTINEL_MASTER: MASTER_NAME }),
    PrivateRouter.start(`redis://127.0.0.1:${ha.replica.port}`, PREFIX, { ROUTER_CACHE_TTL: "300" }),
  ]);
  for (const name of ["a", "b", "c"]) backends.push(await Backend.start(name));
}, 120_000);
afterAll(async () => {
  await Promise.all([viaSentinel?.stop(), viaReplica?.stop()]);
  await daemon?.close();
  for (const b of backends) await b.stop();
  await ha?.destroy();
});

const api = (method: string, path: string, body?: object) => rest(daemon.baseUrl, method, path, body ? { body } : {});
const routedTo = async (router: PrivateRouter, host: string) => (await request(router.port, host)).json?.backend as string | undefined;

/** Both routers send `host` to `backend` within the bound the router suite uses for changes. */
async function bothRoute(host: string, backend: string): Promise<void> {
  await Promise.all(
    [viaSentinel, viaReplica].map((router) => waitFor(`${host} → ${backend} through the router on ${router.port}`, async () => expect(await routedTo(router, host)).toBe(backend), 5000)),
  );
}

describe("Redis Sentinel and replicas", () => {
  it("a router reading a replica gets a change as fast as the one reading the master (invalidations travel through replication)", async () => {
    expect((await api("PUT", "/v1/ha/mapping", { domain: "site.ha.example", backends: [backends[0]!.url] })).status).toBe(201);
    await bothRoute("site.ha.example", "a");
    // Cached in both now: only the invalidation can move them within the bound.
    expect((await api("PUT", "/v1/ha/mapping/site.ha.example", { backends: [backends[1]!.url] })).status).toBe(200);
    await bothRoute("site.ha.example", "b");
  });

  it("the master killed during writes: every write is acknowledged, Redis fails over and equals the database, and both routers follow", async () => {
    const oldMaster = await ha.masterPort();
    expect(oldMaster).toBe(ha.master.port);
    const acked: string[] = [];
    let written = 0;
    await Promise.all(
      [...Array(8).keys()].map(async (w) => {
        for (let i = 0; i < 60; i++) {
          const domain = `w${w}-${i}.failover.ha.example`;
          const res = await api("PUT", "/v1/ha/mapping", { domain, backends: [backends[i % 3]!.url] });
          expect(res.status, res.text).toBe(201);
          acked.push(domain);
          if (++written === 120) {
            await ha.master.stop(); // SIGKILL: what is not replicated yet is lost in Redis
            // No master until the sentinels promote one: both routers serve what they cached.
            for (const router of [viaSentinel, viaReplica]) expect(await routedTo(router, "site.ha.example")).toBe("b");
          }
          if (i % 4 === 3) {
            const upd = await api("PUT", `/v1/ha/mapping/${acked[acked.length - 2]}`, { backends: [backends[2]!.url] });
            expect(upd.status, upd.text).toBe(200);
          }
        }
      }),
    );
    expect(await ha.failedOverFrom(oldMaster)).toBe(ha.replica.port);

    // The daemon's client followed the failover; the relay saw a new run_id and reconciled.
    const newMaster = new Redis({ sentinels: ha.sentinelPorts.map((port) => ({ host: "127.0.0.1", port })), name: MASTER_NAME });
    try {
      await eventuallyRedisMatchesMySQL(mysqlUrl, newMaster, { prefix: PREFIX }, 30_000);
    } finally {
      newMaster.disconnect();
    }
    expect(daemon.logs.some((l) => l.includes('"reason":"redis restarted"'))).toBe(true);
    // Both of the daemon's connections (the relay's and the API's) reached the new master.
    for (const name of ["relay", "api"]) expect(daemon.logs.some((l) => l.includes(`"redis":"${name}"`) && l.includes(`"master":"127.0.0.1:${ha.replica.port}"`)), name).toBe(true);
    const conn = await createConnection(mysqlUrl);
    const [rows] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM mappings WHERE domain LIKE '%.failover.ha.example'");
    await conn.end();
    expect(Number(rows[0]!.n)).toBe(acked.length);

    // A change after the failover reaches traffic through both routers: one re-asked the sentinels,
    // the other's replica is the master now.
    expect((await api("PUT", "/v1/ha/mapping/site.ha.example", { backends: [backends[2]!.url] })).status).toBe(200);
    await bothRoute("site.ha.example", "c");
    expect(viaSentinel.errorLog()).toContain(`redis master is 127.0.0.1:${ha.replica.port} (from the sentinels)`);
  });
});

describe("import-frontend from a dynamicproxy Redis behind Sentinel", () => {
  // After the failover above: the CLI asks the sentinels for the master, as the daemon does.
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ["dist/src/cli.js", "import-frontend", ...args], {
      env: { PATH: process.env.PATH ?? "", DYNROUTE_DATA_DIR: mkdtempSync(join(tmpdir(), "dynroute-data-")), ...LOOPBACK_ALLOWED },
    }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );

  it("reads the master's frontend sets through the sentinels (REDIS_URL's form), and names --redis when the URL is wrong", async () => {
    const master = new Redis({ sentinels: ha.sentinelPorts.map((port) => ({ host: "127.0.0.1", port })), name: MASTER_NAME });
    try {
      await master.sadd("frontend:legacy.ha.example", backends[0]!.url);
    } finally {
      master.disconnect();
    }
    const dry = await cli("--redis", ha.url, "--tenant", "legacy", "--dry-run");
    expect(dry.stderr).toContain("read 1 frontend set(s)");
    expect(dry.stderr).toContain("tenant legacy: would import 1 mapping(s)");
    const bad = await cli("--redis", "redis+sentinel://127.0.0.1:1", "--tenant", "legacy");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^dynroute: --redis: expected redis\+sentinel:/);
  });
});

describe("REDIS_URL in the Sentinel form", () => {
  const target = (url: string) => loadConfig({ REDIS_URL: url }).redis;

  it("names the sentinels, the master, credentials for each, the database and TLS", () => {
    const redis = target("redis+sentinel://app:s%40cret@10.0.0.1:26379,10.0.0.2,[fd00::3]:26380/cache-main?db=2&tls=true&sentinel_password=watch");
    expect(redis.target).toEqual({
      kind: "sentinel",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "10.0.0.2", port: 26379 },
        { host: "fd00::3", port: 26380 },
      ],
      name: "cache-main",
      db: 2,
      username: "app",
      password: "s@cret",
      sentinelPassword: "watch",
      tls: true,
      sentinelTls: false,
    });
    expect(redis.display).toBe("redis+sentinel://***@10.0.0.1:26379,10.0.0.2,[fd00::3]:26380/cache-main?db=2&tls=true&sentinel_password=***");
    expect(target("redis+sentinel://127.0.0.1:26379/mymaster").target).toMatchObject({ kind: "sentinel", db: 0, tls: false });
    expect(target("redis://127.0.0.1:6379/4").target).toEqual({ kind: "direct", url: "redis://127.0.0.1:6379/4", db: 4 });
  });

  it("refuses what it cannot follow, naming REDIS_URL", () => {
    for (const bad of ["redis+sentinel://127.0.0.1:26379", "redis+sentinel://127.0.0.1:99999/m", "redis+sentinel://h:1/m?db=x", "redis+sentinel://h:1/m?master=m", "redis+sentinel://h:1/m?tls=maybe"]) {
      expect(() => target(bad), bad).toThrow(ConfigError);
      expect(() => target(bad), bad).toThrow(/^REDIS_URL: /);
    }
    expect(() => loadConfig({ REDIS_URL: "redis+sentinel://h:1/m?db=1", DYNROUTE_COMPAT_FRONTEND: "true" })).toThrow(/must use database 0/);
  });
});
