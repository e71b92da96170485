// Scale simulation: what one platform's worth of routes costs, measured at a size this machine
// runs in a few minutes and extrapolated to BENCH_TARGET (10 million) with the measured per-route
// costs (the model is linear: one hash per route, one row per mapping, reconciliation streams):
//   1. store size, Redis memory (MEMORY USAGE per route key and INFO used_memory), full
//      reconciliation time and the daemon's peak RSS, at BENCH_MAPPINGS (1,000,000);
//   2. 50 routers' subscriptions to invalidations (simulated subscribers, one connection each):
//      from a write's acknowledgement to the last subscriber seeing it, beside a bare PUBLISH;
//   3. a Sentinel failover (master SIGKILLed) during 500 writes/s: time until writes reach the new
//      master, beside the sentinels' own failover time, and whether any acknowledged write is lost.
// Run: npm run bench:scale   (BENCH_MAPPINGS, BENCH_TARGET, BENCH_SUBSCRIBERS, BENCH_WRITE_RATE resize it;
// BENCH_PARTS=footprint,fanout,failover picks parts)
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { createInterface } from "node:readline";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { createDatabase, PrivateMariaDb } from "../test/harness/mariadb.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { MASTER_NAME, SentinelGroup } from "../test/harness/sentinel.js";
import { freePort } from "../test/harness/ports.js";
import { percentile, table } from "./table.js";

