import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { createDatabase, PrivateMariaDb } from "./harness/mariadb.js";
import { PrivateRedis } from "./harness/redis.js";
import { startTestDaemon, TOKEN } from "./harness/daemon.js";
import { spawnDaemon, type DaemonProcess } from "./harness/process.js";
import { eventuallyRedisMatchesMySQL, routeHash } from "./harness/convergence.js";
import { waitFor } from "./harness/ports.js";
import { pino } from "pino";
import { createMysqlStore, type MysqlStore } from "../src/store/mysql/mysql-store.js";
import type { RelayLease } from "../src/store/store.js";

let db: PrivateMariaDb;
let redisServer: PrivateRedis;
let redis: Redis;
beforeAll(async () => {
  [db, redisServer] = await Promise.all([PrivateMariaDb.start(), PrivateRedis.start()]);
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  redis.on("error", () => undefined); // the tests stop this server on purpose
});
afterAll(async () => {
  redis.disconnect();
  await Promise.all([db.destroy(), redisServer.destroy()]);
});

type MappingClient = Client<typeof MappingService>;

/**
 * 20 workers, each cycling its own 5 domains through create → update →
 * rename → delete, so every operation is valid and all must succeed.
 * Calls `at(n)` after the n-th completed operation.
 */
async function writeStream(clients: MappingClient[], total: number, tag: string, at: (done: number) => Promise<void> | void = () => undefined): Promise<void> {
  const workers = 20;
  let done = 0;
  await Promise.all(
    [...Array(workers).keys()].map(async (w) => {
      const client = clients[w % clients.length]!;
      for (let j = 0; j < total / workers; j++) {
        const k = j % 5;
        const d = `w${w}-${k}.${tag}.example`;
        const renamed = `w${w}-${k}-moved.${tag}.example`;
        const backends = [`http://b${j}:80`, `http://c${w}:81`];
        switch (Math.floor(j / 5) % 4) {
          case 0:
            await client.createMapping({ tenantId: `tenant-${w % 3}`, mapping: { domain: d, backends } });
            break;
          case 1:
            await client.updateMapping({ tenantId: `tenant-${w % 3}`, domain: d, mapping: { backends } });
            break;
          case 2:
            await client.updateMapping({ tenantId: `tenant-${w % 3}`, domain: d, mapping: { domain: renamed, backends } });
            break;
          case 3:
            await client.deleteMapping({ tenantId: `tenant-${w % 3}`, domain: renamed });
            break;
        }
        await at(++done);
      }
    }),
  );
}

describe("Redis faults", () => {
  it("(a) Redis stopped during 2,000 writes: every write succeeds, and Redis converges after it returns empty", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemon = await startTestDaemon({ MYSQL_URL: url }, { REDIS_URL: redisServer.url, DYNROUTE_REDIS_PREFIX: "", DYNROUTE_COMPAT_FRONTEND: "true" });
    try {
      await daemon.store.ready;
      let resumedAt = Infinity;
      await writeStream([daemon.client("connect"), daemon.client("grpc")], 2000, "a", async (n) => {
        if (n === 400) await redisServer.stop();
        if (n === 1400) {
          await redisServer.resume();
          resumedAt = daemon.logs.length;
        }
      });
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix, compatFrontend: true });
      // Redis came back empty: a full reconciliation ran after that (for that reason, or for an earlier
      // one that the outage interrupted and that is retried as it was).
      expect(daemon.logs.slice(resumedAt).some((l) => l.includes("reconciliation done"))).toBe(true);
    } finally {
      await daemon.close();
    }
  });

  it("(b) FLUSHALL during writes: Redis converges", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemon = await startTestDaemon({ MYSQL_URL: url }, { REDIS_URL: redisServer.url });
    try {
      await daemon.store.ready;
      await writeStream([daemon.client("connect")], 1000, "b", async (n) => {
        if (n === 300 || n === 700) await redis.flushall();
      });
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix });
    } finally {
      await daemon.close();
    }
  });
});

