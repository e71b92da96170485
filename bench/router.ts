// Router benchmark: the nginx + Lua router beside a static nginx keepalive proxy
// to the same backend (the baseline, same run: an nginx of its own with as many
// workers as the router), with its cache and without (every request asks
// Redis): throughput at saturation, and latency at a moderate load (the p99 the
// router adds); end-to-end propagation: from the API's acknowledgement of a
// change until a request through the router reaches the new backend, with
// invalidation (split where the change is published), with it while
// bench/open-loop.ts offers 1,000 creates/s to the same daemon, and with the TTL alone;
// and a flood of distinct unknown hosts with many labels: Redis commands per
// request (INFO commandstats) and worker memory after it.
// Run: npm run bench:router   (needs wrk and the router packages; BENCH_PARTS: some of
// throughput,latency,propagation,flood (default all); BENCH_SECONDS, BENCH_ROUNDS, BENCH_LATENCY_SECONDS,
// BENCH_CHANGES, BENCH_TTL_CHANGES, BENCH_LOAD_RATE, BENCH_LOAD_SECONDS, BENCH_LOAD_CHANGES, BENCH_FLOOD_HOSTS)
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "../test/harness/ports.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { Redis } from "ioredis";
import { PrivateRouter, request, workersCpuSeconds } from "../test/harness/router.js";
import { offerCreates } from "./offer.js";
import { startStaticNginx } from "./static-nginx.js";
import { percentile, table } from "./table.js";
import { assertWrk, wrk, type WrkResult } from "./wrk.js";

const PARTS = new Set((process.env.BENCH_PARTS ?? "throughput,latency,propagation,flood").split(","));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 5);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 200);
// Each TTL-only change waits out the TTL (1 s): fewer of them say as much.
const TTL_CHANGES = Number(process.env.BENCH_TTL_CHANGES ?? 50);
// Propagation under load: creates/s offered by the open-loop generator, for how long, and at most how many changes sampled meanwhile.
const LOAD_RATE = Number(process.env.BENCH_LOAD_RATE ?? 1000);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 10);
const LOAD_CHANGES = Number(process.env.BENCH_LOAD_CHANGES ?? 300);
const LOAD_CONNECTIONS = 64;
const CONNECTIONS = 32;
// Latency runs: each connection pauses this long between its requests (some 6,000 req/s in all here, far from saturation).
const LATENCY_CONNECTIONS = 16;
const LATENCY_PAUSE_MS = 2;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FLOOD_HOSTS = Number(process.env.BENCH_FLOOD_HOSTS ?? 100_000);
const TOKEN = "bench-token-0123456789abcdef";
const HOST = "bench.example";
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);