const TOKEN = "bench-token-0123456789abcdef";
const MAPPINGS = Number(process.env.BENCH_MAPPINGS ?? 1_000_000);
const TARGET = Number(process.env.BENCH_TARGET ?? 10_000_000);
const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 50);
const WRITE_RATE = Number(process.env.BENCH_WRITE_RATE ?? 500);
// Two private-range backends with ports, as a platform's VMs: the common shape of a route.
const BACKENDS = '["http://172.16.12.34:8080","http://172.16.56.78:8080"]';
const rows: Array<Record<string, string>> = [];
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GB`;
const ms = (x: number) => x.toFixed(1);
const scale = TARGET / MAPPINGS;
const row = (measure: string, measured: string, baseline: string, extrapolated: string, notes = "") => rows.push({ measure, [`at ${MAPPINGS.toLocaleString("en")}`]: measured, baseline, [`at ${TARGET.toLocaleString("en")} (×${scale})`]: extrapolated, notes });

interface Daemon {
  proc: ChildProcess;
  client: Client<typeof MappingService>;
  lines: string[];
}

// HTTP/2 (h2c): one multiplexed connection, so an open loop of writes does not churn sockets.
async function startDaemon(env: Record<string, string>): Promise<Daemon> {
  const port = await freePort();
  const proc = spawn(process.execPath, ["dist/src/main.js"], {
    env: { PATH: process.env.PATH, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${port}`, LOG_LEVEL: "info", DYNROUTE_BACKEND_ALLOW: "127.0.0.0/8", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on("line", (l) => lines.push(l));
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${TOKEN}`);
    return next(req);
  };
  const client = createClient(MappingService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2", interceptors: [auth] }));
  for (;;) {
    try {
      await client.listMappings({ tenantId: "bench" });
      return { proc, client, lines };
    } catch {
      if (proc.exitCode !== null) throw new Error(`daemon exited:\n${lines.join("\n")}`);
      await sleep(100);
    }
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  d.proc.kill("SIGTERM");
  await once(d.proc, "exit");
}

async function main() {
  const loadBefore = loadavg();
  const db = await PrivateMariaDb.start();
  try {
    const parts = (process.env.BENCH_PARTS ?? "footprint,fanout,failover").split(",");
    if (parts.includes("footprint")) await footprint(db);
    if (parts.includes("fanout")) await fanout(db);
    if (parts.includes("failover")) await failover(db);
  } finally {
    await db.destroy();
  }
  console.log(`\nload average before / after: ${loadBefore.map((l) => l.toFixed(1)).join(" ")} / ${loadavg().map((l) => l.toFixed(1)).join(" ")} (${cpus().length} cores; other work on the machine shows in the latencies)`);
  console.log("\n" + table(["measure", `at ${MAPPINGS.toLocaleString("en")}`, "baseline", `at ${TARGET.toLocaleString("en")} (×${scale})`, "notes"], rows));
}

/** Store size, Redis memory, reconciliation time and daemon RSS at MAPPINGS, and per route. */
async function footprint(db: PrivateMariaDb) {
  const redisServer = await PrivateRedis.start();
  const redis = new Redis(redisServer.url);
  try {
    progress(`footprint: inserting ${MAPPINGS} mappings`);
    const url = await createDatabase(db.adminUrl);
    let daemon = await startDaemon({ MYSQL_URL: url, REDIS_URL: redisServer.url });
    await stopDaemon(daemon); // migrated
    const conn = await createConnection(url);
    // Names as a platform gives them: <app>-<n>.<tenant>.<zone>, 30-40 characters.
    await conn.query(
      `INSERT INTO mappings (tenant_id, domain, backends, labels, revision, create_time, update_time)
       SELECT CONCAT('tenant-', seq % 1000), CONCAT('app-', seq, '.tenant-', seq % 1000, '.apps.example.org'), ?, '{}', seq, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_${MAPPINGS}`,
      [BACKENDS],
    );
    await conn.query("ANALYZE TABLE mappings");
    const [[size]] = await conn.query<RowDataPacket[]>("SELECT data_length + index_length AS bytes FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'mappings'");
    await conn.end();
    const storeBytes = Number(size!.bytes);
    row("store: mappings table (data + indexes)", mb(storeBytes), "", gb(storeBytes * scale), `${Math.round(storeBytes / MAPPINGS)} B per mapping (InnoDB, information_schema)`);

    await redis.flushall();
    const emptyMemory = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]);
    progress("footprint: full reconciliation by the daemon");
    daemon = await startDaemon({ MYSQL_URL: url, REDIS_URL: redisServer.url });
    const done = await new Promise<{ ms: number; pushed: number }>((resolve, reject) => {
      const check = setInterval(() => {
        const line = daemon.lines.find((l) => l.includes('"reconciliation done"'));
        if (line) {
          clearInterval(check);
          resolve(JSON.parse(line));
        }
        if (daemon.proc.exitCode !== null) reject(new Error("daemon exited"));
      }, 200);
    });
    const status = readFileSync(`/proc/${daemon.proc.pid}/status`, "utf8");
    const rssPeak = 1024 * Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]);
    await stopDaemon(daemon);
    const usedMemory = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]);
    // MEMORY USAGE of a sample of route keys: the per-key cost, overheads included.
    const sample: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const n = 1 + Math.floor(Math.random() * MAPPINGS);
      sample.push(Number(await redis.call("MEMORY", "USAGE", `route:app-${n}.tenant-${n % 1000}.apps.example.org`, "SAMPLES", "0")));
    }
    const perKey = sample.reduce((a, b) => a + b, 0) / sample.length;
    // What one Redis answers routers: HGET of random route names (a router's cache miss), by
    // Redis' own redis-benchmark (50 connections, 16 commands in flight each), not a Node client.
    const readRate = await hgetRate(redisServer.port);
    const perRoute = (usedMemory - emptyMemory) / MAPPINGS;
    row("redis: MEMORY USAGE of one route key", `${perKey.toFixed(0)} B`, "", gb(perKey * TARGET), "mean of 1,000 random keys (hash: rev, backends, seen)");
    row("redis: used_memory", mb(usedMemory), `${mb(emptyMemory)} empty`, gb(emptyMemory + perRoute * TARGET), `${perRoute.toFixed(0)} B per route incl. the keyspace's own tables`);
    row("redis: route reads on one core (HGET, redis-benchmark)", `${Math.round(readRate).toLocaleString("en")} /s`, "", "same (O(1) per read)", "random names, most of them absent (a miss costs about what a hit does); a router asks only on a cache miss");
    row("full reconciliation into empty Redis (daemon)", `${(done.ms / 1000).toFixed(1)} s`, "", `${((done.ms / 1000) * scale / 60).toFixed(1)} min`, `${Math.round(done.pushed / (done.ms / 1000))} routes/s, linear`);
    row("daemon peak RSS during it", mb(rssPeak), "", mb(rssPeak), "streams in batches of 5,000: flat with size");
  } finally {
    redis.disconnect();
    await redisServer.destroy();
  }
}

