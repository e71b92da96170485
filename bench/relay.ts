// Relay benchmark: propagation latency (write acknowledged → route in Redis),
// backlog drain rate, and full reconciliation time and memory at scale.
// Each figure is printed beside a baseline measured in the same run on the
// same servers. Run: npm run bench:relay   (BENCH_MAPPINGS, BENCH_BACKLOG to resize;
// BENCH_PARTS=propagation,drain,reconcile picks parts)
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { createConnection } from "mysql2/promise";
import { pino } from "pino";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { createMysqlStore } from "../src/store/mysql/mysql-store.js";
import { RouteWriter } from "../src/sync/route-writer.js";
import { createDatabase, PrivateMariaDb } from "../test/harness/mariadb.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { freePort } from "../test/harness/ports.js";
import { offerCreates } from "./offer.js";
import { percentile, table } from "./table.js";

const TOKEN = "bench-token-0123456789abcdef";
const MAPPINGS = Number(process.env.BENCH_MAPPINGS ?? 1_000_000);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 100_000);
const rows: Array<Record<string, string>> = [];
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);
const quiet = pino({ level: "silent" });

const ms = (x: number) => x.toFixed(2);
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function main() {
  const [db, redisServer] = await Promise.all([PrivateMariaDb.start(), PrivateRedis.start()]);
  try {
    const parts = (process.env.BENCH_PARTS ?? "propagation,drain,reconcile").split(",");
    if (parts.includes("propagation")) await propagation(db, redisServer);
    if (parts.includes("drain")) await drain(db, redisServer);
    if (parts.includes("reconcile")) await reconcile(db, redisServer);
  } finally {
    await Promise.all([db.destroy(), redisServer.destroy()]);
  }
  console.log("\n" + table(["measure", "rate", "p50 ms", "p99 ms", "max ms", "notes"], rows));
}