async function main() {
  await assertWrk();
  const dir = mkdtempSync(join(tmpdir(), "dynroute-bench-router-"));
  const procs: ChildProcess[] = [];
  const routers: PrivateRouter[] = [];
  const redis = await PrivateRedis.start();
  try {
    // Two static backends ("x", "y") in one plain nginx without Lua; the baseline proxy in another, as the router is.
    const [xPort, yPort, basePort] = [await freePort(), await freePort(), await freePort()];
    procs.push(await startStaticNginx(join(dir, "backends"), xPort, `  server { listen 127.0.0.1:${yPort}; location / { return 200 "y"; } }`));
    const baseline = await baselineNginx(join(dir, "baseline"), xPort, basePort);
    procs.push(baseline);
    const daemonPort = await freePort();
    procs.push(
      spawn(process.execPath, ["dist/src/main.js"], {
        env: { PATH: process.env.PATH, DYNROUTE_DATA_DIR: join(dir, "data"), REDIS_URL: redis.url, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${daemonPort}`, DYNROUTE_BACKEND_ALLOW: "127.0.0.0/8", LOG_LEVEL: "warn" },
        stdio: ["ignore", "ignore", "inherit"],
      }),
    );
    const api = `http://127.0.0.1:${daemonPort}`;
    const put = (path: string, method: string, body: object) =>
      fetch(api + path, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    await waitFor("the daemon", async () => {
      const res = await put("/v1/bench/mapping", "PUT", { domain: HOST, backends: [`http://127.0.0.1:${xPort}`] });
      if (res.status !== 201) throw new Error(`create answered ${res.status}`);
    });

    const start = async (env: Record<string, string>) => {
      const r = await PrivateRouter.start(redis.url, "", { ROUTER_ACCESS_LOG: "off", ...env });
      routers.push(r);
      await waitFor("the route", async () => {
        if ((await request(r.port, HOST)).body !== "x") throw new Error("not routed yet");
      });
      return r;
    };
    const cached = await start({ ROUTER_CACHE_TTL: "300" });
    const uncached = await start({ ROUTER_CACHE_TTL: "0" });
    const ttlOnly = await start({ ROUTER_CACHE_TTL: "1", ROUTER_INVALIDATION: "off" });

    const scenarios = [
      { name: "baseline: static nginx keepalive proxy", port: basePort, cpu: () => workersCpuSeconds(baseline.pid!) },
      { name: "router, cached (invalidation on)", port: cached.port, cpu: () => cached.workersCpuSeconds() },
      { name: "router, no cache (Redis per request)", port: uncached.port, cpu: () => uncached.workersCpuSeconds() },
    ];
    if (PARTS.has("throughput")) {
      const rounds = await alternate(scenarios, "throughput", (sc) => ({ dir, name: sc.name, seconds: SECONDS, connections: CONNECTIONS, headers: { Host: HOST } }));
      console.log(`\nthroughput: ${ROUNDS} alternating rounds of ${SECONDS} s, ${CONNECTIONS} connections, 2 wrk threads, Host: ${HOST}, backend: static nginx, all on this machine; CPU: the proxy's own workers (the router's or the baseline's; Redis not counted)\n`);
      const rows = scenarios.map((sc, i) => {
        const rs = rounds[i]!;
        return {
          scenario: sc.name,
          "req/s (median)": Math.round(median(rs.map((r) => r.rps))).toString(),
          "req/s per round": rs.map((r) => Math.round(r.rps)).join(" / "),
          "p50 ms": median(rs.map((r) => r.p50)).toFixed(2),
          "p99 ms": median(rs.map((r) => r.p99)).toFixed(2),
          "× baseline (median of rounds)": i === 0 ? "1.00" : median(rs.map((r, k) => r.rps / rounds[0]![k]!.rps)).toFixed(2),
          "× baseline per round": rs.map((r, k) => (r.rps / rounds[0]![k]!.rps).toFixed(2)).join(" / "),
          "proxy CPU µs/req (median)": median(rs.map((r) => r.cpuUs)).toFixed(1),
          "non-2xx/errors": String(rs.reduce((sum, r) => sum + r.errors, 0)),
        };
      });
      console.log(table(Object.keys(rows[0]!), rows));
    }

    if (PARTS.has("latency")) {
      // Each connection pauses between requests (wrk's delay hook; the pause is not counted as latency).
      const script = `delay = function() return ${LATENCY_PAUSE_MS} end`;
      const rounds = await alternate(scenarios, "latency", (sc) => ({ dir, name: `latency ${sc.name}`, script, seconds: LATENCY_SECONDS, connections: LATENCY_CONNECTIONS, headers: { Host: HOST } }));
      console.log(
        `\nlatency at a moderate load: ${ROUNDS} alternating rounds of ${LATENCY_SECONDS} s, ${LATENCY_CONNECTIONS} connections each pausing ${LATENCY_PAUSE_MS} ms between requests; added = router − baseline in the same round\n`,
      );
      const rows = scenarios.map((sc, i) => {
        const rs = rounds[i]!;
        const added = (q: "p50" | "p99") => (i === 0 ? "" : median(rs.map((r, k) => r[q] - rounds[0]![k]![q])).toFixed(2));
        return {
          scenario: sc.name,
          "req/s (median)": Math.round(median(rs.map((r) => r.rps))).toString(),
          "p50 ms": median(rs.map((r) => r.p50)).toFixed(2),
          "p99 ms": median(rs.map((r) => r.p99)).toFixed(2),
          "p99 ms per round": rs.map((r) => r.p99.toFixed(2)).join(" / "),
          "p50 added ms (median)": added("p50"),
          "p99 added ms (median)": added("p99"),
        };
      });
      console.log(table(Object.keys(rows[0]!), rows));
    }

    if (PARTS.has("propagation")) {
      // Each change moves the mapping from the backend it is on (x at first) to the other, acknowledged on return: the body it answers with.
      let changed = 0;
      const change = async () => {
        const target = changed++ % 2 === 0 ? "y" : "x";
        const res = await put(`/v1/bench/mapping/${HOST}`, "PUT", { backends: [`http://127.0.0.1:${target === "x" ? xPort : yPort}`] });
        if (res.status !== 200) throw new Error(`update answered ${res.status}`);
        return target;
      };
      const spread = [
        await propagation("invalidation (cache TTL 300 s)", cached, CHANGES, redis.url, change),
        await propagationUnderLoad(api, cached, redis.url, change),
        await propagation("TTL only (1 s, no invalidation)", ttlOnly, TTL_CHANGES, redis.url, change),
      ];
      console.log(
        `\npropagation: API acknowledgement → first request through the router that reaches the new backend; split where the change is published (seen by a subscriber of the bench). Under load: the same changes, spread over the load, while bench/open-loop.ts offers REST creates of other domains to the same daemon from a process of its own, on schedule whether or not earlier ones were answered, over ${LOAD_CONNECTIONS} keep-alive connections\n`,
      );
      console.log(table([...new Set(spread.flatMap((row) => Object.keys(row)))], spread));
    }

    if (PARTS.has("flood")) {
      const flooded = await flood(cached, redis.url, dir);
      console.log("\nunknown-host flood: distinct hosts of 117 labels (251 characters), each asked once, through the cached router\n");
      console.log(table(Object.keys(flooded), [flooded]));
    }
  } finally {
    for (const r of routers) await r.stop();
    for (const p of procs) {
      p.kill("SIGTERM");
      if (p.exitCode === null) await once(p, "exit");
    }
    await redis.destroy();
  }
}

/**
 * The propagation of changes sampled while the open-loop generator offers LOAD_RATE creates/s to the same daemon:
 * from 1 s after it is started (past its start-up and first writes) to 1 s before its schedule ends, spread evenly.
 */
async function propagationUnderLoad(api: string, router: PrivateRouter, redisUrl: string, change: () => Promise<string>): Promise<Record<string, string>> {
  const started = performance.now();
  const offered = offerCreates(api, TOKEN, LOAD_RATE, LOAD_SECONDS, LOAD_CONNECTIONS, "load-");
  await sleep(1000);
  const window = { from: epoch(), to: 0 };
  const row = await propagation(`invalidation, ${LOAD_RATE.toLocaleString("en")} creates/s offered`, router, LOAD_CHANGES, redisUrl, change, {
    everyMs: ((LOAD_SECONDS - 2) * 1000) / LOAD_CHANGES,
    until: started + (LOAD_SECONDS - 1) * 1000,
  });
  window.to = epoch();
  const { writes, ok, others, doneRate, answerMs, lateMaxMs } = await offered;
  const schedule = writes[0]![1];
  const s = (t: number) => ((t - schedule) / 1000).toFixed(1);
  return {
    ...row,
    "offered load (what the generator reported)": `${ok.length}/${writes.length} creates 201${others} in ${LOAD_SECONDS} s, ${Math.round(doneRate)}/s done; answer p50/p99/max ${percentile(answerMs, 50).toFixed(1)}/${percentile(answerMs, 99).toFixed(1)}/${percentile(answerMs, 100).toFixed(1)} ms from the scheduled send; sends at most ${lateMaxMs.toFixed(1)} ms behind schedule; changes sampled from ${s(window.from)} s to ${s(window.to)} s of it`,
  };
}

const epoch = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;

type Round = WrkResult & { /** CPU time of the proxy's (the router's or the baseline's) workers per request. */ cpuUs: number };

/**
 * ROUNDS rounds of wrk against each scenario in turn, so drift on this shared machine hits each alike: results per
 * scenario, per round. The CPU time per request says what throughput on a busy machine cannot: what each costs.
 */
async function alternate<S extends { name: string; port: number; cpu: () => number }>(scenarios: S[], what: string, opts: (sc: S) => Parameters<typeof wrk>[1]): Promise<Round[][]> {
  const rounds: Round[][] = scenarios.map(() => []);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [i, sc] of scenarios.entries()) {
      progress(`${what}: ${sc.name}, round ${round}/${ROUNDS}`);
      const before = sc.cpu();
      const r = await wrk(`http://127.0.0.1:${sc.port}/`, opts(sc));
      rounds[i]!.push({ ...r, cpuUs: ((sc.cpu() - before) * 1e6) / r.requests });
    }
  }
  return rounds;
}

/**
 * Makes `changes` changes and polls through `router` after each until it answers with the new body. A subscriber of
 * the invalidation channel splits each sample where the relay published the change. With `pace`, change i starts no
 * sooner than `everyMs` × i after the first, and none starts after `until` (performance.now()).
 */
async function propagation(
  name: string,
  router: PrivateRouter,
  changes: number,
  redisUrl: string,
  change: () => Promise<string>,
  pace?: { everyMs: number; until: number },
): Promise<Record<string, string>> {
  progress(`propagation, ${name}`);
  const subscriber = new Redis(redisUrl);
  let published = 0;
  subscriber.on("message", (_channel: string, domain: string) => {
    if (domain === HOST) published = performance.now();
  });
  await subscriber.subscribe("route-invalidate");
  const total: number[] = [];
  const answers: number[] = []; // each change's own write: sent → acknowledged
  const polls: number[] = []; // each request of the polling: what one look through the router costs the bench
  const toPublish: number[] = [];
  const toServe: number[] = [];
  try {
    const first = performance.now();
    for (let i = 0; i < changes; i++) {
      if (pace) {
        const wait = first + i * pace.everyMs - performance.now();
        if (wait > 0) await sleep(wait);
        if (performance.now() > pace.until) break;
      }
      const sent = performance.now();
      const target = await change();
      const acked = performance.now();
      answers.push(acked - sent);
      for (;;) {
        const asked = performance.now();
        const body = (await request(router.port, HOST)).body;
        polls.push(performance.now() - asked);
        if (body === target) break;
        await new Promise((r) => setImmediate(r));
      }
      const served = performance.now();
      total.push(served - acked);
      // The publish can come before the acknowledgement reaches the bench: that part is then 0.
      if (published > sent) {
        toPublish.push(Math.max(0, published - acked));
        toServe.push(served - Math.max(published, acked));
      }
    }
  } finally {
    subscriber.disconnect();
  }
  const ms = (xs: number[], p: number) => (xs.length ? percentile([...xs].sort((a, b) => a - b), p).toFixed(1) : "");
  return {
    scenario: name,
    changes: String(total.length),
    "p50 ms": ms(total, 50),
    "p99 ms": ms(total, 99),
    "max ms": ms(total, 100),
    "ack → published p50 / p99 / max": toPublish.length ? `${ms(toPublish, 50)} / ${ms(toPublish, 99)} / ${ms(toPublish, 100)}` : "",
    "published → served p50 / p99 / max": toServe.length ? `${ms(toServe, 50)} / ${ms(toServe, 99)} / ${ms(toServe, 100)}` : "",
    "write answered p50 / p99 / max": `${ms(answers, 50)} / ${ms(answers, 99)} / ${ms(answers, 100)}`,
    "one poll p50 / p99 / max": `${ms(polls, 50)} / ${ms(polls, 99)} / ${ms(polls, 100)}`,
  };
}

/**
 * Distinct unknown hosts with many labels, until FLOOD_HOSTS were asked: the Redis commands they cost
 * (all of INFO commandstats but the relay's idle GET and INFO polling) and each worker's memory after.
 */
async function flood(router: PrivateRouter, redisUrl: string, dir: string): Promise<Record<string, string>> {
  const client = new Redis(redisUrl);
  try {
    const before = { rss: router.workerRss(), lua: await luaMemory(router) };
    await client.config("RESETSTAT");
    let requests = 0;
    for (let run = 0; requests < FLOOD_HOSTS; run++) {
      progress(`unknown-host flood, ${requests}/${FLOOD_HOSTS} hosts`);
      const script = `
local labels = string.rep("a.", 115)
local counter, threads = 0, 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/", { Host = string.format("f${run}t%d-%d.%szz", tid, counter, labels) })
end`;
      const r = await wrk(`http://127.0.0.1:${router.port}/`, { dir, name: `flood ${run}`, script, seconds: 5, connections: CONNECTIONS });
      requests += r.requests;
    }
    const stats = await client.info("commandstats");
    let commands = 0;
    const byCommand: string[] = [];
    for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (m[1] === "get" || m[1] === "info" || m[1] === "config") continue;
      commands += Number(m[2]);
      byCommand.push(`${m[1]} ${m[2]}`);
    }
    await sleep(1100); // workers report their Lua memory every second
    const after = { rss: router.workerRss(), lua: await luaMemory(router) };
    const mb = (xs: number[]) => xs.map((x) => (x / 1048576).toFixed(1)).join(" / ");
    return {
      "hosts asked": String(requests),
      "Redis commands": `${commands} (${byCommand.join(", ")})`,
      "commands per host": (commands / requests).toFixed(3),
      "worker RSS MB before → after": `${mb(before.rss)} → ${mb(after.rss)}`,
      "worker Lua MB before → after": `${mb(before.lua)} → ${mb(after.lua)}`,
    };
  } finally {
    client.disconnect();
  }
}

async function luaMemory(router: PrivateRouter): Promise<number[]> {
  return [...(await router.metrics())].filter(([k]) => k.startsWith("dynroute_router_lua_memory_bytes")).map(([, v]) => v);
}

/** The baseline: a keepalive proxy to x, in an nginx without Lua of its own (its own idle backend is not used). */
async function baselineNginx(dir: string, xPort: number, basePort: number): Promise<ChildProcess> {
  return startStaticNginx(
    dir,
    await freePort(),
    `  upstream routed { server 127.0.0.1:${xPort}; keepalive 64; }
  # The baseline proxies as the router does (router/nginx.conf.template), only to a fixed upstream.
  map $http_upgrade $connection_upgrade { default upgrade; "" ""; }
  server {
    listen 127.0.0.1:${basePort} reuseport;
    location / {
      proxy_pass http://routed;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_next_upstream error timeout;
    }
  }`,
  );
}

await main();