/** HGETs per second one Redis answers: redis-benchmark, random names from the route layout. */
async function hgetRate(port: number): Promise<number> {
  const proc = spawn("redis-benchmark", ["-p", String(port), "-c", "50", "-P", "16", "-n", "1000000", "-r", String(MAPPINGS), "--csv", "HGET", "route:app-__rand_int__.tenant-1.apps.example.org", "backends"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  await once(proc, "exit");
  // CSV: "test","rps",… then one line per test.
  const line = out.trim().split("\n").at(-1)!;
  return Number(line.split(",")[1]!.replace(/"/g, ""));
}

/** Commit → last of SUBSCRIBERS subscribers, beside a bare PUBLISH → last subscriber. */
async function fanout(db: PrivateMariaDb) {
  progress(`fan-out: ${SUBSCRIBERS} subscribers`);
  const redisServer = await PrivateRedis.start();
  const url = await createDatabase(db.adminUrl);
  const daemon = await startDaemon({ MYSQL_URL: url, REDIS_URL: redisServer.url, LOG_LEVEL: "warn" });
  const subscribers = Array.from({ length: SUBSCRIBERS }, () => new Redis(redisServer.url));
  const pending = new Map<string, { left: number; done: (t: number) => void }>();
  for (const sub of subscribers) {
    await sub.subscribe("route-invalidate");
    sub.on("message", (_c, domain: string) => {
      const p = pending.get(domain);
      if (p && --p.left === 0) {
        pending.delete(domain);
        p.done(performance.now());
      }
    });
  }
  const lastSeen = (domain: string) => new Promise<number>((done) => pending.set(domain, { left: SUBSCRIBERS, done }));
  try {
    const pub = new Redis(redisServer.url);
    const floor: number[] = [];
    for (let i = 0; i < 300; i++) {
      const d = `floor-${i}`;
      const seen = lastSeen(d);
      const t0 = performance.now();
      await pub.publish("route-invalidate", d);
      floor.push((await seen) - t0);
    }
    pub.disconnect();
    const lat: number[] = [];
    // 100 writes/s, open loop: a platform's steady change rate, not a saturation test.
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const due = started + i * 10;
        await sleep(Math.max(0, due - performance.now()));
        const domain = `fan-${i}.bench.example.org`;
        const seen = lastSeen(domain);
        await daemon.client.createMapping({ tenantId: "bench", mapping: { domain, backends: ["http://10.0.0.1:80"] } });
        const acked = performance.now();
        lat.push(Math.max(0, (await seen) - acked));
      }),
    );
    floor.sort((a, b) => a - b);
    lat.sort((a, b) => a - b);
    row(
      `invalidation to the last of ${SUBSCRIBERS} subscribers, p50 / p99`,
      `${ms(percentile(lat, 50))} / ${ms(percentile(lat, 99))} ms`,
      `${ms(percentile(floor, 50))} / ${ms(percentile(floor, 99))} ms`,
      "same (one PUBLISH per change, whatever the routes)",
      "500 writes at 100/s, ack → last subscriber; baseline: PUBLISH → last subscriber, 300 samples",
    );
  } finally {
    for (const s of subscribers) s.disconnect();
    await stopDaemon(daemon);
    await redisServer.destroy();
  }
}

/** SIGKILL of the Redis master during WRITE_RATE writes/s through the daemon on Sentinel. */
async function failover(db: PrivateMariaDb) {
  progress(`failover: Sentinel group, ${WRITE_RATE} writes/s`);
  const ha = await SentinelGroup.start();
  const url = await createDatabase(db.adminUrl);
  const daemon = await startDaemon({ MYSQL_URL: url, REDIS_URL: ha.url, LOG_LEVEL: process.env.BENCH_DAEMON_LOG ?? "warn" });
  // Watches the replica: it sees the relay's invalidations through replication, then directly once promoted.
  const watch = new Redis(`redis://127.0.0.1:${ha.replica.port}`);
  const applied = new Map<string, number>();
  watch.on("message", (_c, domain: string) => applied.set(domain, performance.now()));
  await watch.subscribe("route-invalidate");
  const acked = new Map<string, number>();
  const ackMs: number[] = [];
  const failures = new Map<string, number>();
  let killedAt = 0;
  let promotedAt = 0;
  try {
    const seconds = 12;
    const started = performance.now();
    const writes: Promise<void>[] = [];
    const watcher = (async () => {
      await sleep(4000);
      killedAt = performance.now();
      progress(`failover: master SIGKILLed at ${Date.now()} (epoch ms, as the daemon's log times)`);
      await ha.master.stop();
      const oldPort = ha.master.port;
      // Bounded: a failover that never comes is a result to print, not a hang.
      for (const giveUp = performance.now() + 60_000; performance.now() < giveUp; await sleep(20)) {
        if ((await ha.masterPort().catch(() => oldPort)) !== oldPort) {
          promotedAt = performance.now();
          break;
        }
      }
    })();
    for (let i = 0; i < WRITE_RATE * seconds; i++) {
      const due = started + (i * 1000) / WRITE_RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const domain = `ha-${i}.bench.example.org`;
      const sent = performance.now();
      writes.push(
        daemon.client.createMapping({ tenantId: "bench", mapping: { domain, backends: ["http://10.0.0.1:80"] } }).then(
          () => {
            acked.set(domain, performance.now());
            ackMs.push(performance.now() - sent);
          },
          (err: unknown) => void failures.set(String((err as Error).message), (failures.get(String((err as Error).message)) ?? 0) + 1),
        ),
      );
    }
    await Promise.all(writes);
    await watcher;
    for (const [message, n] of failures) progress(`failover: ${n} writes failed: ${message}`);
    // Every acknowledged write must reach the new master.
    const master = new Redis({ sentinels: ha.sentinelPorts.map((port) => ({ host: "127.0.0.1", port })), name: MASTER_NAME, maxRetriesPerRequest: 0 });
    master.on("error", () => undefined); // no master yet: the loop below asks again
    let missing = [...acked.keys()];
    const deadline = performance.now() + 60_000;
    while (missing.length > 0 && performance.now() < deadline) {
      const revs = await Promise.all(missing.map((d) => master.hget(`route:${d}`, "backends"))).catch(() => undefined);
      if (revs) missing = missing.filter((_, i) => revs[i] === null);
      if (missing.length > 0) await sleep(200);
    }
    const convergedAt = missing.length === 0 ? performance.now() : 0;
    master.disconnect();
    // The daemon's own account (relay, reconciliation, Redis reachability), not its per-call lines.
    if (process.env.BENCH_DAEMON_LOG) for (const l of daemon.lines.filter((l) => !l.includes('"msg":"rpc"'))) progress(l.slice(0, 400));
    const afterKill = [...acked].filter(([, t]) => t > killedAt).map(([d]) => applied.get(d)).filter((t): t is number => t !== undefined && promotedAt > 0 && t > promotedAt);
    const firstOnNew = Math.min(...afterKill);
    ackMs.sort((a, b) => a - b);
    const lag = [...acked].filter(([d]) => applied.has(d)).map(([d, t]) => Math.max(0, applied.get(d)! - t)).sort((a, b) => a - b);
    row(
      `Sentinel failover during ${WRITE_RATE} writes/s: master killed → writes reach the new master`,
      Number.isFinite(firstOnNew) ? `${((firstOnNew - killedAt) / 1000).toFixed(2)} s` : "not within the run",
      promotedAt > 0 ? `${((promotedAt - killedAt) / 1000).toFixed(2)} s sentinels promote` : "no promotion within 60 s",
      "same (independent of size, but a new master reconciles: see above)",
      `${acked.size} acked, ${[...failures.values()].reduce((a, b) => a + b, 0)} failed, ${missing.length} missing in Redis afterwards (${convergedAt ? `all there ${((convergedAt - killedAt) / 1000).toFixed(1)} s after the kill, checked every 0.2 s once the writes ended` : "not within 60 s"}); ack → applied max ${(lag.at(-1)! / 1000).toFixed(2)} s; API answer p50/p99 ${ms(percentile(ackMs, 50))}/${ms(percentile(ackMs, 99))} ms (writes never wait for Redis); down-after-milliseconds 1000`,
    );
  } finally {
    watch.disconnect();
    await stopDaemon(daemon);
    await ha.destroy();
  }
}

await main();