/** Latency from each write's acknowledgement to the invalidation message that follows its apply. */
async function propagation(db: PrivateMariaDb, redisServer: PrivateRedis) {
  progress("propagation: starting the daemon");
  const url = await createDatabase(db.adminUrl);
  const port = await freePort();
  // Its own process, logging only warnings, so the load generator does not share its event loop.
  const daemon = spawn(process.execPath, ["dist/src/main.js"], {
    env: { PATH: process.env.PATH, MYSQL_URL: url, REDIS_URL: redisServer.url, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${port}`, LOG_LEVEL: "warn" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${TOKEN}`);
    return next(req);
  };
  const client = createClient(MappingService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1", interceptors: [auth] }));
  for (;;) {
    try {
      await client.listMappings({ tenantId: "bench" });
      break;
    } catch {
      await sleep(50);
    }
  }

  const sub = new Redis(redisServer.url);
  const seen = new Map<string, number>();
  const seenAt = new Map<string, number>(); // epoch ms, comparable with the generator process's times
  const waiting = new Map<string, () => void>();
  sub.on("message", (_c, domain: string) => {
    seen.set(domain, performance.now());
    seenAt.set(domain, performance.timeOrigin + performance.now());
    waiting.get(domain)?.();
  });
  await sub.subscribe("route-invalidate");
  // Resolved by the subscriber, not polled: the client must not take the CPU the daemon needs.
  const announced = (domain: string) => (seen.has(domain) ? Promise.resolve() : new Promise<void>((resolve) => waiting.set(domain, resolve)));

  // Baseline: the floor any Redis-based propagation pays, a write + PUBLISH seen by a subscriber.
  const pub = new Redis(redisServer.url);
  const floor: number[] = [];
  for (let i = 0; i < 500; i++) {
    const d = `floor-${i}`;
    const t0 = performance.now();
    await pub.multi().hset(`floor:${d}`, "rev", "1").publish("route-invalidate", d).exec();
    await announced(d);
    floor.push(seen.get(d)! - t0);
  }
  floor.sort((a, b) => a - b);
  rows.push({ measure: "propagation floor: HSET+PUBLISH → subscriber", rate: "serial", "p50 ms": ms(percentile(floor, 50)), "p99 ms": ms(percentile(floor, 99)), "max ms": ms(floor.at(-1)!), notes: "baseline, 500 samples" });

  // A keep-alive socket the daemon closed while idle fails at once (ECONNRESET); that write was
  // never acknowledged, so it is simply sent again.
  const createRetryingReset = async (domain: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.createMapping({ tenantId: "bench", mapping: { domain, backends: ["http://a:1"] } });
        return;
      } catch (err) {
        if (attempt >= 3 || !String((err as Error).message).includes("ECONNRESET")) throw err;
      }
    }
  };
  let n = 0;
  const run = async (label: string, seconds: number) => {
    const lat: number[] = [];
    const started = performance.now();
    const one = async () => {
      const d = `p${n++}.bench.example`;
      await createRetryingReset(d);
      const acked = performance.now();
      await announced(d);
      lat.push(Math.max(0, seen.get(d)! - acked));
    };
    // Closed loop: 32 writers as fast as the daemon takes them.
    await Promise.all([...Array(32)].map(async () => {
      while (performance.now() - started < seconds * 1000) await one();
    }));
    const elapsed = (performance.now() - started) / 1000;
    lat.sort((a, b) => a - b);
    rows.push({ measure: `propagation ${label}`, rate: `${Math.round(lat.length / elapsed)} writes/s`, "p50 ms": ms(percentile(lat, 50)), "p99 ms": ms(percentile(lat, 99)), "max ms": ms(lat.at(-1)!), notes: `${lat.length} writes; ack → route in Redis` });
  };
  // Fixed rates: offered by the open-loop generator in a process of its own (bench/open-loop.ts).
  // The daemon's CPU time (user + system, in clock ticks of 10 ms), from /proc: what a write costs it whatever the machine's load.
  const daemonCpuMs = () => {
    const fields = readFileSync(`/proc/${daemon.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  const openLoop = async (rate: number, seconds: number, connections: number) => {
    const cpuBefore = daemonCpuMs();
    const { writes, ok, others, doneRate, answerMs: answer, lateMaxMs } = await offerCreates(`http://127.0.0.1:${port}`, TOKEN, rate, seconds, connections, `o${rate}-`);
    await Promise.all(ok.map(([d]) => announced(d)));
    const cpuPerWrite = (daemonCpuMs() - cpuBefore) / writes.length;
    const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
    const fromAck = sorted(ok.map(([d, , ack]) => Math.max(0, seenAt.get(d)! - ack)));
    const fromDue = sorted(ok.map(([d, due]) => seenAt.get(d)! - due));
    rows.push({
      measure: `propagation at ${rate.toLocaleString("en")} writes/s offered (open loop, own process)`,
      rate: `${Math.round(doneRate)} writes/s done`,
      "p50 ms": ms(percentile(fromAck, 50)),
      "p99 ms": ms(percentile(fromAck, 99)),
      "max ms": ms(fromAck.at(-1)!),
      notes: `${ok.length}/${writes.length} writes 201${others}, ${connections} keep-alive connections; ack → route in Redis. From the scheduled send: answer p50/p99 ${ms(percentile(answer, 50))}/${ms(percentile(answer, 99))} ms, route in Redis p50/p99 ${ms(percentile(fromDue, 50))}/${ms(percentile(fromDue, 99))} ms; sends at most ${ms(lateMaxMs)} ms behind schedule; daemon CPU ${ms(cpuPerWrite)} ms per write`,
    });
  };
  progress("propagation: floor measured");
  await openLoop(100, 5, 16);
  await openLoop(1000, 5, 64);
  await run("at max (32 writers)", 5);
  sub.disconnect();
  pub.disconnect();
  daemon.kill("SIGTERM");
  await once(daemon, "exit");
}

/** Rows/s the relay's drain path moves after an outage left a backlog, vs. a plain pipelined HSET of as many keys. */
async function drain(db: PrivateMariaDb, redisServer: PrivateRedis) {
  progress(`drain: ${BACKLOG} outbox rows`);
  const url = await createDatabase(db.adminUrl);
  const store = createMysqlStore({ url, logger: quiet });
  await store.ready;
  const conn = await createConnection(url);
  await conn.query(
    `INSERT INTO outbox (domain, op, backends, created_at) SELECT CONCAT('d', seq, '.drain.example'), 'upsert', '["http://a:1","http://b:2"]', UTC_TIMESTAMP(3) FROM seq_1_to_${BACKLOG}`,
  );
  await conn.end();
  const redis = new Redis(redisServer.url);
  await redis.flushall();

  let t0 = performance.now();
  let pipeline = redis.pipeline();
  for (let i = 1; i <= BACKLOG; i++) {
    pipeline.hset(`base:d${i}`, "rev", String(i), "backends", '["http://a:1","http://b:2"]');
    if (i % 1000 === 0) {
      await pipeline.exec();
      pipeline = redis.pipeline();
    }
  }
  await pipeline.exec();
  const baseRate = BACKLOG / ((performance.now() - t0) / 1000);
  rows.push({ measure: "drain baseline: pipelined HSET, no MySQL, no script", rate: `${Math.round(baseRate)} rows/s`, "p50 ms": "", "p99 ms": "", "max ms": "", notes: `${BACKLOG} keys, 1,000 per pipeline` });

  const writer = new RouteWriter(redis, { prefix: "", compatFrontend: false, tombstoneTtlSeconds: 3600 });
  t0 = performance.now();
  let drained = 0;
  for (let n; (n = await store.drainOutbox(1000, (changes) => writer.apply(changes).then(() => undefined))) > 0; ) drained += n;
  const rate = drained / ((performance.now() - t0) / 1000);
  rows.push({ measure: "backlog drain (relay path: SKIP LOCKED batch → EVALSHA pipeline → DELETE)", rate: `${Math.round(rate)} rows/s`, "p50 ms": "", "p99 ms": "", "max ms": "", notes: `${drained} rows; ${(rate / baseRate).toFixed(2)}× baseline` });
  redis.disconnect();
  await store.close();
}

/** Full reconciliation from MySQL into an empty Redis at scale, by the daemon, with its peak RSS. */
async function reconcile(db: PrivateMariaDb, redisServer: PrivateRedis) {
  progress(`reconcile: inserting ${MAPPINGS} mappings`);
  const url = await createDatabase(db.adminUrl);
  const store = createMysqlStore({ url, logger: quiet });
  await store.ready;
  const conn = await createConnection(url);
  await conn.query(
    `INSERT INTO mappings (tenant_id, domain, backends, labels, revision, create_time, update_time)
     SELECT CONCAT('t', seq % 100), CONCAT('site-', seq, '.recon.example'), '["http://a:1","http://b:2"]', '{}', seq, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_${MAPPINGS}`,
  );
  await conn.end();
  const redis = new Redis(redisServer.url);
  await redis.flushall();

  const t0 = performance.now();
  let scanned = 0;
  for (let after = 0n; ; ) {
    const batch = await store.scanRoutes(after, 5000);
    if (batch.length === 0) break;
    scanned += batch.length;
    after = batch.at(-1)!.id;
  }
  const scanMs = performance.now() - t0;
  rows.push({ measure: "reconcile baseline: stream all mappings from the store only", rate: `${Math.round(scanned / (scanMs / 1000))} rows/s`, "p50 ms": "", "p99 ms": "", "max ms": "", notes: `${scanned} rows in ${(scanMs / 1000).toFixed(1)} s` });

  await store.close();

  // The daemon itself, started on this database and the empty Redis: it reconciles on taking the relay lease.
  // BENCH_DAEMON_FLAGS: node flags for the daemon (e.g. V8 heap sizes), to see what its peak RSS is made of.
  const flags = (process.env.BENCH_DAEMON_FLAGS ?? "").split(" ").filter(Boolean);
  const daemon = spawn(process.execPath, [...flags, "dist/src/main.js"], {
    env: { PATH: process.env.PATH, MYSQL_URL: url, REDIS_URL: redisServer.url, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${await freePort()}`, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const done = await new Promise<{ ms: number; pushMs: number; retireMs: number; pushed: number }>((resolve, reject) => {
    createInterface({ input: daemon.stdout! }).on("line", (line) => {
      if (line.includes('"reconciliation done"')) resolve(JSON.parse(line));
    });
    daemon.once("exit", (code) => reject(new Error(`daemon exited with ${code}`)));
  });
  const status = readFileSync(`/proc/${daemon.pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  daemon.kill("SIGTERM");
  await once(daemon, "exit");
  rows.push({
    measure: `full reconciliation of ${MAPPINGS.toLocaleString("en")} mappings into empty Redis (daemon)`,
    rate: `${Math.round(done.pushed / (done.ms / 1000))} rows/s`,
    "p50 ms": "",
    "p99 ms": "",
    "max ms": "",
    notes: `${(done.ms / 1000).toFixed(1)} s (push ${(done.pushMs / 1000).toFixed(1)} s, retire ${(done.retireMs / 1000).toFixed(1)} s; ${(done.ms / scanMs).toFixed(1)}× the store-only scan); daemon peak RSS ${Math.round(kb("VmHWM") / 1024)} MB`,
  });
  redis.disconnect();
}

const mb = (b: number) => Math.round(b / 2 ** 20);

await main();