describe("daemon and MySQL faults", () => {
  const clientFor = (d: DaemonProcess) =>
    createClient(
      MappingService,
      createConnectTransport({
        baseUrl: d.baseUrl,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${TOKEN}`);
            return next(req);
          },
        ],
      }),
    );
  // A short lease: after kill -9 the next daemon takes over once it expired.
  const env = (url: string, prefix: string) => ({ MYSQL_URL: url, REDIS_URL: redisServer.url, DYNROUTE_TOKENS: TOKEN, DYNROUTE_REDIS_PREFIX: prefix, DYNROUTE_RELAY_POLL_MS: "50", DYNROUTE_RELAY_LEASE_S: "2" });
  const roleOf = async (d: DaemonProcess) => ((await (await fetch(`${d.baseUrl}/readyz`)).json()) as { relay: string }).relay;

  it("(c) kill -9 mid-writes: every acknowledged write is in MySQL and Redis once another daemon runs", async () => {
    const url = await createDatabase(db.adminUrl);
    const first = await spawnDaemon(env(url, "c:"));
    const client = clientFor(first);
    await waitFor("migrations", () => client.listMappings({ tenantId: "t" }));
    const acked: string[] = [];
    let killed = false;
    await Promise.all(
      [...Array(10).keys()].map(async (w) => {
        for (let i = 0; !killed; i++) {
          const domain = `k${w}-${i}.kill.example`;
          try {
            await client.createMapping({ tenantId: "t", mapping: { domain, backends: ["http://a:1"] } });
            acked.push(domain);
          } catch {
            return; // the daemon is gone
          }
          if (acked.length >= 300 && !killed) {
            killed = true;
            first.proc.kill("SIGKILL");
          }
        }
      }),
    );
    await first.exited;
    const second = await spawnDaemon(env(url, "c:"));
    try {
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: "c:" });
      const conn = await createConnection(url);
      const [rows] = await conn.query<RowDataPacket[]>("SELECT domain FROM mappings");
      await conn.end();
      const stored = new Set(rows.map((r) => r.domain as string));
      expect(acked.length).toBeGreaterThanOrEqual(300);
      expect(acked.filter((d) => !stored.has(d))).toEqual([]);
    } finally {
      second.proc.kill("SIGTERM");
      await second.exited;
    }
  });

  it("(d) two daemons, concurrent changes of the same domains: one relay at a time, Redis equals MySQL, and the standby takes over", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemons = [await spawnDaemon(env(url, "d:")), await spawnDaemon(env(url, "d:"))];
    const roles = () => Promise.all(daemons.map(roleOf));
    try {
      await waitFor("migrations", () => clientFor(daemons[0]!).listMappings({ tenantId: "t" }));
      const samples: string[][] = [];
      let running = true;
      const sampler = (async () => {
        while (running) {
          samples.push(await roles());
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      // Both daemons change the same domains at once; conflicts are expected, divergence is not.
      const clients = daemons.map(clientFor);
      await Promise.all(
        [...Array(16).keys()].map(async (w) => {
          for (let i = 0; i < 40; i++) {
            const client = clients[(w + i) % 2]!;
            const d = `shared-${(w * 7 + i) % 8}.both.example`;
            const op = (w + i) % 4;
            await (
              op === 0
                ? client.createMapping({ tenantId: "t", mapping: { domain: d, backends: [`http://w${w}:${i + 1}`] } })
                : op === 1
                  ? client.updateMapping({ tenantId: "t", domain: d, mapping: { backends: [`http://w${w}:${i + 1}`] } })
                  : op === 2
                    ? client.updateMapping({ tenantId: "t", domain: d, mapping: { domain: `shared-${(w + i) % 8}.both.example`, backends: ["http://r:1"] } })
                    : client.deleteMapping({ tenantId: "t", domain: d })
            ).catch((err: unknown) => {
              expect([Code.NotFound, Code.AlreadyExists]).toContain(ConnectError.from(err).code);
            });
          }
        }),
      );
      running = false;
      await sampler;
      expect(samples.length).toBeGreaterThan(3);
      for (const s of samples) expect(s.filter((r) => r === "leader").length).toBeLessThanOrEqual(1);
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: "d:" });

      const final = await roles();
      expect(final.filter((r) => r === "leader")).toHaveLength(1);
      const leader = final.indexOf("leader");
      const standby = daemons[1 - leader]!;
      daemons[leader]!.proc.kill("SIGTERM");
      await daemons[leader]!.exited;
      await waitFor("the standby to take over", async () => expect(await roleOf(standby)).toBe("leader"));
      await clientFor(standby).createMapping({ tenantId: "t", mapping: { domain: "after-failover.both.example", backends: ["http://a:1"] } });
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: "d:" });
    } finally {
      for (const d of daemons) d.proc.kill("SIGTERM");
      await Promise.all(daemons.map((d) => d.exited));
    }
  });

  it("(f) MySQL restarted: the relay takes the lease again and resumes", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemon = await startTestDaemon({ MYSQL_URL: url }, { REDIS_URL: redisServer.url });
    try {
      await daemon.store.ready;
      const client = daemon.client("connect");
      await writeStream([client], 200, "f1");
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix });
      await db.stop();
      await waitFor("the relay to notice", async () => expect(daemon.logs.some((l) => l.includes("relay iteration failed") || l.includes("relay lease lost"))).toBe(true));
      await db.resume();
      await writeStream([client], 200, "f2");
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix });
      expect(daemon.app.relay.role).toBe("leader");
    } finally {
      await daemon.close();
    }
  });

  it("(g) two daemons across a primary switch (MariaDB restarted behind the same address, down longer than the lease): never both lead, one leads after, Redis equals MySQL", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemons = [await spawnDaemon(env(url, "g:")), await spawnDaemon(env(url, "g:"))];
    try {
      const client = clientFor(daemons[0]!);
      await waitFor("migrations", () => client.listMappings({ tenantId: "t" }));
      await waitFor("a leader", async () => expect(await Promise.all(daemons.map(roleOf))).toContain("leader"));
      const samples: string[][] = [];
      let running = true;
      const sampler = (async () => {
        while (running) {
          samples.push(await Promise.all(daemons.map(roleOf)));
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      await writeStream([client, clientFor(daemons[1]!)], 200, "g1");
      await db.stop();
      await new Promise((r) => setTimeout(r, 3000)); // the 2 s lease expires meanwhile
      await db.resume();
      await waitFor("a leader again", async () => expect(samples.at(-1)).toContain("leader"), 20_000);
      await writeStream([client, clientFor(daemons[1]!)], 200, "g2");
      running = false;
      await sampler;
      expect(samples.length).toBeGreaterThan(20);
      for (const s of samples) expect(s.filter((r) => r === "leader").length).toBeLessThanOrEqual(1);
      expect(samples.some((s) => !s.includes("leader")), "the leader stood down while the database was away").toBe(true);
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: "g:" });
      const conn = await createConnection(url);
      const [[lease]] = await conn.query<RowDataPacket[]>("SELECT fence FROM relay_lease");
      await conn.end();
      expect(Number(lease!.fence), "a new fencing number for the lease taken after the restart").toBeGreaterThanOrEqual(2);
    } finally {
      for (const d of daemons) d.proc.kill("SIGTERM");
      await Promise.all(daemons.map((d) => d.exited));
    }
  });

  // Both outboxes: each drain checks the fence in its own transaction, in the database (not only the holder's own flag).
  it.each(["route", "certificate"] as const)("(h) a relay whose lease was taken over applies no %s change: its batch fails on the fencing number and the rows stay", async (outbox) => {
    const url = await createDatabase(db.adminUrl);
    const quiet = pino({ level: "silent" });
    const [first, second] = [createMysqlStore({ url, logger: quiet }), createMysqlStore({ url, logger: quiet })];
    const drain = (store: MysqlStore, lease: RelayLease, count: (n: number) => void) =>
      outbox === "route" ? store.drainOutbox(100, async (changes) => count(changes.length), lease) : store.drainCertificateOutbox(100, async (changes) => count(changes.length), lease);
    try {
      await Promise.all([first.ready, second.ready]);
      const conn = await createConnection(url);
      if (outbox === "route") await first.create("t", { domain: "fenced.example", backends: ["http://a:1"], labels: {}, status: "enabled", tls: "" }, { keyId: "test", requestId: "h" });
      // A certificate's removal as the write path queues it (no chain, no key).
      else await conn.query("INSERT INTO certificate_outbox (name, chain_pem, sealed_key, created_at) VALUES ('fenced.example', NULL, NULL, UTC_TIMESTAMP(3))");
      const old = (await first.tryAcquireRelayLease(60_000))!;
      expect(old.held()).toBe(true);
      expect(await second.tryAcquireRelayLease(60_000), "held by the first").toBeUndefined();
      // The first stalls (a long pause, a partition) past its lease: the database lets it expire.
      await conn.query("UPDATE relay_lease SET expires_at = UTC_TIMESTAMP(3) - INTERVAL 1 SECOND");
      const taken = (await second.tryAcquireRelayLease(60_000))!;
      expect(taken).toBeDefined();
      let applied = 0;
      await expect(drain(first, old, (n) => (applied += n))).rejects.toThrow(/taken over/);
      expect(applied).toBe(0);
      expect(old.held()).toBe(false);
      expect(await drain(second, taken, (n) => (applied += n))).toBe(1);
      const [[row]] = await conn.query<RowDataPacket[]>("SELECT fence FROM relay_lease");
      await conn.end();
      expect(Number(row!.fence)).toBe(2);
      await taken.release();
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it("(i) the primary demoted in place (read_only) and promoted again: writes answer 503 meanwhile, never 500, and the relay resumes", async () => {
    const url = await createDatabase(db.adminUrl);
    // read_only binds users without SUPER: the daemon connects as an ordinary user, as in production.
    const admin = await createConnection(db.adminUrl);
    await admin.query("FLUSH PRIVILEGES"); // grant tables on from here (the server started without them)
    await admin.query("CREATE USER IF NOT EXISTS dynroute@'127.0.0.1' IDENTIFIED BY 'dynroute'");
    await admin.query(`GRANT ALL ON \`${new URL(url).pathname.slice(1)}\`.* TO dynroute@'127.0.0.1'`);
    const appUrl = new URL(url);
    appUrl.username = "dynroute";
    appUrl.password = "dynroute";
    const daemon = await startTestDaemon({ MYSQL_URL: appUrl.toString() }, { REDIS_URL: redisServer.url, DYNROUTE_RELAY_LEASE_S: "2" });
    try {
      await daemon.store.ready;
      const client = daemon.client("connect");
      await writeStream([client], 100, "i1");
      await admin.query("SET GLOBAL read_only = 1");
      const refused = await client.createMapping({ tenantId: "t", mapping: { domain: "during.ro.example", backends: ["http://a:1"] } }).then(
        () => "written",
        (err: unknown) => ConnectError.from(err).code,
      );
      expect(refused).toBe(Code.Unavailable);
      await waitFor("the relay to stand down without a writable lease", async () => expect(daemon.app.relay.role).toBe("standby"));
      await admin.query("SET GLOBAL read_only = 0");
      await writeStream([client], 100, "i2");
      await waitFor("the relay to lead again", async () => expect(daemon.app.relay.role).toBe("leader"));
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix });
    } finally {
      await admin.query("SET GLOBAL read_only = 0");
      await admin.end();
      await daemon.close();
    }
  });

  it("(j) changes reach Redis during a long reconciliation (as after a failover), not after it", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemon = await startTestDaemon({ MYSQL_URL: url }, { REDIS_URL: redisServer.url });
    try {
      await daemon.store.ready;
      await waitFor("the relay lease", async () => expect(daemon.app.relay.role).toBe("leader"));
      const conn = await createConnection(url);
      await conn.query(
        `INSERT INTO mappings (tenant_id, domain, backends, labels, revision, create_time, update_time)
         SELECT 't', CONCAT('bulk-', seq, '.recon.example'), '["http://a:1"]', '{}', seq, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_100000`,
      );
      await conn.end();
      daemon.app.relay.requestReconcile("test");
      await waitFor("the reconciliation to start", async () => expect(daemon.logs.some((l) => l.includes('"reason":"test"') && l.includes("reconciliation started"))).toBe(true));
      await daemon.client("connect").createMapping({ tenantId: "t", mapping: { domain: "during.recon.example", backends: ["http://b:1"] } });
      // The outbox row goes once the relay applied it (the run itself pushes mappings, never outbox rows).
      await waitFor("the change to be drained", async () => expect((await daemon.store.outboxStats()).depth).toBe(0));
      const drainedAt = Date.now();
      const done = await waitFor("the reconciliation to finish", async () => {
        const line = daemon.logs.find((l) => l.includes('"reason":"test"') && l.includes("reconciliation done"));
        if (!line) throw new Error("still running");
        return JSON.parse(line) as { time: number; pushed: number };
      });
      expect(done.pushed).toBeGreaterThanOrEqual(100_000);
      expect(drainedAt).toBeLessThan(done.time);
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix });
    } finally {
      await daemon.close();
    }
  });

  it("(k) a committed change reaches Redis at once, not after its outbox row is drained; the drain still deletes the row", async () => {
    const url = await createDatabase(db.adminUrl);
    const daemon = await startTestDaemon({ MYSQL_URL: url }, { REDIS_URL: redisServer.url });
    const locker = await createConnection(url);
    try {
      await daemon.store.ready;
      await waitFor("the relay lease", async () => expect(daemon.app.relay.role).toBe("leader"));
      // A drain renews the lease in its transaction before applying: holding the lease row stalls it there.
      await locker.beginTransaction();
      await locker.query("SELECT fence FROM relay_lease WHERE id = 1 FOR UPDATE");
      const { mapping } = await daemon.client("connect").createMapping({ tenantId: "t", mapping: { domain: "at-once.example", backends: ["http://a:1"] } });
      const route = `${daemon.config.redis.prefix}route:at-once.example`;
      await waitFor("the route", async () => expect(await routeHash(redis, route)).toEqual({ rev: String(mapping!.revision), backends: '["http://a:1"]' }), 5_000); // well within the lease (10 s)
      expect((await daemon.store.outboxStats()).depth, "the row waits for the stalled drain").toBe(1);
      await locker.rollback();
      await waitFor("the row to be drained", async () => expect((await daemon.store.outboxStats()).depth).toBe(0));
      await eventuallyRedisMatchesMySQL(url, redis, { prefix: daemon.config.redis.prefix });
    } finally {
      await locker.end();
      await daemon.close();
    }
  });
});
