// Router benchmark: the nginx + Lua router beside a static nginx keepalive proxy
// to the same backend (the baseline, same run), with its cache and without
// (every request asks Redis); and end-to-end propagation: from the API's
// acknowledgement of a change until a request through the router reaches the
// new backend, with invalidation and with the TTL alone; and a flood of distinct unknown hosts with
// many labels: Redis commands per request (INFO commandstats) and worker memory after it.
// Run: npm run bench:router   (needs wrk and the router packages; BENCH_SECONDS, BENCH_ROUNDS, BENCH_CHANGES,
// BENCH_TTL_CHANGES, BENCH_FLOOD_HOSTS)
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "../test/harness/ports.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { Redis } from "ioredis";
import { PrivateRouter, request } from "../test/harness/router.js";
import { startStaticNginx } from "./static-nginx.js";
import { percentile, table } from "./table.js";
import { assertWrk, wrk, type WrkResult } from "./wrk.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 200);
// Each TTL-only change waits out the TTL (1 s): fewer of them say as much.
const TTL_CHANGES = Number(process.env.BENCH_TTL_CHANGES ?? 50);
const CONNECTIONS = 32;
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
    // Two static backends ("x", "y") and the baseline proxy, in one plain nginx without Lua.
    const [xPort, yPort, basePort] = [await freePort(), await freePort(), await freePort()];
    procs.push(await plainNginx(dir, xPort, yPort, basePort));
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

    // Rounds alternate the three, so drift on this shared machine hits each alike; the median round counts.
    const scenarios = [
      { name: "baseline: static nginx keepalive proxy", port: basePort },
      { name: "router, cached (invalidation on)", port: cached.port },
      { name: "router, no cache (Redis per request)", port: uncached.port },
    ];
    const rounds: WrkResult[][] = scenarios.map(() => []);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [i, sc] of scenarios.entries()) {
        progress(`${sc.name}, round ${round}/${ROUNDS}`);
        rounds[i]!.push(await wrk(`http://127.0.0.1:${sc.port}/`, { dir, name: sc.name, seconds: SECONDS, connections: CONNECTIONS, headers: { Host: HOST } }));
      }
    }
    const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
    const ratios = rounds.map((rs) => median(rs.map((r, k) => r.rps / rounds[0]![k]!.rps)));
    const throughput = scenarios.map((sc, i) => {
      const rs = rounds[i]!;
      return {
        scenario: sc.name,
        "req/s (median)": Math.round(median(rs.map((r) => r.rps))).toString(),
        "req/s per round": rs.map((r) => Math.round(r.rps)).join(" / "),
        "p50 ms": median(rs.map((r) => r.p50)).toFixed(2),
        "p99 ms": median(rs.map((r) => r.p99)).toFixed(2),
        "× baseline (median of rounds)": i === 0 ? "1.00" : ratios[i]!.toFixed(2),
        "non-2xx/errors": String(rs.reduce((sum, r) => sum + r.errors, 0)),
      };
    });

    // Propagation: alternate the mapping between the two backends, and poll through the router until it answers from the new one.
    const propagation = async (name: string, router: PrivateRouter, changes: number) => {
      progress(`propagation, ${name}`);
      const samples: number[] = [];
      for (let i = 0; i < changes; i++) {
        const target = i % 2 === 0 ? "y" : "x";
        const res = await put(`/v1/bench/mapping/${HOST}`, "PUT", { backends: [`http://127.0.0.1:${target === "x" ? xPort : yPort}`] });
        if (res.status !== 200) throw new Error(`update answered ${res.status}`);
        const acked = performance.now();
        while ((await request(router.port, HOST)).body !== target) await new Promise((r) => setImmediate(r));
        samples.push(performance.now() - acked);
      }
      samples.sort((p, q) => p - q);
      return { scenario: name, changes: String(changes), "p50 ms": percentile(samples, 50).toFixed(1), "p99 ms": percentile(samples, 99).toFixed(1), "max ms": samples.at(-1)!.toFixed(1) };
    };
    const spread = [await propagation("invalidation (cache TTL 300 s)", cached, CHANGES), await propagation("TTL only (1 s, no invalidation)", ttlOnly, TTL_CHANGES)];

    const flooded = await flood(cached, redis.url, dir);

    console.log(`\nthroughput: ${ROUNDS} alternating rounds of ${SECONDS} s, ${CONNECTIONS} connections, 2 wrk threads, Host: ${HOST}, backend: static nginx, all on this machine\n`);
    console.log(table(Object.keys(throughput[0]!), throughput));
    console.log("\npropagation: API acknowledgement → first request through the router that reaches the new backend\n");
    console.log(table(Object.keys(spread[0]!), spread));
    console.log("\nunknown-host flood: distinct hosts of 117 labels (251 characters), each asked once, through the cached router\n");
    console.log(table(Object.keys(flooded), [flooded]));
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
    await new Promise((r) => setTimeout(r, 1100)); // workers report their Lua memory every second
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

/** Backends x and y (static "x"/"y") and the baseline keepalive proxy to x, in one nginx without Lua. */
function plainNginx(dir: string, xPort: number, yPort: number, basePort: number): Promise<ChildProcess> {
  return startStaticNginx(
    dir,
    xPort,
    `  server { listen 127.0.0.1:${yPort}; location / { return 200 "y"; } }
  # The baseline proxies as the router does (router/nginx.conf.template), only to a fixed upstream.
  map $http_upgrade $connection_upgrade { default upgrade; "" ""; }
  server {
    listen 127.0.0.1:${basePort} reuseport;
    location / {
      proxy_pass http://x;
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
